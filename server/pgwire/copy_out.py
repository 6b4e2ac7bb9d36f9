"""`COPY (SELECT …) TO STDOUT` and `COPY view TO STDOUT`: a query's rows as COPY data.

psql's `\\copy (…) to 'file.csv' csv header`, DBeaver's and pgAdmin's exports and many ETL tools read
results this way. Only the reading direction exists here: COPY … FROM, and COPY to a server file, are
refused (the catalog is read-only and the server writes no files). The query inside runs like any
other (same translation, policies, caps); this module parses the statement's options and encodes rows
in PostgreSQL's text or CSV COPY format.

    COPY (SELECT …) TO STDOUT [[WITH] (FORMAT csv|text, HEADER [bool], DELIMITER 'c', NULL 'str')]
    COPY (SELECT …) TO STDOUT [WITH] [CSV] [HEADER] [DELIMITER [AS] 'c'] [NULL [AS] 'str']   (old syntax)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.tokens import TokenType

from .errors import FEATURE_NOT_SUPPORTED, SYNTAX_ERROR, PgError

READ_ONLY_HINT = "Canon's catalog is read-only: COPY (SELECT …) TO STDOUT reads a query's rows"


@dataclass(frozen=True)
class CopyOptions:
    csv: bool = False
    header: bool = False
    delimiter: str = "\t"
    null: str = "\\N"


@dataclass(frozen=True)
class CopyStatement:
    query: str  # the SELECT text (a bare view name becomes SELECT * FROM it)
    options: CopyOptions


def parse_copy(text: str, tokens) -> CopyStatement:
    """The query and options of a COPY … TO STDOUT statement (tokens: the statement's, COPY first)."""
    if len(tokens) < 4:
        raise PgError(SYNTAX_ERROR, "COPY (query) TO STDOUT", hint=READ_ONLY_HINT)
    if tokens[1].token_type == TokenType.L_PAREN:
        depth, end = 0, None
        for i, tok in enumerate(tokens[1:], start=1):
            depth += tok.token_type == TokenType.L_PAREN
            depth -= tok.token_type == TokenType.R_PAREN
            if depth == 0:
                end = i
                break
        if end is None:
            raise PgError(SYNTAX_ERROR, "COPY: unbalanced parentheses around the query")
        query, rest = text[tokens[2].start:tokens[end].start], tokens[end + 1:]
    else:
        table = exp.Table(this=exp.Identifier(this=tokens[1].text, quoted=True))  # a view's name, as a node
        query, rest = exp.select("*").from_(table).sql(dialect="postgres"), tokens[2:]
        if rest and rest[0].token_type == TokenType.L_PAREN:
            raise PgError(FEATURE_NOT_SUPPORTED, "COPY with a column list: write COPY (SELECT columns FROM view) TO STDOUT")
    words = [tok.text.upper() for tok in rest]
    if words[:1] == ["FROM"]:
        raise PgError("42501", "COPY … FROM is not allowed: Canon serves read-only views", hint=READ_ONLY_HINT)
    if words[:2] != ["TO", "STDOUT"]:
        raise PgError("42501", "COPY to a server file or program is not allowed", hint=READ_ONLY_HINT)
    return CopyStatement(query, _options(rest[2:]))


def _options(tokens) -> CopyOptions:
    values = {"csv": False, "header": False, "delimiter": None, "null": None}
    items = [tok for tok in tokens if tok.token_type not in (TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA)]
    words = [tok.text.upper() for tok in items]
    i = 1 if words[:1] == ["WITH"] else 0
    while i < len(items):
        word = words[i]
        following = items[i + 1] if i + 1 < len(items) else None
        if word == "FORMAT" and following is not None:
            fmt = following.text.lower()
            if fmt not in ("csv", "text"):
                raise PgError(FEATURE_NOT_SUPPORTED, f"COPY format {fmt!r} is not supported", hint="FORMAT csv or text")
            values["csv"] = fmt == "csv"
            i += 2
        elif word == "CSV":
            values["csv"] = True
            i += 1
        elif word == "BINARY":
            raise PgError(FEATURE_NOT_SUPPORTED, "COPY … BINARY is not supported", hint="FORMAT csv or text")
        elif word == "HEADER":
            flag = following.text.lower() if following is not None else ""
            values["header"] = flag not in ("false", "off", "0")
            i += 2 if flag in ("true", "on", "1", "false", "off", "0") else 1
        elif word in ("DELIMITER", "NULL") and following is not None:
            if following.text.upper() == "AS" and i + 2 < len(items):
                i += 1
                following = items[i + 1]
            if following.token_type != TokenType.STRING:
                raise PgError(SYNTAX_ERROR, f"COPY {word} takes a quoted string")
            values[word.lower()] = following.text
            i += 2
        else:
            raise PgError(SYNTAX_ERROR, f"COPY option {items[i].text!r} is not supported",
                          hint="FORMAT csv|text, HEADER, DELIMITER 'c', NULL 'text'")
    delimiter = values["delimiter"] if values["delimiter"] is not None else ("," if values["csv"] else "\t")
    if len(delimiter) != 1:
        raise PgError("22023", "COPY delimiter must be a single one-byte character")
    null = values["null"] if values["null"] is not None else ("" if values["csv"] else "\\N")
    return CopyOptions(values["csv"], values["header"], delimiter, null)


class CopyEncoder:
    """Rows (already text per cell, or None) as COPY data lines."""

    def __init__(self, options: CopyOptions, names: list[str]):
        self.options = options
        self.names = names

    def header(self) -> bytes | None:
        if not self.options.header:
            return None
        return self._line(self.names)

    def line(self, cells: list[str | None]) -> bytes:
        return self._line(cells)

    def _line(self, cells) -> bytes:
        o = self.options
        if o.csv:  # NULL is the unquoted null string; a value equal to it is quoted so the two differ
            text = o.delimiter.join(o.null if c is None else _csv_cell(c, o.delimiter, force=c == o.null)
                                    for c in cells)
        else:
            text = o.delimiter.join(o.null if c is None else _escape(c, o.delimiter) for c in cells)
        return (text + "\n").encode("utf-8")


def _csv_cell(value: str, delimiter: str, *, force: bool = False) -> str:
    if force or any(ch in value for ch in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _escape(value: str, delimiter: str) -> str:
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if delimiter != "\t":
        out = out.replace(delimiter, "\\" + delimiter)
    return out
