"""Semantic SQL -> a metric request.

A client's SELECT over a view (`SELECT product_category, MEASURE(revenue) FROM sales WHERE ... GROUP BY 1
ORDER BY 2 DESC LIMIT 10`) is read with sqlglot (postgres dialect) and mapped, node by node, onto a
`QueryRequest`: columns become dimension references and metric names, `DATE_TRUNC('month', metric_time)`
becomes `metric_time.month`, WHERE becomes filters over dimension references (as sqlglot expressions,
rendered to text that the compiler parses again through its allow-list), ORDER BY / LIMIT / OFFSET map
one to one. The compiler does the rest: there is no second compiler here. Outer wrappers that BI tools
add (`SELECT * FROM (...) AS t LIMIT 1000`, CTEs) are folded into the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from sqlglot import exp

from canon.compiler.catalog import Catalog
from canon.compiler.model import GRAINS
from canon.compiler.request import QueryRequest

from .datefold import fold_dates, resolve_now
from . import types as t
from .types import parse_array_text
from .errors import (FEATURE_NOT_SUPPORTED, GROUPING_ERROR, SYNTAX_ERROR, UNDEFINED_COLUMN, UNDEFINED_TABLE,
                     PgError)
from .post_aggregation import Planner, PostQuery
from .views import ViewColumnInfo, ViewTable, dimension_oid

_AGGREGATES = (exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Count, exp.AnyValue)
_ADDITIVE = {"sum", "count"}  # measures whose SUM over the requested grain is the metric itself


@dataclass(frozen=True)
class Output:
    name: str  # the column name the client sees
    key: str  # the dimension reference or metric name in the request
    oid: int


@dataclass(frozen=True)
class SemanticQuery:
    request: QueryRequest
    outputs: tuple[Output, ...]
    empty: bool = False  # LIMIT 0: answer with the columns only
    having: exp.Expression | None = field(default=None, compare=False)  # over request keys


def find_view_tables(tree: exp.Expression, views: dict[str, ViewTable]) -> list[exp.Table]:
    cte_names = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    found = []
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        schema = table.db.lower()
        if name in views and schema in ("", "public") and name not in cte_names:
            found.append(table)
    return found


def translate(tree: exp.Expression, catalog: Catalog, views: dict[str, ViewTable],
              params: list | None = None, *, now: datetime | None = None) -> "SemanticQuery | PostQuery":
    """A parsed statement over one view -> a SemanticQuery (one request, its columns picked as they are)
    or, for SQL over a request's result (expressions, wrappers, joins of subqueries), a PostQuery.
    Parameters ($1..) are bound as literals; constant dates (TO_DATE, NOW(), intervals) are folded."""
    tree = bind_params(tree, params)
    if not isinstance(tree, exp.Select):
        raise PgError(FEATURE_NOT_SUPPORTED, f"{tree.key.upper()} over Canon views is not supported",
                      hint="query one view with a single SELECT; UNION, INSERT and friends are not available")
    now = now or resolve_now(catalog.settings.calendar.now)
    tree = _any_to_in(fold_dates(_inline_ctes(tree), now))
    try:
        return _Translator(catalog, views).query(tree)
    except PgError as error:
        if error.sqlstate not in _POST_AGGREGATION_STATES:
            raise
    return Planner(lambda: _Translator(catalog, views)).plan(tree)


# refusals of the one-request translation that SQL over the request's result may answer
_POST_AGGREGATION_STATES = {FEATURE_NOT_SUPPORTED, UNDEFINED_COLUMN, UNDEFINED_TABLE, GROUPING_ERROR}


def _any_to_in(tree: exp.Expression) -> exp.Expression:
    """`col = ANY(ARRAY[...])` (an array parameter, as drivers bind IN lists) -> `col IN (...)`."""
    def swap(node):
        if isinstance(node, exp.EQ) and isinstance(node.expression, exp.Any):
            values = node.expression.this
            while isinstance(values, (exp.Paren, exp.Cast)):  # ANY($1::text[])
                values = values.this
            if isinstance(values, exp.Literal) and values.is_string:  # '{a,b}' bound as text
                try:
                    values = exp.Array(expressions=[literal(v) for v in parse_array_text(values.name)])
                except ValueError:
                    return node
            if isinstance(values, exp.Array):
                if not values.expressions:
                    return exp.false()
                return exp.In(this=node.this, expressions=list(values.expressions))
        return node

    return tree.transform(swap)


# --- parameters -------------------------------------------------------------------------------------


def literal(value) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, Decimal)):
        return exp.Literal.number(str(value))
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):  # an array parameter
        return exp.Array(expressions=[literal(v) for v in value])
    return exp.Literal.string(str(value))


def param_index(node: exp.Expression) -> int | None:
    if isinstance(node, exp.Parameter) and node.this is not None and str(node.name).isdigit():
        return int(node.name)
    if isinstance(node, exp.Placeholder) and str(node.name).isdigit():
        return int(node.name)
    return None


def bind_params(tree: exp.Expression, params: list | None) -> exp.Expression:
    if not any(param_index(n) for n in tree.walk()):
        return tree
    params = params or []

    def swap(node):
        index = param_index(node)
        if index is None:
            return node
        if index < 1 or index > len(params):
            raise PgError("08P01", f"there is no parameter ${index}", hint=f"{len(params)} parameter(s) were bound")
        return literal(params[index - 1])

    return tree.copy().transform(swap)


def _inline_ctes(select: exp.Select) -> exp.Select:
    """WITH q AS (...) SELECT ... FROM q  ->  SELECT ... FROM (...) AS q."""
    with_ = select.args.get("with_") or select.args.get("with")
    if not with_:
        return select
    ctes = {c.alias_or_name.lower(): c.this for c in with_.expressions}
    select = select.copy()
    select.set("with_", None)
    select.set("with", None)

    def swap(node):
        if isinstance(node, exp.Table) and not node.db and node.name.lower() in ctes:
            body = ctes[node.name.lower()].copy()
            return exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(node.alias_or_name)))
        return node

    return select.transform(swap)


# --- the translator -------------------------------------------------------------------------------------


@dataclass
class _Item:
    kind: str  # dimension | metric
    key: str
    name: str
    oid: int


class _Translator:
    def __init__(self, catalog: Catalog, views: dict[str, ViewTable]):
        self.catalog = catalog
        self.views = views

    def query(self, select: exp.Select) -> SemanticQuery:
        source = select.args.get("from_") or select.args.get("from")
        if source is None:
            raise PgError(FEATURE_NOT_SUPPORTED, "a query over Canon views needs FROM <view>")
        if select.args.get("joins"):
            raise PgError(FEATURE_NOT_SUPPORTED, "joins between Canon views are not supported",
                          hint="each view already joins its metrics and dimensions; query one view, "
                               "and put every column you need in its SELECT list")
        relation = source.this
        if isinstance(relation, exp.Subquery):
            inner = relation.this
            if isinstance(inner, exp.Subquery):
                inner = inner.unnest()
            if not isinstance(inner, exp.Select):
                raise PgError(FEATURE_NOT_SUPPORTED, "only a SELECT may be nested in FROM")
            inner = _inline_ctes(inner)
            plain = self._plain_projection(inner)  # the view itself (virtual datasets, Power BI's "rows")
            if plain is not None:
                return self._over_view(select, *plain)
            return self._wrap(select, self.query(inner))
        if not isinstance(relation, exp.Table):
            raise PgError(FEATURE_NOT_SUPPORTED, f"cannot read from {relation.sql('postgres')[:60]}")
        view = self._view(relation)
        return self._over_view(select, view, {}, None, {relation.alias_or_name.lower(), view.name})

    def _view(self, table: exp.Table) -> ViewTable:
        view = self.views.get(table.name.lower())
        if view is None or table.db.lower() not in ("", "public"):
            raise PgError(UNDEFINED_TABLE, f'relation "{table.sql("postgres")}" does not exist',
                          hint="Canon's tables are its views: " + ", ".join(sorted(self.views)))
        return view

    # a nested SELECT that only picks or renames columns of a view (Superset's virtual datasets)
    def _plain_projection(self, inner: exp.Select):
        src = inner.args.get("from_") or inner.args.get("from")
        if src is None or not isinstance(src.this, exp.Table) or inner.args.get("joins"):
            return None
        if any(inner.args.get(k) for k in ("group", "having", "order", "limit", "offset", "distinct")):
            return None
        view = self._view(src.this)
        renames: dict[str, ViewColumnInfo] = {}
        for projection in inner.expressions:
            node = projection.unalias() if isinstance(projection, exp.Alias) else projection
            if isinstance(node, exp.Star):
                renames.update({c.name.lower(): c for c in view.columns})
            elif isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                column = view.column(node.name)
                if column is None:
                    return None
                renames[projection.alias_or_name.lower()] = column
            elif isinstance(node, exp.Column):
                renames.update({c.name.lower(): c for c in view.columns})
            else:
                return None
        where = inner.args.get("where")
        return view, renames, (where.this if where else None), {src.this.alias_or_name.lower(), view.name}

    def _over_view(self, select: exp.Select, view: ViewTable, renames: dict, inner_where, qualifiers) -> SemanticQuery:
        self.view = view
        self.renames = renames or {c.name.lower(): c for c in view.columns}
        self.qualifiers = qualifiers
        items: list[_Item] = []
        for projection in select.expressions:
            node = projection.unalias() if isinstance(projection, exp.Alias) else projection
            if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
                for name, column in self.renames.items():
                    items.append(_Item(column.kind, column.ref, name if renames else column.name, column.oid))
                continue
            item = self._item(node, where="SELECT")
            name = projection.alias if isinstance(projection, exp.Alias) else self._default_name(node, item)
            items.append(replace(item, name=name))

        hidden: list[_Item] = []
        group = select.args.get("group")
        if group:
            for node in group.expressions:
                item = self._group_item(node, items, select)
                if item.kind == "metric":
                    raise PgError(GROUPING_ERROR, f"cannot GROUP BY metric {item.key}",
                                  hint="metrics are aggregated for you; group by dimensions only")
                if not any(i.key == item.key for i in items + hidden):
                    hidden.append(item)

        dims, metrics = [], []
        for item in items + hidden:
            target = dims if item.kind == "dimension" else metrics
            if item.key not in target:
                target.append(item.key)
        if not metrics:
            if not view.metrics:
                raise PgError(FEATURE_NOT_SUPPORTED, f"view {view.name} has no metrics")
            metrics.append(view.metrics[0].ref)  # a dimension-only query lists the values that have facts

        conditions = []
        if inner_where is not None:  # a virtual dataset may filter on a column it does not select
            self.renames = {c.name.lower(): c for c in view.columns}
            conditions.append(self._filter(inner_where))
            self.renames = renames or self.renames
        where = select.args.get("where")
        if where is not None:
            conditions.append(self._filter(where.this))
        conditions += view.where  # a saved query's reviewed filter (catalog text, parsed by the compiler)

        having = select.args.get("having")
        having_tree = self._having(having.this, items, metrics) if having is not None else None

        order = []
        for ordered in (select.args.get("order").expressions if select.args.get("order") else ()):
            item = self._order_item(ordered.this, items)
            if item.kind == "metric" and item.key not in metrics:
                metrics.append(item.key)
            if item.kind == "dimension" and item.key not in dims:
                raise PgError(GROUPING_ERROR, f"ORDER BY {item.name}: the column must be grouped by",
                              hint=f"add {item.name} to SELECT and GROUP BY")
            order.append(("-" if ordered.args.get("desc") else "") + item.key)
        if not select.args.get("order"):  # a saved query's own order, for the columns read
            order = [o for o in view.order if o.lstrip("-+") in dims + metrics]

        limit, offset = _int_clause(select, "limit"), _int_clause(select, "offset")
        outputs = tuple(Output(i.name, i.key, i.oid) for i in items)
        request = QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims), where=tuple(conditions),
                               order=tuple(order), limit=limit, offset=offset or None)
        return SemanticQuery(request=request, outputs=outputs, empty=limit == 0, having=having_tree)

    # one wrapper around a full semantic query: pick columns, re-order, cut rows
    def _wrap(self, outer: exp.Select, inner: SemanticQuery) -> SemanticQuery:
        for key in ("group", "having", "joins", "distinct"):
            if outer.args.get(key):
                raise PgError(FEATURE_NOT_SUPPORTED, f"{key.upper()} around an aggregating subquery is not supported",
                              hint="put the grouping in the inner query, or select from the view directly")
        if outer.args.get("where"):
            raise PgError(FEATURE_NOT_SUPPORTED, "WHERE around an aggregating subquery is not supported",
                          hint="move the condition into the inner query (WHERE on dimensions, HAVING on metrics)")
        by_name = {o.name.lower(): o for o in inner.outputs}
        outputs = []
        for projection in outer.expressions:
            node = projection.unalias() if isinstance(projection, exp.Alias) else projection
            if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
                outputs.extend(inner.outputs)
            elif isinstance(node, exp.Column) and node.name.lower() in by_name:
                found = by_name[node.name.lower()]
                outputs.append(Output(projection.alias_or_name, found.key, found.oid))
            else:
                raise PgError(UNDEFINED_COLUMN, f'column "{node.sql("postgres")}" does not exist in the subquery',
                              hint="its columns: " + ", ".join(o.name for o in inner.outputs))
        request = inner.request
        order = request.order
        if outer.args.get("order"):
            order = []
            for ordered in outer.args["order"].expressions:
                node = ordered.this
                if isinstance(node, exp.Literal) and node.is_int and 1 <= int(node.name) <= len(outputs):
                    key = outputs[int(node.name) - 1].key
                elif isinstance(node, exp.Column) and node.name.lower() in by_name:
                    key = by_name[node.name.lower()].key
                elif isinstance(node, exp.Column) and any(o.name.lower() == node.name.lower() for o in outputs):
                    key = next(o.key for o in outputs if o.name.lower() == node.name.lower())
                else:
                    raise PgError(UNDEFINED_COLUMN, f"ORDER BY {node.sql('postgres')}: not a column of the subquery")
                order.append(("-" if ordered.args.get("desc") else "") + key)
            if request.limit is not None or request.offset:
                raise PgError(FEATURE_NOT_SUPPORTED, "ORDER BY around a subquery with LIMIT/OFFSET is not supported")
        limit, offset = _int_clause(outer, "limit"), _int_clause(outer, "offset") or 0
        new_offset = (request.offset or 0) + offset
        new_limit = request.limit
        if new_limit is not None:
            new_limit = max(0, new_limit - offset)
        if limit is not None:
            new_limit = limit if new_limit is None else min(new_limit, limit)
        request = replace(request, order=tuple(order), limit=new_limit, offset=new_offset or None)
        return SemanticQuery(request, tuple(outputs), empty=inner.empty or new_limit == 0, having=inner.having)

    # --- columns and expressions --------------------------------------------------------------------

    def _column(self, node: exp.Column) -> ViewColumnInfo:
        if node.table and node.table.lower() not in self.qualifiers:
            raise PgError(UNDEFINED_TABLE, f'missing FROM-clause entry for table "{node.table}"',
                          hint=f"the query reads {self.view.name}")
        column = self.renames.get(node.name.lower())
        if column is None:
            raise PgError(UNDEFINED_COLUMN, f'column "{node.name}" does not exist in view {self.view.name}',
                          hint=f"columns of {self.view.name}: {', '.join(self.renames)}")
        return column

    def _item(self, node: exp.Expression, *, where: str) -> _Item:
        if isinstance(node, exp.Cast):  # CAST(... AS DATE) and friends that BI tools wrap around columns
            item = self._item(node.this, where=where)
            if not _cast_keeps(node, item):  # a cast that changes the value (revenue::int) is SQL over the result
                raise PgError(FEATURE_NOT_SUPPORTED, f"{node.sql('postgres')[:60]}: a cast over the request's result")
            return item
        if isinstance(node, exp.Paren):
            return self._item(node.this, where=where)
        if isinstance(node, exp.Column):
            column = self._column(node)
            return _Item(column.kind, column.ref, column.name, column.oid)
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc, exp.TimeStampTrunc if hasattr(exp, "TimeStampTrunc") else exp.TimestampTrunc)):
            return self._trunc(node)
        if isinstance(node, exp.Anonymous) and node.name.upper() == "MEASURE":
            if len(node.expressions) != 1 or not isinstance(node.expressions[0], exp.Column):
                raise PgError(SYNTAX_ERROR, "MEASURE() takes one metric column, e.g. MEASURE(revenue)")
            column = self._column(node.expressions[0])
            if column.kind != "metric":
                raise PgError(FEATURE_NOT_SUPPORTED, f"MEASURE({column.name}): {column.name} is a dimension, not a metric",
                              hint="metrics of this view: " + ", ".join(c.name for c in self.view.metrics))
            return _Item("metric", column.ref, column.name, column.oid)
        if isinstance(node, _AGGREGATES):
            return self._aggregate(node)
        raise PgError(FEATURE_NOT_SUPPORTED,
                      f"{where} {node.sql('postgres')[:80]}: Canon answers with the view's columns only",
                      hint=f"select dimensions and metrics by name (metrics as name, MEASURE(name) or the "
                           f"aggregate that matches them), time grains with DATE_TRUNC('month', metric_time); "
                           f"columns of {self.view.name}: {', '.join(self.renames)}")

    def _trunc(self, node: exp.Expression) -> _Item:
        unit = node.args.get("unit")
        grain = (unit.name if unit is not None else "").lower()
        target = node.this
        while isinstance(target, exp.Cast):
            target = target.this
        if not isinstance(target, exp.Column):
            raise PgError(FEATURE_NOT_SUPPORTED, "DATE_TRUNC takes a time column of the view, e.g. "
                                                 "DATE_TRUNC('month', metric_time)")
        column = self._column(target)
        if column.kind != "dimension" or not column.time:
            raise PgError(FEATURE_NOT_SUPPORTED, f"DATE_TRUNC({column.name}): {column.name} is not a time dimension",
                          hint="time columns: " + ", ".join(c.name for c in self.view.columns if c.time))
        if grain not in GRAINS:
            raise PgError(FEATURE_NOT_SUPPORTED, f"DATE_TRUNC('{grain}', ...): unsupported time grain",
                          hint="grains: " + ", ".join(GRAINS))
        base = column.ref.split(".")
        if len(base) == 3 or (base[0] == "metric_time" and len(base) == 2):
            base = base[:-1]
        ref = ".".join(base + [grain])
        oid, _ = dimension_oid(self.catalog, ref)
        return _Item("dimension", ref, "date_trunc", oid)

    def _aggregate(self, node: exp.Expression) -> _Item:
        arg = node.this
        if isinstance(arg, exp.Distinct) or not isinstance(arg, exp.Column) or isinstance(arg.this, exp.Star):
            raise PgError(FEATURE_NOT_SUPPORTED, f"{node.sql('postgres')[:60]}: Canon computes metrics from their "
                                                 "definitions; aggregates apply only around a metric column",
                          hint="metrics of this view: " + ", ".join(c.name for c in self.view.metrics))
        column = self._column(arg)
        if column.kind != "metric":
            raise PgError(GROUPING_ERROR, f"{node.sql('postgres')[:60]}: {column.name} is a dimension",
                          hint="group by it instead; metrics of this view: "
                               + ", ".join(c.name for c in self.view.metrics))
        wanted = {exp.Sum: "sum", exp.Min: "min", exp.Max: "max", exp.Avg: "avg", exp.Count: "count",
                  exp.AnyValue: "any_value"}[type(node)]
        natural = self._natural_aggregate(column.ref)
        if wanted not in ("any_value",) and not (wanted == natural or (wanted == "sum" and natural in _ADDITIVE)):
            raise PgError(FEATURE_NOT_SUPPORTED,
                          f"{wanted.upper()}({column.name}) does not match the definition of {column.name} "
                          f"({self._describe_metric(column.ref)})",
                          hint=f"write MEASURE({column.name}) or {column.name} to get the metric as defined")
        return _Item("metric", column.ref, column.name, column.oid)

    def _natural_aggregate(self, metric: str) -> str | None:
        facts = self.catalog.facts.get(metric)
        return facts.agg if facts else None

    def _describe_metric(self, metric: str) -> str:
        definition = self.catalog.metrics.get(metric)
        natural = self._natural_aggregate(metric)
        if natural:
            return f"a {natural.replace('_', ' ')} of {self.catalog.facts[metric].measures[0]}"
        return f"a {definition.type} metric" if definition is not None else "a metric"

    def _default_name(self, node: exp.Expression, item: _Item) -> str:
        while isinstance(node, (exp.Cast, exp.Paren)):
            node = node.this
        if isinstance(node, exp.Column):
            return node.name
        return item.name

    def _match_output(self, node: exp.Expression, items: list[_Item]) -> _Item | None:
        if isinstance(node, exp.Literal) and node.is_int:
            index = int(node.name)
            if not 1 <= index <= len(items):
                raise PgError(UNDEFINED_COLUMN, f"position {index} is not in the select list",
                              hint=f"the select list has {len(items)} column(s)")
            return items[index - 1]
        if isinstance(node, exp.Column) and not node.table:
            for item in items:
                if item.name.lower() == node.name.lower():
                    return item
        return None

    def _group_item(self, node, items, select) -> _Item:
        found = self._match_output(node, items)
        return found if found is not None else self._item(node, where="GROUP BY")

    def _order_item(self, node, items) -> _Item:
        found = self._match_output(node, items)
        return found if found is not None else self._item(node, where="ORDER BY")

    # --- filters ------------------------------------------------------------------------------------

    def _filter(self, condition: exp.Expression) -> exp.Expression:
        """WHERE over view columns -> a condition tree over dimension references (the compiler checks it
        with the filter allow-list; it is never rendered to text and parsed again)."""

        def swap(node):
            if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
                return _ref_column(self._trunc(node).key)
            if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                column = self._column(node)
                if column.kind == "metric":
                    raise PgError(GROUPING_ERROR, f"WHERE {column.name}: {column.name} is a metric",
                                  hint="filter metrics with HAVING; WHERE takes dimensions")
                return _ref_column(column.ref)
            if isinstance(node, exp.Collate):
                return node.this
            return node

        return condition.copy().transform(swap)

    def _having(self, condition: exp.Expression, items: list[_Item], metrics: list[str]) -> exp.Expression:
        """HAVING over metrics -> a condition over the request's output keys (metric names)."""

        def swap(node):
            if isinstance(node, (exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Count, exp.AnyValue, exp.Column, exp.Anonymous)):
                if isinstance(node, exp.Anonymous) and node.name.upper() != "MEASURE":
                    return node
                matched = self._match_output(node, items) if isinstance(node, exp.Column) else None
                item = matched or self._item(node, where="HAVING")
                if item.kind != "metric":
                    raise PgError(FEATURE_NOT_SUPPORTED, f"HAVING {item.name}: filter dimensions with WHERE")
                if item.key not in metrics:
                    metrics.append(item.key)
                return exp.column(item.key, quoted=True)
            return node

        return condition.copy().transform(swap)


_TEXT_TYPES = {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR}
_TIME_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
               exp.DataType.Type.TIMESTAMPNTZ}


def _cast_keeps(cast: exp.Cast, item: _Item) -> bool:
    """Whether a cast leaves the column's values as they are (text to text, a date or timestamp to a time
    type: the dimension's own grain decides), so the request can answer it directly."""
    kind = cast.to.this if cast.to is not None else None
    if item.oid in (t.TEXT, t.VARCHAR):
        return kind in _TEXT_TYPES
    if item.oid in (t.DATE, t.TIMESTAMP):
        return kind in _TIME_TYPES
    return False


def _ref_column(ref: str) -> exp.Column:
    parts = ref.split(".")
    ids = [exp.to_identifier(p, quoted=True) for p in parts]
    if len(ids) == 1:
        return exp.Column(this=ids[0])
    if len(ids) == 2:
        return exp.Column(this=ids[1], table=ids[0])
    return exp.Column(this=ids[2], table=ids[1], db=ids[0])


def _int_clause(select: exp.Select, key: str) -> int | None:
    clause = select.args.get(key)
    if clause is None:
        return None
    node = clause.expression if isinstance(clause, (exp.Limit, exp.Offset)) else clause
    if node is None:
        node = clause.this
    if isinstance(node, exp.Null) or (isinstance(node, exp.Var) and node.name.upper() == "ALL"):
        return None
    if isinstance(node, exp.Cast):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_int and int(node.name) >= 0:
        return int(node.name)
    if isinstance(node, exp.Literal) and node.is_string and node.name.isdigit():
        return int(node.name)
    raise PgError(SYNTAX_ERROR, f"{key.upper()} takes a whole number ≥ 0, not {node.sql('postgres')}")
