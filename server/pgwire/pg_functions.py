"""PostgreSQL functions that catalog queries of BI tools and drivers call, for the pg_catalog emulation.

- `format(fmt, ...)` with `%s`, `%I`, `%L`, `%%` (Metabase: `format('%I.%I', schema, table)::regclass`)
  is rewritten, when its format is a literal, into a concatenation of its arguments (DuckDB's own
  `format` speaks `{}`, not `%s`).
- The rest are DuckDB macros (constant text, created once per catalog version, allowed by name in the
  catalog guard): quote_ident, quote_literal, quote_nullable, information_schema._pg_expandarray
  (pgJDBC getPrimaryKeys / getIndexInfo), pg_size_pretty with PostgreSQL's rounding, and the lookup
  of a function's name from its oid (pg_type.typreceive holds pg_proc oids, as Npgsql's type loading
  joins them).
"""

from __future__ import annotations

from sqlglot import exp

from .errors import INVALID_PARAMETER_VALUE, PgError

PG_FUNCTION_MACROS = [
    # an identifier needs quotes unless it is lower case letters, digits, _ and $ (not leading digit/$)
    "quote_ident(x) AS CASE WHEN regexp_full_match(x::VARCHAR, '[a-z_][a-z0-9_$]*') THEN x::VARCHAR "
    "ELSE '\"' || replace(x::VARCHAR, '\"', '\"\"') || '\"' END",
    "quote_literal(x) AS '''' || replace(x::VARCHAR, '''', '''''') || ''''",
    "quote_nullable(x) AS coalesce('''' || replace(x::VARCHAR, '''', '''''') || '''', 'NULL')",
    # setof (x, n): one row per element; (f(a)).n and (f(a)).x read its fields
    "_pg_expandarray(a) AS unnest(list_transform(generate_series(1, len(a)), lambda i: {'x': a[i], 'n': i}))",
    # PostgreSQL's pg_size_pretty: bytes below 10 kB, then kB, MB, GB, TB, each rounded half up
    "pg_size_pretty(x) AS CASE WHEN abs(x) < 10240 THEN x::BIGINT::VARCHAR || ' bytes' "
    "WHEN abs(x >> 9) < 20480 THEN ((x >> 9) + 1 >> 1)::VARCHAR || ' kB' "
    "WHEN abs(x >> 19) < 20480 THEN ((x >> 19) + 1 >> 1)::VARCHAR || ' MB' "
    "WHEN abs(x >> 29) < 20480 THEN ((x >> 29) + 1 >> 1)::VARCHAR || ' GB' "
    "ELSE ((x >> 39) + 1 >> 1)::VARCHAR || ' TB' END",
    "canon_procname(x) AS coalesce((SELECT max(p.proname) FROM canon_pg.pg_proc p WHERE p.oid = x), x::VARCHAR)",
    "canon_procoid(x) AS (SELECT max(p.oid) FROM canon_pg.pg_proc p "
    "WHERE p.proname = lower(replace(x, 'pg_catalog.', '')))",
]


def pg_format(node: exp.Format) -> exp.Expression:
    """format('%I.%I', a, b) -> quote_ident(a) || '.' || quote_ident(b); a NULL %s argument reads as ''."""
    template = node.this
    if not (isinstance(template, exp.Literal) and template.is_string):
        return node
    args = list(node.expressions)
    text, parts, literal, at, i = template.name, [], "", 0, 0
    while i < len(text):
        char = text[i]
        if char != "%":
            literal += char
            i += 1
            continue
        spec = text[i + 1:i + 2]
        if spec == "%":
            literal += "%"
            i += 2
            continue
        if spec not in ("s", "I", "L"):
            raise PgError(INVALID_PARAMETER_VALUE, f'unrecognized format() type specifier "{spec}"',
                          hint="format() here takes %s, %I, %L and %%")
        if at >= len(args):
            raise PgError("22023", "too few arguments for format()")
        if literal:
            parts.append(exp.Literal.string(literal))
            literal = ""
        arg = args[at]
        at += 1
        text_arg = exp.cast(arg, exp.DataType.Type.VARCHAR)
        if spec == "s":
            parts.append(exp.Coalesce(this=text_arg, expressions=[exp.Literal.string("")]))
        elif spec == "I":
            parts.append(exp.Anonymous(this="quote_ident", expressions=[arg]))
        else:
            parts.append(exp.Anonymous(this="quote_nullable", expressions=[arg]))
        i += 2
    if literal or not parts:
        parts.append(exp.Literal.string(literal))
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part)
    return exp.Paren(this=out)


def proc_rows(types, namespace: int, owner: int, first_oid: int) -> tuple[list[dict], dict[str, int]]:
    """pg_proc rows for the types' input/output/receive/send functions (arrays share array_in,
    array_out, array_recv, array_send, as in PostgreSQL), and their oids by name."""
    oids: dict[str, int] = {}
    rows = []
    for name, oid, _size, category, _array, _element in types:
        prefix = "array_" if category == "A" else ("record_" if name == "record" else name)
        for suffix, returns in (("in", oid), ("out", 2275), ("recv", oid), ("send", 17)):
            proname = f"{prefix}{suffix}" if prefix.endswith("_") else f"{prefix}{suffix}"
            if proname in oids:
                continue
            oids[proname] = first_oid + len(oids)
            rows.append({"oid": oids[proname], "proname": proname, "pronamespace": namespace, "proowner": owner,
                         "prolang": 12, "procost": 1.0, "prorows": 0.0, "provariadic": 0, "prokind": "f",
                         "prosecdef": False, "proleakproof": False, "proisstrict": True, "proretset": False,
                         "provolatile": "i", "proparallel": "s", "pronargs": 1, "pronargdefaults": 0,
                         "prorettype": returns, "proargtypes": "", "prosrc": proname, "proisagg": False,
                         "proiswindow": False})
    return rows, oids


def type_function_oids(name: str, category: str, oids: dict[str, int]) -> dict[str, int]:
    """typinput/typoutput/typreceive/typsend of one type, as pg_proc oids."""
    prefix = "array_" if category == "A" else ("record_" if name == "record" else name)
    return {f"typ{kind}": oids.get(f"{prefix}{suffix}", 0)
            for kind, suffix in (("input", "in"), ("output", "out"), ("receive", "recv"), ("send", "send"))}


REGPROC_COLUMNS = frozenset({"typinput", "typoutput", "typreceive", "typsend"})


def regproc_comparison(node: exp.Expression) -> exp.Expression:
    """`typinput = 'array_in'`: PostgreSQL reads the text as a regproc; here the column holds pg_proc
    oids, so the name is looked up (canon_procoid)."""
    if not isinstance(node, (exp.EQ, exp.NEQ)):
        return node
    for column, other in ((node.this, node.expression), (node.expression, node.this)):
        if isinstance(column, exp.Column) and column.name.lower() in REGPROC_COLUMNS \
                and isinstance(other, exp.Literal) and other.is_string:
            other.replace(exp.func("canon_procoid", other.copy()))
            return node
    return node
