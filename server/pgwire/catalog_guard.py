"""What a client's catalog query may be: an allow-list, checked node by node before it runs.

The pg_catalog emulation (pgcatalog.py) runs a client's query, after its rewrites, in a private DuckDB.
Only read-only query shapes pass: SELECT, set operations, VALUES, subqueries and CTEs of those, over the
emulation's own tables (schemas canon_pg / canon_is, or a CTE of the query itself) and the functions
named below. Anything else (DML in any wrapper, DDL, PRAGMA, COPY, ATTACH, SET, an unparsed command, a
table function that reads files) is refused before DuckDB sees it; the DuckDB connection is read-only
besides (see `read_only_copy`), so a hole here still cannot change what other sessions see.

To support a new client query: add the expression node class to ALLOWED_NODES or the function's
name to ALLOWED_FUNCTIONS (lower case: an unknown function's name as written, a typed sqlglot
function's `sql_name()`). Macros defined by pgcatalog are allowed by their names (passed in).
"""

from __future__ import annotations

import os
import tempfile

import duckdb
from sqlglot import exp

from .errors import FEATURE_NOT_SUPPORTED, UNDEFINED_FUNCTION, UNDEFINED_TABLE, PgError

INSUFFICIENT_PRIVILEGE = "42501"
CATALOG_SCHEMAS = frozenset({"canon_pg", "canon_is"})

# the shapes a whole catalog query may have
QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery, exp.Paren)

# expression nodes with no side effect and no access beyond their operands
ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    # query structure
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values, exp.Subquery, exp.With, exp.CTE,
    exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
    exp.Distinct, exp.TableAlias, exp.Alias, exp.Window, exp.WindowSpec, exp.Filter, exp.Lateral,
    # names and values
    exp.Identifier, exp.Column, exp.Table, exp.Star, exp.Dot, exp.Literal, exp.Boolean, exp.Null,
    exp.Array, exp.Tuple, exp.Interval, exp.DataType, exp.DataTypeParam, exp.Var, exp.Paren,
    exp.Bracket, exp.Slice,
    # operators
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.Xor, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.SimilarTo,
    exp.Escape, exp.RegexpLike, exp.RegexpILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod,
    exp.Neg, exp.DPipe, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot,
    exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.Any, exp.All, exp.Exists,
    exp.ArrayContains, exp.ArrayContainsAll, exp.ArrayOverlaps,
    exp.Cast, exp.TryCast, exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Kwarg,
)

# function names (lower case) a catalog query may call: DuckDB built-ins with no I/O and no state
ALLOWED_FUNCTIONS: frozenset[str] = frozenset({
    # aggregates and windows
    "count", "count_if", "sum", "min", "max", "avg", "bool_and", "bool_or", "array_agg", "string_agg",
    "group_concat", "listagg", "first", "last", "any_value", "row_number", "rank", "dense_rank",
    # text
    "lower", "upper", "length", "char_length", "octet_length", "concat", "concat_ws", "substring", "substr",
    "trim", "ltrim", "rtrim", "btrim", "replace", "left", "right", "lpad", "rpad", "reverse", "repeat",
    "split_part", "str_position", "strpos", "position", "starts_with", "ends_with", "format", "quote_ident",
    "regexp_like", "regexp_i_like", "regexp_matches", "regexp_replace", "regexp_extract", "regexp_split",
    "initcap", "ascii", "chr", "md5", "to_char", "string_to_array", "split",
    # arrays and lists
    "array", "array_to_string", "array_length", "array_size", "array_contains", "array_position",
    "array_append", "array_cat", "array_concat", "unnest", "explode", "generate_series",
    "exploding_generate_series", "generate_subscripts", "list", "list_value", "len", "cardinality", "struct",
    "json_object", "logical_and", "logical_or", "array_upper", "array_lower", "array_dims", "array_ndims",
    "array_remove", "array_distinct", "array_sort", "list_contains", "list_has_any", "list_has_all",
    "json_build_object", "row",
    # numbers, logic, dates
    "abs", "ceil", "floor", "round", "greatest", "least", "mod", "power", "pow", "sqrt", "sign", "is_nan",
    "if", "ifnull", "nullif", "coalesce", "case", "cast", "try_cast", "exists",
    "now", "current_timestamp", "current_date", "current_time", "date_trunc", "date_part", "extract",
    "current_timestamp_ltz", "localtimestamp", "age", "to_timestamp", "time_to_str", "str_to_time",
    "str_to_date", "date_add", "date_sub", "date_diff", "datediff", "timestamp_trunc",
    "lag", "lead", "first_value", "last_value", "ntile", "json_extract", "json_extract_scalar", "to_json",
    "typeof",
})


def macro_names(bodies) -> frozenset[str]:
    """The names of constant macro definitions 'name(args) AS body' (pgcatalog's _MACRO_BODIES)."""
    return frozenset(body.split("(", 1)[0].strip().lower() for body in bodies)


def statement_name(node: exp.Expression) -> str:
    """A statement's name for a message: DELETE, PRAGMA, COPY, or the first word of an unparsed one."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, (exp.Column, exp.Alias, exp.Identifier)):  # CHECKPOINT, INSTALL x: read as names
        return node.sql("postgres").split(None, 1)[0].strip('"').upper() if node.sql("postgres") else "?"
    return node.key.upper()


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def check_catalog_query(tree: exp.Expression, *, tables: frozenset[str], functions: frozenset[str]) -> None:
    """Raise PgError unless `tree` is a read-only query over `tables` ('schema.name', lower case) calling
    only `functions` (besides ALLOWED_FUNCTIONS). Checked node by node: every node's class must be in
    ALLOWED_NODES or be a function call by an allowed name."""
    if not isinstance(tree, QUERY_ROOTS):
        raise PgError(INSUFFICIENT_PRIVILEGE, f"{statement_name(tree)} is not allowed: the catalog is read-only",
                      hint="catalog queries are SELECT, VALUES and set operations over pg_catalog and "
                           "information_schema")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = ALLOWED_FUNCTIONS | functions
    for node in tree.walk():
        if isinstance(node, exp.Table):
            _check_table(node, tables, ctes, allowed)
        elif isinstance(node, ALLOWED_NODES):
            continue
        elif isinstance(node, exp.Func):
            name = function_name(node)
            if name not in allowed:
                raise PgError(UNDEFINED_FUNCTION, f"function {name}() is not available in catalog queries",
                              hint="Canon emulates pg_catalog's common functions; files, settings and "
                                   "extensions are out of reach")
        elif isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Into, exp.Lock, exp.Copy, exp.Set,
                               exp.Pragma, exp.Transaction, exp.Commit, exp.Rollback)):
            raise PgError(INSUFFICIENT_PRIVILEGE, f"{statement_name(node)} is not allowed: the catalog is read-only",
                          hint="catalog queries are SELECT, VALUES and set operations")
        else:
            raise PgError(FEATURE_NOT_SUPPORTED, f"{node.key.upper()} is not supported in catalog queries",
                          hint="catalog queries are SELECT, VALUES and set operations over pg_catalog and "
                               "information_schema")


def _check_table(node: exp.Table, tables: frozenset[str], ctes: set[str], allowed: frozenset[str]) -> None:
    if isinstance(node.this, exp.Func):  # FROM generate_series(...), unnest(...)
        name = function_name(node.this)
        if name in allowed:
            return
        raise PgError(UNDEFINED_FUNCTION, f"table function {name}() is not available in catalog queries",
                      hint="files, settings and extensions are out of reach")
    if node.args.get("catalog") is not None:
        raise PgError(UNDEFINED_TABLE, f'relation "{node.sql("postgres")}" does not exist')
    schema, name = node.db.lower(), node.name.lower()
    if (not schema and name in ctes) or f"{schema}.{name}" in tables:
        return
    raise PgError(UNDEFINED_TABLE, f'relation "{node.sql("postgres")}" does not exist')


def read_only_copy(db: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The metadata built in `db` (in memory), copied into a private file and reopened read-only, without
    file access and with its configuration locked; `db` is closed and the file unlinked (the open
    connection keeps it). Writes, settings and extensions fail in DuckDB itself."""
    folder = tempfile.mkdtemp(prefix="canon-pgcatalog-")
    path = os.path.join(folder, "catalog.duckdb")
    try:
        db.execute("ATTACH ? AS canon_snapshot", [path])
        db.execute("COPY FROM DATABASE memory TO canon_snapshot")
        db.execute("DETACH canon_snapshot")
        db.close()
        return duckdb.connect(path, read_only=True, config={
            "enable_external_access": False, "autoload_known_extensions": False,
            "autoinstall_known_extensions": False, "allow_community_extensions": False,
            "python_enable_replacements": False,  # an unknown table name never reads a Python variable
            "lock_configuration": True})
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def catalog_tables(db: duckdb.DuckDBPyConnection, schemas=CATALOG_SCHEMAS) -> frozenset[str]:
    """'schema.table' of every table the emulation holds, read from DuckDB itself."""
    rows = db.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
    return frozenset(f"{s}.{t}".lower() for s, t in rows if s in schemas)
