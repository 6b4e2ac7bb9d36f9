"""Post-aggregation SQL over the semantic views.

A BI tool's query is often a semantic request plus SQL over its result: `ROUND(SUM(revenue) / 1000, 1)`,
`CASE`, `COALESCE`, `EXTRACT(year FROM metric_time)`, `COUNT(DISTINCT product_category)`, the row-count
wrapper `SELECT COUNT(*) FROM (...) AS rowcount_qry`, Power BI's `where not "_"."a0" is null` around a
grouped subquery, Superset's series-limit join. Such a query is planned in two parts:

- each innermost SELECT over a view becomes one `QueryRequest` (compiled and run by the runtime, like
  every other query): its dimension and metric references ("leaves") are the request's dimensions and
  metrics, its WHERE becomes the request's filters (before aggregation, where they belong);
- everything above the leaves stays SQL, now over the requests' results: it is checked node by node
  against an allow-list (below) and run in a private in-memory DuckDB that holds nothing but those
  result rows, with external access disabled.

Grain: a request is grouped by every dimension the SELECT names. Where the SELECT's GROUP BY is that
grain, each metric is the metric itself; where it groups coarser (by an expression over a dimension,
or not by a dimension it counts), an additive metric (a sum or count) is summed over the finer rows and
any other metric is refused, since re-aggregating a ratio or a distinct count would be wrong.
`COUNT(*)` over a view is the view's first count metric (for `sales`, `order_count`); over a subquery
it counts the subquery's rows, as in PostgreSQL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
from sqlglot import exp

from canon.compiler.model import GRAINS
from canon.compiler.request import QueryRequest

from . import types as t
from .errors import (FEATURE_NOT_SUPPORTED, GROUPING_ERROR, SYNTAX_ERROR, UNDEFINED_COLUMN, UNDEFINED_FUNCTION,
                     UNDEFINED_TABLE, PgError)

_AGGREGATES = (exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Count, exp.AnyValue)
_ADDITIVE = {"sum", "count"}

# Node types the SQL above the leaves may use. Anything else is refused (0A000) before it runs.
_ALLOWED = (
    exp.Select, exp.From, exp.Join, exp.Subquery, exp.TableAlias, exp.Table, exp.Where, exp.Group, exp.Having,
    exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Distinct, exp.Alias, exp.Column, exp.Identifier,
    exp.Star, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Like, exp.ILike, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Pow,
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.Round, exp.Abs, exp.Floor, exp.Ceil,
    exp.Cast, exp.TryCast, exp.DataType, exp.Var, exp.Interval,
    exp.Extract, exp.TimestampTrunc, exp.DateTrunc, exp.TimeToStr, exp.ToChar,
    exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Count, exp.AnyValue,
    exp.Upper, exp.Lower, exp.Length, exp.Trim, exp.Concat, exp.DPipe, exp.Substring,
)
_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
          exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
          exp.DataType.Type.SMALLINT, exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT,
          exp.DataType.Type.DECIMAL, exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT,
          exp.DataType.Type.CHAR, exp.DataType.Type.BOOLEAN}
_ARROW = {t.TEXT: pa.string(), t.VARCHAR: pa.string(), t.NUMERIC: pa.float64(), t.FLOAT8: pa.float64(),
          t.INT8: pa.int64(), t.INT4: pa.int64(), t.INT2: pa.int64(), t.BOOL: pa.bool_(), t.DATE: pa.date32(),
          t.TIMESTAMP: pa.timestamp("us")}
_PG_NAMES = {"count": "count", "sum": "sum", "avg": "avg", "min": "min", "max": "max", "round": "round",
             "coalesce": "coalesce", "timestamp_trunc": "date_trunc", "date_trunc": "date_trunc",
             "extract": "extract", "case": "case", "time_to_str": "to_char", "to_char": "to_char",
             "abs": "abs", "floor": "floor", "ceil": "ceil", "nullif": "nullif", "greatest": "greatest",
             "least": "least", "upper": "upper", "lower": "lower", "any_value": "any_value"}


@dataclass
class Level:
    """One semantic request under the SQL: its result is the table `name` with `columns`."""
    name: str
    request: QueryRequest
    columns: list[tuple[str, str, int]]  # (column in the table, request key, oid)


@dataclass
class PostQuery:
    levels: list[Level]
    tree: exp.Select  # checked SQL over the levels' tables (DuckDB dialect)
    notices: list[str] = field(default_factory=list)


def is_semantic_level(select: exp.Select, translator) -> tuple | None:
    """(view, renames, inner WHERE, qualifiers) when `select` reads a view directly or through a plain
    projection of one (a virtual dataset); None otherwise."""
    source = select.args.get("from_") or select.args.get("from")
    if source is None:
        return None
    relation = source.this
    if isinstance(relation, exp.Table):
        view = translator.views.get(relation.name.lower())
        if view is None or relation.db.lower() not in ("", "public"):
            return None
        return view, {}, None, {relation.alias_or_name.lower(), view.name}
    if isinstance(relation, exp.Subquery) and isinstance(relation.this, exp.Select):
        plain = translator._plain_projection(relation.this)
        if plain is not None:
            view, renames, where, _ = plain
            return view, renames, where, {relation.alias_or_name.lower(), view.name}
    return None


class Planner:
    def __init__(self, translator_factory):
        self.new_translator = translator_factory
        self.levels: list[Level] = []

    def plan(self, select: exp.Select) -> PostQuery:
        tree = self._select(select.copy())
        check(tree, {level.name for level in self.levels})
        return PostQuery(self.levels, tree)

    def _select(self, select: exp.Select) -> exp.Select:
        translator = self.new_translator()
        found = is_semantic_level(select, translator)
        # subqueries in FROM and JOIN first (an inner semantic level, or more SQL)
        relations = []
        source = select.args.get("from_") or select.args.get("from")
        if source is not None and found is None:
            relations.append(source)
        relations += list(select.args.get("joins") or [])
        for holder in relations:
            relation = holder.this
            if isinstance(relation, exp.Subquery):
                inner = relation.this
                if not isinstance(inner, exp.Select):
                    raise PgError(FEATURE_NOT_SUPPORTED, "only a SELECT may be nested in FROM or JOIN",
                                  hint="UNION and VALUES over Canon views are not supported")
                relation.set("this", self._select(inner))
            elif isinstance(relation, exp.Table) and holder is not source:
                raise PgError(FEATURE_NOT_SUPPORTED, "joins between Canon views are not supported",
                              hint="each view already joins its metrics and dimensions; join only subqueries "
                                   "over one view (e.g. a series limit)")
            elif isinstance(relation, exp.Table):
                raise PgError(UNDEFINED_TABLE if relation.name else FEATURE_NOT_SUPPORTED,
                              f'relation "{relation.sql("postgres")}" is not a Canon view',
                              hint="Canon's tables are its views: " + ", ".join(sorted(translator.views)))
        if found is not None:
            return self._level(select, translator, *found)
        _name_projections(select, select)
        return select

    # --- one SELECT over a view -------------------------------------------------------------------------

    def _level(self, select: exp.Select, tr, view, renames, inner_where, qualifiers) -> exp.Select:
        tr.view, tr.renames, tr.qualifiers = view, renames or {c.name.lower(): c for c in view.columns}, qualifiers
        name = f"__canon_r{len(self.levels)}"
        alias = (select.args.get("from_") or select.args.get("from")).this.alias_or_name
        original = select.copy()
        grouped = bool(select.args.get("group")) or any(
            node.find(*_AGGREGATES) for key in ("expressions", "having", "order")
            for node in _as_list(select.args.get(key)))
        conditions = []
        if inner_where is not None:
            full = tr.renames
            tr.renames = {c.name.lower(): c for c in view.columns}  # a virtual dataset may filter on any column
            conditions.append(tr._filter(inner_where))
            tr.renames = full
        if select.args.get("where") is not None:
            conditions.append(tr._filter(select.args["where"].this))
            select.set("where", None)

        leaves: dict[str, tuple[str, str, int]] = {}  # key -> (column, kind, oid)

        def leaf_column(kind: str, key: str, oid: int) -> exp.Column:
            if key not in leaves:
                leaves[key] = (f"__canon_{len(leaves)}", kind, oid)
            return exp.column(leaves[key][0], table=alias, quoted=True)

        metric_nodes: list[exp.Column] = []
        select_aliases = {p.alias.lower() for p in select.expressions if isinstance(p, exp.Alias)}
        tr.joined = bool(select.args.get("joins"))

        def substitute(node):
            item = self._leaf(node, tr, select_aliases)
            if item is None:
                return node
            column = leaf_column(item.kind, item.key, item.oid)
            if item.kind == "metric":
                metric_nodes.append(column)
            if isinstance(node, exp.Count):  # COUNT(*) is a bigint in PostgreSQL
                return exp.Cast(this=column, to=exp.DataType.build("BIGINT"))  # the same node: it may be wrapped
            return column

        # SELECT * over the view: every column, named as the view names it
        expanded = []
        for projection in select.expressions:
            if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column)
                                                    and isinstance(projection.this, exp.Star)):
                for col_name, column in tr.renames.items():
                    expanded.append(exp.alias_(exp.column(col_name), col_name if renames else column.name,
                                               quoted=True))
            else:
                expanded.append(projection)
        select.set("expressions", expanded)
        def substitute_order(node):
            # ORDER BY reads an output column's name first (PostgreSQL), then the view's columns
            if isinstance(node, exp.Column) and not node.table and node.name.lower() in select_aliases:
                return node
            return substitute(node)

        for key in ("expressions", "group", "having", "order"):
            value = select.args.get(key)
            if value is None:
                continue
            swap = substitute_order if key == "order" else substitute
            if isinstance(value, list):
                select.set(key, [v.transform(swap) for v in value])
            else:
                select.set(key, value.transform(swap))
        for join in select.args.get("joins") or []:  # only the ON condition: the joined subquery is planned
            if join.args.get("on") is not None:
                join.set("on", join.args["on"].transform(substitute))
        if select.args.get("group") is not None:
            metric_names = {leaves[k][0] for k in leaves if leaves[k][1] == "metric"}
            for node in select.args["group"].find_all(exp.Column):
                if node.name in metric_names:
                    raise PgError(GROUPING_ERROR, f"cannot GROUP BY metric {node.name}",
                                  hint="metrics are aggregated for you; group by dimensions only")

        dims = [k for k, (_, kind, _) in leaves.items() if kind == "dimension"]
        metrics = [k for k, (_, kind, _) in leaves.items() if kind == "metric"]
        if not metrics:
            if not view.metrics:
                raise PgError(FEATURE_NOT_SUPPORTED, f"view {view.name} has no metrics")
            metrics.append(view.metrics[0].ref)  # dimension values that have facts, as a plain SELECT lists them
            leaves.setdefault(metrics[0], (f"__canon_{len(leaves)}", "metric", t.NUMERIC))

        if grouped:
            self._aggregate_metrics(select, leaves, metric_nodes, tr, alias)
        _name_projections(select, original)
        select.set("from_", exp.From(this=exp.Table(this=exp.to_identifier(name),
                                                     alias=exp.TableAlias(this=exp.to_identifier(alias)))))
        select.set("from", None)
        columns = [(col, key, oid) for key, (col, _, oid) in leaves.items()]
        request = QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims), where=tuple(conditions))
        self.levels.append(Level(name, request, columns))
        return select

    def _leaf(self, node, tr, select_aliases):
        """The request item a node stands for (a view column, DATE_TRUNC of a time column, MEASURE(m), an
        aggregate that matches a metric, COUNT(*)), or None to look inside it."""
        from .semantic import _Item

        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            if node.table and node.table.lower() not in tr.qualifiers:
                return None  # a column of a joined subquery
            if not node.table and tr.renames.get(node.name.lower()) is None and (
                    node.name.lower() in select_aliases or getattr(tr, "joined", False)):
                return None  # a SELECT alias (ORDER BY total), or a column of a joined subquery
            column = tr._column(node)
            return _Item(column.kind, column.ref, column.name, column.oid)
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
            target = node.this
            while isinstance(target, exp.Cast):
                target = target.this
            unit = node.args.get("unit")
            if isinstance(target, exp.Column) and unit is not None and unit.name.lower() in GRAINS:
                column = tr._column(target)
                if column.kind == "dimension" and column.time:
                    return tr._trunc(node)
            return None
        if isinstance(node, exp.Anonymous) and node.name.upper() == "MEASURE":
            return tr._item(node, where="SELECT")
        if isinstance(node, exp.Count) and (isinstance(node.this, exp.Star) or (
                isinstance(node.this, exp.Literal) and not isinstance(node.this, exp.Null))):  # COUNT(1) too
            metric = _count_metric(tr)
            return _Item("metric", metric.ref, metric.name, metric.oid)
        if isinstance(node, _AGGREGATES):
            arg = node.this
            if isinstance(arg, exp.Column) and not isinstance(arg.this, exp.Star):
                column = tr._column(arg)
                if column.kind == "metric":
                    return tr._aggregate(node)
        return None

    def _aggregate_metrics(self, select, leaves, metric_nodes, tr, alias) -> None:
        """In a grouped SELECT a metric column is one value per group (the request's grain) or, grouped
        coarser, the sum of an additive metric's finer values."""
        by_position = {i + 1: p.unalias() for i, p in enumerate(select.expressions)}
        keys = []
        for node in (select.args["group"].expressions if select.args.get("group") else []):
            if isinstance(node, exp.Literal) and node.is_int:
                node = by_position.get(int(node.name), node)
            keys.append(node)
        plain = {k.name for k in keys if isinstance(k, exp.Column)}
        fine = all(col in plain for col, kind, _ in leaves.values() if kind == "dimension")
        names = {col: key for key, (col, _, _) in leaves.items()}
        for column in metric_nodes:
            key = names[column.name]
            if fine:
                column.replace(exp.AnyValue(this=column.copy()))
                continue
            natural = tr._natural_aggregate(key)
            if natural not in _ADDITIVE:
                raise PgError(GROUPING_ERROR, f"{key} cannot be re-aggregated over a coarser grouping "
                                              f"({tr._describe_metric(key)})",
                              hint="group by the dimensions themselves (DATE_TRUNC('month', metric_time) for a "
                                   "time grain); expressions over them are fine in SELECT, not in GROUP BY")
            column.replace(exp.Sum(this=column.copy()))


def _count_metric(tr):
    for column in tr.view.metrics:
        if tr._natural_aggregate(column.ref) in ("count", "count_distinct"):
            return column
    raise PgError(FEATURE_NOT_SUPPORTED, f"COUNT(*) over view {tr.view.name}: the view has no count metric",
                  hint="metrics of this view: " + ", ".join(c.name for c in tr.view.metrics))


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def pg_name(node: exp.Expression) -> str:
    """The column name PostgreSQL gives a select-list item."""
    if isinstance(node, exp.Alias):
        return node.alias
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Cast):
        inner = node.this
        return inner.name if isinstance(inner, exp.Column) else node.to.sql("postgres").lower()
    if isinstance(node, exp.Anonymous):
        if node.name.upper() == "MEASURE" and node.expressions:
            return node.expressions[0].name
        return node.name.lower()
    if isinstance(node, exp.Func):
        return _PG_NAMES.get(node.key, _PG_NAMES.get(node.sql_name().lower(), "?column?"))
    return "?column?"


def _name_projections(select: exp.Select, original: exp.Select) -> None:
    """Alias every select-list item with the name PostgreSQL would give it (from the client's text)."""
    originals = [p for p in original.expressions]
    out = []
    for i, projection in enumerate(select.expressions):
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)):
            out.append(projection)
            continue
        source = originals[i] if i < len(originals) and len(originals) == len(select.expressions) else projection
        out.append(exp.alias_(projection.unalias() if isinstance(projection, exp.Alias) else projection,
                              pg_name(source), quoted=True))
    select.set("expressions", out)


def check(tree: exp.Expression, tables: set[str]) -> None:
    """Every node of the SQL above the leaves against the allow-list; tables only the levels' results."""
    for node in tree.walk():
        if not isinstance(node, _ALLOWED):
            what = node.sql("postgres")[:80]
            state = UNDEFINED_FUNCTION if isinstance(node, exp.Func) else FEATURE_NOT_SUPPORTED
            raise PgError(state, f"{what}: not supported over Canon's views",
                          hint="around a view's dimensions and metrics you may use arithmetic, CASE, COALESCE, "
                               "NULLIF, ROUND, ABS, casts, EXTRACT, DATE_TRUNC, TO_CHAR, comparisons, "
                               "COUNT/SUM/MIN/MAX/AVG, GROUP BY, HAVING, ORDER BY, LIMIT and subqueries in FROM")
        if isinstance(node, exp.Table) and node.name not in tables:
            raise PgError(FEATURE_NOT_SUPPORTED, f'relation "{node.sql("postgres")}" cannot be read here',
                          hint="read one Canon view per subquery")
        if isinstance(node, exp.DataType) and node.this not in _TYPES:
            raise PgError(FEATURE_NOT_SUPPORTED, f"cast to {node.sql('postgres')} is not supported here",
                          hint="cast to date, timestamp, integer, bigint, numeric, double precision, text or boolean")
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
            raise PgError(FEATURE_NOT_SUPPORTED, "IN (subquery) over Canon's views is not supported",
                          hint="join the subquery in FROM instead")


# --- running ------------------------------------------------------------------------------------------


class Engine:
    """A private in-memory DuckDB per statement: the levels' rows, the checked SQL, nothing else."""

    _lock = threading.Lock()

    def __init__(self, max_rows: int = 100_000, memory_limit: str = "1GB"):
        self.max_rows = max_rows
        self.memory_limit = memory_limit
        self.truncated = False

    def run(self, query: PostQuery, rows_by_level: list[list[tuple]] | None) -> tuple[list[tuple[str, int]], list[tuple]]:
        """Run the SQL over the levels' rows (None: over empty tables, to describe the result). At most
        `max_rows` rows come back (`truncated` tells); one thread and bounded memory, as a joined
        subquery could multiply rows."""
        db = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": self.memory_limit})
        try:
            db.execute("SET integer_division = true")  # PostgreSQL: int / int is an int
            db.execute("SET enable_external_access = false")
            db.execute("SET lock_configuration = true")
            for i, level in enumerate(query.levels):
                rows = rows_by_level[i] if rows_by_level is not None else []
                db.register(level.name, _arrow(level, rows))
            tree = query.tree if rows_by_level is not None else \
                exp.select("*").from_(query.tree.subquery("_canon_columns", copy=True)).limit(0)  # columns only
            sql = tree.sql(dialect="duckdb")
            try:
                result = db.execute(sql)
                description = result.description
                out = result.fetchmany(self.max_rows + 1)
                self.truncated = len(out) > self.max_rows
                out = out[:self.max_rows]
            except duckdb.BinderException as error:
                message = str(error).splitlines()[0].replace("Binder Error: ", "")
                raise PgError(UNDEFINED_COLUMN, message.replace("__canon_r", "result ")[:300],
                              hint="outside the view's own columns, name only columns of the subquery "
                                   "you read or aliases of the SELECT list") from None
            except duckdb.ConversionException as error:
                raise PgError("22P02", str(error).splitlines()[0][:300]) from None
            except duckdb.OutOfMemoryException:
                raise PgError("53200", "the SQL over the result needs too much memory",
                              hint="add filters, or avoid joins that multiply rows") from None
            except duckdb.Error as error:
                raise PgError(SYNTAX_ERROR if isinstance(error, duckdb.ParserException) else FEATURE_NOT_SUPPORTED,
                              str(error).splitlines()[0][:300]) from None
            columns = [(d[0], _oid(d[1])) for d in description]
            return columns, out
        finally:
            db.close()


def _oid(kind) -> int:
    oid = t.duckdb_oid(str(kind))
    return t.NUMERIC if oid in (t.FLOAT8, t.FLOAT4) else oid  # metrics are numeric on the wire, as in plain queries


def _arrow(level: Level, rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows)) if rows else [[] for _ in level.columns]
    fields = [pa.field(col, _ARROW.get(oid, pa.string())) for col, _, oid in level.columns]
    # exact decimals stay decimals (SUM(revenue) over them is exact, as in the plain path)
    fields = [pa.field(spec.name, _decimal_type(values)) if spec.type == pa.float64() and _decimal_type(values)
              else spec for spec, values in zip(fields, columns)]
    arrays = []
    for values, spec in zip(columns, fields):
        if pa.types.is_decimal(spec.type):
            values = [None if v is None else v.quantize(Decimal(1).scaleb(-spec.type.scale)) for v in values]
        elif spec.type == pa.float64():
            values = [None if v is None else float(v) for v in values]
        elif spec.type == pa.date32():
            values = [v.date() if isinstance(v, datetime) else v for v in values]
        elif spec.type == pa.string():
            values = [None if v is None else (v.isoformat() if isinstance(v, date) else str(v)) for v in values]
        arrays.append(pa.array(values, type=spec.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _decimal_type(values) -> pa.DataType | None:
    """decimal128(38, scale) when every value is a finite Decimal with at most 18 decimals, else None."""
    present = [v for v in values if v is not None]
    if not present or not all(isinstance(v, Decimal) and v.is_finite() for v in present):
        return None
    scale = max(max(0, -v.as_tuple().exponent) for v in present)
    digits = max(len(v.as_tuple().digits) - max(0, -v.as_tuple().exponent) for v in present)
    if scale > 18 or digits + scale > 38:
        return None
    return pa.decimal128(38, scale)
