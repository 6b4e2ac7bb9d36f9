"""Arrays of PostgreSQL's object-identifier types: `x::regtype[]` (pgcli's function list writes
`COALESCE(proallargtypes::regtype[], proargtypes::regtype[])::text[]`).

sqlglot reads `regtype`, `regclass`... as an object identifier and stops there, so the `[]` that
follows fails to parse as an empty subscript. The parser mixin reads it as an array of that type. In a
catalog query a `regtype[]` value is the list of its type names, as PostgreSQL prints it; the value
can be an oidvector (pg_proc.proargtypes, text such as '23 25') or an oid array (proallargtypes).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.tokens import TokenType


class ObjectIdentifierArrays:
    """Parser mixin: `regtype[]`, `regclass[][]`... as array types."""

    def _parse_types(self, *args, **kwargs):
        this = super()._parse_types(*args, **kwargs)
        if isinstance(this, exp.ObjectIdentifier):
            while self._match_pair(TokenType.L_BRACKET, TokenType.R_BRACKET):
                this = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[this], nested=True)
        return this


# DuckDB macros of the catalog engine (pgcatalog.py), over its canon_pg.format_names (oid -> type name).
# canon_oids: an oidvector's text or an oid array -> BIGINT[]; canon_regtypes: -> the type names, in order
# (an oid with no name stays its number, as canon_typname does); NULL stays NULL.
REGTYPE_ARRAY_MACROS = [
    r"canon_oids(v) AS list_transform(list_filter(regexp_split_to_array(trim(regexp_replace(v::VARCHAR, "
    r"'[\[\],{}]', ' ', 'g')), '\s+'), lambda s: s <> ''), lambda s: s::BIGINT)",
    "canon_regtypes(v) AS CASE WHEN v IS NULL THEN NULL ELSE coalesce((SELECT list(coalesce(f.name, "
    "u.x::VARCHAR) ORDER BY u.i) FROM (SELECT unnest(canon_oids(v)) AS x, generate_subscripts(canon_oids(v), 1) "
    "AS i) u LEFT JOIN canon_pg.format_names f ON f.oid = u.x), []::VARCHAR[]) END",
]


def regtype_array(value: exp.Expression) -> exp.Expression:
    """`value::regtype[]` in a catalog query: the list of type names."""
    return exp.func("canon_regtypes", value)


def regtype_comparison(node: exp.Expression) -> exp.Expression:
    """`prorettype::regtype != 'trigger'::regtype` (pgcli): regtypes compare as oids. The casts are
    rewritten already (children first): the column's to its name (canon_typname), the literal's to an
    oid (canon_regtype); the column side goes back to its oid."""
    if not isinstance(node, (exp.EQ, exp.NEQ)):
        return node
    sides = (node.this, node.expression)
    names = [s for s in sides if isinstance(s, exp.Anonymous) and s.name.lower() == "canon_typname"]
    if names and any(isinstance(s, exp.Anonymous) and s.name.lower() == "canon_regtype" for s in sides):
        names[0].replace(names[0].expressions[0].copy())
    return node
