"""The PostgreSQL dialect as Canon's wire server reads it: sqlglot's, with one tokenizer fix.

sqlglot reads `$1,$2` (no space, as postgres.js writes `IN ($1,$2)`) as the start of a dollar-quoted
string tagged `1,`; PostgreSQL reads two parameters, since a dollar-quote tag cannot start with a
digit. The tokenizer below reads `$<digit>` as a parameter before trying a dollar quote.
"""

from __future__ import annotations

from sqlglot.dialects.postgres import Postgres
from sqlglot.tokenizer_core import TokenizerCore

from .regtype_arrays import ObjectIdentifierArrays


class _Core(TokenizerCore):
    __slots__ = ()

    def _scan_string(self, start: str) -> bool:
        if start == "$" and self._peek.isdigit():
            self._add(self.heredoc_string_alternative)  # `$` as a parameter marker; the digits follow
            return True
        return super()._scan_string(start)


class CanonPostgres(Postgres):
    class Tokenizer(Postgres.Tokenizer):
        def _init_core(self) -> TokenizerCore:
            core = super()._init_core()
            core.__class__ = _Core
            return core

    class Parser(ObjectIdentifierArrays, Postgres.Parser):  # `x::regtype[]` (regtype_arrays.py)
        pass

    class Generator(Postgres.Generator):
        pass


PG = CanonPostgres
