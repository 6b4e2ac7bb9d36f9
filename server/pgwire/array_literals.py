"""`x = ANY('{r,p,""}')` in a catalog query: an untyped array text, which PostgreSQL types from the
other side (pgspecial's \\dt and \\dv write `c.relkind = ANY({relkinds})` through psycopg, which sends a
list so). DuckDB would read the text as a VARCHAR and refuse to unnest it; here it becomes an ARRAY of
its elements as string literals (NULL stays NULL). Anything else inside ANY is left as it is.
"""

from __future__ import annotations

from sqlglot import exp

from .types import parse_array_text


def any_array_literal(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.Any):
        return node
    inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
    if not (isinstance(inner, exp.Literal) and inner.is_string and inner.name.strip().startswith("{")):
        return node
    try:
        items = parse_array_text(inner.name)
    except ValueError:
        return node  # not a one-dimensional array text: the engine says what is wrong
    array = exp.Array(expressions=[exp.null() if v is None else exp.Literal.string(v) for v in items])
    return exp.Any(this=array)
