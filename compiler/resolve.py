"""Resolve pass: (Catalog, QueryRequest) -> ResolvedQuery.

Binds every name in the request: metrics are expanded into the measures they aggregate (with the
filters, time offsets and windows that apply to each) and into output expressions over those
measures; dimensions, filters, HAVING conditions, ordering, time zone and time range are parsed
and checked. Join paths are chosen later, per measure source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlglot import exp

from . import model as m
from .calendar import CLOCK_GRAINS, WEEKDAYS, TimeContext, Window, check_timezone, parse_window
from .catalog import AffinityInfo, Catalog, MeasureInfo
from .cohort import CohortInput, is_cohort_request, resolve_cohort
from .errors import QueryError, UnknownNameError, did_you_mean
from .refs import METRIC_TIME, DimRef, parse_ref, split_measure_ref
from .request import QueryRequest
from .sqlexpr import SOURCE_DIALECT, ParsedFilter, column_ref, parse_filter
from .timerange import is_relative, relative_range

MAX_LIMIT = 1_000_000


@dataclass(frozen=True)
class Cumulative:
    window: Window | None  # None with no grain_to_date: all time (`window: unbounded`)
    grain_to_date: str | None


@dataclass(frozen=True)
class MeasureInput:
    """One measure aggregated under a set of filters (and maybe shifted or accumulated in time)."""

    alias: str
    measure: MeasureInfo
    filters: tuple[ParsedFilter, ...]
    metric: str  # the metric that asked for it, for messages
    offset: Window | None = None
    cumulative: Cumulative | None = None


@dataclass(frozen=True)
class ConversionInput:
    metric: str
    base_alias: str
    conversion_alias: str
    base: MeasureInput
    conversion: MeasureInput
    entity: str
    window: Window


@dataclass(frozen=True)
class BoundFilter:
    parsed: ParsedFilter
    refs: dict[str, DimRef]


@dataclass(frozen=True)
class ResolvedQuery:
    request: QueryRequest
    dims: tuple[DimRef, ...]
    where: tuple[BoundFilter, ...]
    outputs: tuple[tuple[str, exp.Expression], ...]  # metric name -> expression over input aliases
    inputs: tuple[MeasureInput, ...]
    affinity: AffinityInfo | None
    order: tuple[tuple[str, bool], ...]  # (output alias, descending)
    start: str | None
    end: str | None
    conversions: tuple[ConversionInput, ...] = ()
    having: exp.Expression | None = None  # over output aliases
    time: TimeContext = TimeContext()
    fill_time: bool = False  # list every period of the range (time spine)
    cohort: CohortInput | None = None  # cohort metrics, planned on their own (compiler/cohort.py)

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(name as requested, type) of every output column, in order."""
        return [(d.ref, d.type) for d in self.dims] + [(name, "number") for name, _ in self.outputs]

    @property
    def time_dim(self) -> DimRef | None:
        return next((d for d in self.dims if d.kind == METRIC_TIME), None)


def _fill_gaps(catalog: Catalog, request: QueryRequest, names, dims) -> bool:
    """Whether to list every period of the range. A request may ask (`fill_gaps`); otherwise a metric
    with `join_to_timespine` fills a pure time series (every dimension on metric_time). Crossing the
    periods with other dimensions multiplies rows (every day × every product × every country), so
    that happens only when asked."""
    # the time spine holds days: periods shorter than a day are listed as the data has them
    clock = any(d.kind == METRIC_TIME and d.grain in CLOCK_GRAINS for d in dims)
    if request.fill_gaps:
        if not any(d.kind == METRIC_TIME for d in dims):
            raise QueryError("fill_gaps lists every period of metric_time, and the request does not group by it",
                             hint="add a dimension metric_time.<grain> (day, week, month, ...)")
        if clock:
            raise QueryError("fill_gaps lists the days of the time spine: it cannot list hours, minutes or seconds",
                             hint="group by metric_time.day or coarser, or leave fill_gaps out")
        return True
    if request.fill_gaps is not None:
        return False
    declared = any(getattr(catalog.metrics[n], "join_to_timespine", False) for n in names)
    return declared and bool(dims) and all(d.kind == METRIC_TIME for d in dims) and not clock


def resolve(catalog: Catalog, request: QueryRequest) -> ResolvedQuery:
    names = _check_names(catalog, request)
    if is_cohort_request(catalog, names):
        return resolve_cohort(catalog, request, names)
    affinity = _affinity(catalog, names)
    item_model = affinity.item_model if affinity else None
    _no_duplicates(request.dimensions, "dimension")
    dims = tuple(parse_ref(catalog, ref, item_model=item_model) for ref in request.dimensions)
    where = tuple(_bind_filter(catalog, text, i, item_model) for i, text in enumerate(request.where))
    conversions: tuple = ()
    if affinity:
        outputs, inputs = tuple((name, exp.column(name)) for name in names), ()
    else:
        outputs, inputs, conversions = _expand_metrics(catalog, names)
    aliases = {d.ref: d.alias for d in dims} | {name: name for name in names}
    order = tuple(_order_item(item, aliases) for item in request.order)
    having = _having(request.having, aliases)
    _check_limit(request)
    start, end = _range(catalog, request)
    time = time_context(catalog, request)
    fill = _fill_gaps(catalog, request, names, dims)
    resolved = ResolvedQuery(request, dims, where, outputs, inputs, affinity, order, start, end,
                             conversions, having, time, fill)
    _check_time_needs(catalog, resolved)
    return resolved


def time_context(catalog: Catalog, request: QueryRequest) -> TimeContext:
    """The request's time zone with the catalog's calendar (week start, fiscal year, DATE columns)."""
    calendar = catalog.settings.calendar
    return TimeContext(check_timezone(request.timezone), WEEKDAYS.index(calendar.week_start),
                       calendar.fiscal_year_start_month, catalog.stored_dates)


def _check_names(catalog: Catalog, request: QueryRequest) -> tuple[str, ...]:
    if not request.metrics:
        raise QueryError("no metric requested", hint=did_you_mean("", catalog.metrics))
    for name in request.metrics:
        if name not in catalog.metrics:
            raise UnknownNameError(f"unknown metric '{name}'", hint=did_you_mean(str(name), catalog.metrics))
    _no_duplicates(request.metrics, "metric")
    return request.metrics


def _no_duplicates(values, what):
    seen = set()
    for value in values:
        if value in seen:
            raise QueryError(f"{what} '{value}' is requested twice", hint="ask for each once")
        seen.add(value)


def _affinity(catalog: Catalog, names) -> AffinityInfo | None:
    found = [catalog.affinities[n] for n in names if n in catalog.affinities]
    if not found:
        return None
    if len(found) != len(names):
        others = [n for n in names if n not in catalog.affinities]
        raise QueryError(
            f"affinity metrics ({', '.join(a.definition.name for a in found)}) are computed per product pair "
            f"and cannot be combined with {', '.join(others)} in one query",
            hint="query them separately")
    first = found[0]
    for other in found[1:]:
        same = (other.bridge, other.basket_model, other.item_model) == (first.bridge, first.basket_model, first.item_model)
        if not same or other.definition.filter != first.definition.filter:
            raise QueryError(
                f"affinity metrics {first.definition.name} and {other.definition.name} differ in basket, item or filter",
                hint="query them separately")
    return first


def _bind_filter(catalog: Catalog, where, index: int, item_model: str | None) -> BoundFilter:
    field = "where" if index == 0 else f"where[{index}]"
    parsed = parse_filter(where, field=field)  # text, or a condition tree a front end built
    text = where if isinstance(where, str) else where.sql(SOURCE_DIALECT)
    refs = {ref: parse_ref(catalog, ref, item_model=item_model) for ref in parsed.refs}
    from .metric_filters import check_refs

    check_refs(catalog, parsed.condition)  # metric(name, by=entity): names known (compiler/metric_filters.py)
    if isinstance(parsed.condition, exp.Column) and refs[parsed.refs[0]].type != "boolean":
        from .errors import FilterError

        raise FilterError(f"{text!r} is a {refs[parsed.refs[0]].type} dimension, not a condition",
                          location=None, hint=f"compare it with a value, e.g. {text} = '...'")
    return BoundFilter(parsed, refs)


# --- metrics -> measure inputs -----------------------------------------------------------------


def _expand_metrics(catalog: Catalog, names) -> tuple[tuple, tuple, tuple]:
    expander = _Expander(catalog, names)
    outputs = []
    for name in names:
        expander.asking = name
        outputs.append((name, expander.expand(name, (), None)))
    return tuple(outputs), tuple(expander.inputs.values()), tuple(expander.conversions.values())


class _Expander:
    """Metrics -> the measure inputs they aggregate and an expression over those; one method per
    metric type, chosen in `_EXPAND`."""

    def __init__(self, catalog: Catalog, names):
        self.catalog = catalog
        self.inputs: dict[tuple, MeasureInput] = {}
        self.conversions: dict[str, ConversionInput] = {}
        self.taken: set[str] = set(names)
        self.asking = ""  # the requested metric being expanded, named in messages

    def fresh(self, base: str) -> str:
        alias, n = base, 1
        while alias in self.taken:
            alias, n = f"{base}_{n}", n + 1
        self.taken.add(alias)
        return alias

    def measure_input(self, metric: m.SimpleMetric, extra, offset=None, cumulative=None) -> MeasureInput:
        measure = split_measure_ref(self.catalog, metric.measure)
        own = self.catalog.metric_filters.get(metric.name)
        filters = ((own,) if own else ()) + extra
        key = (measure.ref, tuple(id(f) for f in filters), offset, cumulative)
        found = self.inputs.get(key)
        if found is None:
            plain = not extra and offset is None and cumulative is None
            alias = metric.name if plain and metric.name not in {i.alias for i in self.inputs.values()} \
                else self.fresh(metric.name)
            self.taken.add(alias)
            found = self.inputs[key] = MeasureInput(alias, measure, filters, self.asking, offset, cumulative)
        return found

    def event_input(self, metric: m.SimpleMetric, extra) -> MeasureInput:
        own = self.catalog.metric_filters.get(metric.name)
        return MeasureInput(metric.name, split_measure_ref(self.catalog, metric.measure),
                            ((own,) if own else ()) + extra, metric.name)

    def expand(self, name: str, extra: tuple, offset: Window | None) -> exp.Expression:
        metric = self.catalog.metrics[name]
        by_type = _EXPAND.get(type(metric))
        if by_type is None:
            raise QueryError(f"metric '{metric.name}' of type {metric.type} cannot be used inside another metric",
                             hint="query it on its own")
        value = by_type(self, metric, extra, offset)
        fill = getattr(metric, "fill_nulls_with", None)
        if fill is not None:
            fill = int(fill) if float(fill).is_integer() else fill  # 0 keeps counts whole numbers
            value = exp.Coalesce(this=value, expressions=[exp.convert(fill)])
        return value

    def expand_input(self, parent, inp, extra, offset) -> exp.Expression:
        if isinstance(inp, str):
            return self.expand(inp, extra, offset)
        own = self.catalog.input_filters.get((parent.name, inp.alias or inp.name))
        shifted = offset
        if inp.offset_window:
            if offset is not None:
                raise QueryError(f"metric '{parent.name}': time offsets cannot be nested",
                                 hint="shift the innermost metric once")
            shifted = parse_window(inp.offset_window)
        return self.expand(inp.name, extra + ((own,) if own else ()), shifted)

    # --- one per metric type ---

    def simple(self, metric: m.SimpleMetric, extra, offset) -> exp.Expression:
        return exp.column(self.measure_input(metric, extra, offset).alias)

    def ratio(self, metric: m.RatioMetric, extra, offset) -> exp.Expression:
        num = self.expand_input(metric, metric.numerator, extra, offset)
        den = self.expand_input(metric, metric.denominator, extra, offset)
        return exp.Div(this=exp.cast(num, exp.DataType.Type.DOUBLE),
                       expression=exp.Nullif(this=den, expression=exp.Literal.number(0)))

    def derived(self, metric: m.DerivedMetric, extra, offset) -> exp.Expression:
        values = {(i if isinstance(i, str) else (i.alias or i.name)): self.expand_input(metric, i, extra, offset)
                  for i in metric.metrics}
        tree = self.catalog.derived_exprs[metric.name]
        return tree.transform(lambda node: exp.Paren(this=values[node.name].copy())
                              if isinstance(node, exp.Column) else node)

    def cumulative(self, metric: m.CumulativeMetric, extra, offset) -> exp.Expression:
        window = parse_window(metric.window) if metric.window not in (None, "unbounded") else None
        spec = Cumulative(window, metric.grain_to_date)
        if offset is not None:
            raise QueryError(f"metric '{metric.name}' is cumulative and cannot be shifted in time",
                             hint="shift the metric it accumulates instead")
        return exp.column(self.measure_input(self.catalog.metrics[metric.metric], extra, None, spec).alias)

    def conversion(self, metric: m.ConversionMetric, extra, offset) -> exp.Expression:
        if offset is not None:
            raise QueryError(f"metric '{metric.name}' is a conversion metric and cannot be shifted in time")
        found = self.conversions.get(metric.name)
        if found is None:
            # the events are counted by the conversion node, not as plain aggregates
            base = self.event_input(self.catalog.metrics[metric.base], extra)
            conversion = self.event_input(self.catalog.metrics[metric.conversion], ())
            found = self.conversions[metric.name] = ConversionInput(
                metric.name, self.fresh(f"{metric.name}_base"), self.fresh(f"{metric.name}_conversions"),
                base, conversion, metric.entity, parse_window(metric.window))
        converted = exp.column(found.conversion_alias)
        if metric.calculation == "conversions":
            return converted
        return exp.Div(this=exp.cast(converted, exp.DataType.Type.DOUBLE),
                       expression=exp.Nullif(this=exp.column(found.base_alias), expression=exp.Literal.number(0)))


# affinity metrics are planned on their own (resolve's `_affinity`), never expanded
_EXPAND = {m.SimpleMetric: _Expander.simple, m.RatioMetric: _Expander.ratio, m.DerivedMetric: _Expander.derived,
           m.CumulativeMetric: _Expander.cumulative, m.ConversionMetric: _Expander.conversion}


# --- the rest of the request ---------------------------------------------------------------------


def _order_item(item: str, aliases: dict[str, str]) -> tuple[str, bool]:
    if not isinstance(item, str) or not item.lstrip("-+"):
        raise QueryError("order: empty field", hint="write a requested metric or dimension, '-' for descending")
    desc = item.startswith("-")
    name = item.lstrip("-+")
    if name not in aliases:
        raise UnknownNameError(f"order: '{name}' is not among the requested metrics and dimensions",
                               hint=did_you_mean(name, aliases))
    return aliases[name], desc


def _having(texts: tuple[str, ...], aliases: dict[str, str]) -> exp.Expression | None:
    """HAVING conditions name requested metrics (and dimensions); they apply to the final rows."""
    conditions = []
    for i, text in enumerate(texts):
        parsed = parse_filter(text, field="having" if i == 0 else f"having[{i}]")
        for ref in parsed.refs:
            if ref not in aliases:
                raise UnknownNameError(f"having: '{ref}' is not among the requested metrics and dimensions",
                                       hint=did_you_mean(ref, aliases))

        def bind(node):
            if isinstance(node, exp.Column):
                return exp.column(exp.to_identifier(aliases[column_ref(node)], quoted=True))
            return node
        conditions.append(parsed.condition.transform(bind))
    return exp.and_(*conditions) if conditions else None


def _check_limit(request: QueryRequest):
    for name in ("limit", "offset"):
        value = getattr(request, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "limit" else 0):
            raise QueryError(f"{name}: {value!r} must be a whole number{' of at least 1' if name == 'limit' else ' ≥ 0'}")
        if value > MAX_LIMIT:
            raise QueryError(f"{name}: {value} is above the maximum of {MAX_LIMIT:,}",
                             hint="narrow the query with filters or ask for fewer rows")


def _range(catalog: Catalog, request: QueryRequest) -> tuple[str | None, str | None]:
    if request.time_range:
        if request.start or request.end:
            raise QueryError("give either time_range or start/end, not both")
        text = request.time_range
        if not is_relative(text):
            raise QueryError(f"time_range {text!r}: use start/end for explicit dates",
                             hint="time_range takes phrases such as 'last 28 days' or 'this month'")
        today = _today(catalog, request)
        calendar = catalog.settings.calendar
        try:
            first, last = relative_range(text, today, week_start=WEEKDAYS.index(calendar.week_start),
                                         fiscal_year_start_month=calendar.fiscal_year_start_month)
        except (OverflowError, ValueError):  # date arithmetic past year 1 or 9999
            raise QueryError(f"time_range {text!r} counted from {today.isoformat()} falls outside the calendar "
                             "(years 1 to 9999)", hint="use a shorter range or a later/earlier `today`") from None
        return _time_bound(first.isoformat(), "start", False), _time_bound(last.isoformat(), "end", True)
    start, end = _time_bound(request.start, "start", False), _time_bound(request.end, "end", True)
    if start and end and start >= end:
        raise QueryError(f"start {request.start} is not before end {request.end}")
    return start, end


def _today(catalog: Catalog, request: QueryRequest) -> date:
    text = request.today or catalog.settings.calendar.now
    if text:
        try:
            return date.fromisoformat(str(text)[:10])
        except ValueError:
            raise QueryError(f"today: {text!r} is not a date", hint="write an ISO date such as 2025-12-31") from None
    return date.today()


def _time_bound(value: str | None, name: str, is_end: bool) -> str | None:
    """An ISO date or timestamp; a date as `end` includes that whole day."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if is_end and day == date.max:
                return None  # up to the end of 9999-12-31: the end of the calendar, no bound at all
            return (day + timedelta(days=1) if is_end else day).isoformat() + " 00:00:00"
        return datetime.fromisoformat(text).replace(tzinfo=None).isoformat(sep=" ")
    except ValueError:
        raise QueryError(f"{name}: {text!r} is not a date or timestamp",
                         hint="write an ISO date such as 2025-01-31 or a timestamp such as 2025-01-31T12:00:00") from None


def _check_time_needs(catalog: Catalog, resolved: ResolvedQuery):
    """Offsets, windows and filled periods are defined along metric_time."""
    needs = [i.metric for i in resolved.inputs if i.offset or i.cumulative]
    time = resolved.time_dim
    if needs and time is None:
        raise QueryError(f"metric {', '.join(sorted(set(needs)))} is defined over time: group by metric_time.<grain>",
                         hint="e.g. --by metric_time.month")
    from .calendar import fits_to_date

    for item in resolved.inputs:
        spec = item.cumulative
        if spec and spec.grain_to_date and not fits_to_date(time.grain or "day", spec.grain_to_date, resolved.time):
            raise QueryError(
                f"metric '{item.metric}' restarts every {spec.grain_to_date}; a {time.grain} can span two of those",
                hint=f"group by metric_time at {spec.grain_to_date} or a finer grain that lines up with it")
    # without a configured time spine the days are generated in SQL (render/spine.py)
