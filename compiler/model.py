"""Definition models: the shape of semantic models, metrics, saved queries and views.

Frozen pydantic v2 models with extra='forbid'; metrics are a union discriminated on `type`.
Only structure lives here; cross-references are checked in `validate`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Mapping, NamedTuple, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .errors import Location

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
Tier = Literal["draft", "verified", "certified", "deprecated"]
Grain = Literal["second", "minute", "hour", "day", "week", "month", "quarter", "fiscal_quarter", "year", "fiscal_year"]
GRAINS: tuple[str, ...] = ("second", "minute", "hour", "day", "week", "month", "quarter", "fiscal_quarter", "year", "fiscal_year")
WINDOW_PATTERN = r"^\s*[1-9][0-9]{0,3}\s+(day|week|month|quarter|year)s?\s*$"
Window = Annotated[str, Field(pattern=WINDOW_PATTERN, description="e.g. '28 days', '1 month'")]


class Source(NamedTuple):
    """Where a definition stands in its YAML file, and where each of its fields does, as (line,
    column) pairs: Locations are made only when asked for (most never are)."""

    file: str
    position: tuple[int, int]
    fields: Mapping[str, tuple[int, int]]


class Frozen(BaseModel):
    # defer_build: schemas are built on first validation, not at import (a cached catalog needs none)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    # set once by `validate` from the load pass's positions (dagster's SourcePosition): a private
    # attribute, so it is neither a YAML field nor part of any dump
    _source: Source | None = PrivateAttr(default=None)

    @property
    def location(self) -> Location | None:
        source = self._source
        return Location(source.file, *source.position) if source else None

    def location_of(self, name: str) -> Location | None:
        """Where field `name` stands; the definition itself when the field is not written."""
        source = self._source
        return Location(source.file, *source.fields.get(name, source.position)) if source else None


class Governed(Frozen):
    """Metadata every governed object carries."""

    label: str | None = None  # the name people see (defaults to the name)
    description: str | None = None  # what it means, in a sentence or two
    owner: str | None = None  # the team answerable for it (one of `rules.owners` in canon.yml when set)
    tier: Tier = "draft"  # review status: draft, verified, certified or deprecated
    tags: tuple[str, ...] = ()  # free labels for search and docs
    replaced_by: str | None = None  # when deprecated: what to use instead
    sunset: str | None = None  # when deprecated: the date it goes away


# --- semantic models -------------------------------------------------------------------------


class Entity(Frozen):
    name: Name  # the entity's name; models sharing an entity join on it
    type: Literal["primary", "unique", "foreign"]  # primary (one row per entity here), unique, or foreign (points to the model where it is primary)
    expr: str | None = None  # column or SQL expression; defaults to the name
    role: Name | None = None  # the part a foreign or unique key plays (converted_customer): another name for its join step in a dimension path, e.g. lead.converted_customer.country_code

    @property
    def sql(self) -> str:
        return self.expr or self.name


class Dimension(Frozen):
    name: Name  # addressed as <model or entity>.<name>; time dimensions take a grain: order.ordered_at.month
    type: Literal["categorical", "time", "number", "boolean"] = "categorical"  # categorical, time, number or boolean
    expr: str | None = None  # column or SQL expression over the model's columns; defaults to the name
    label: str | None = None  # the name people see
    description: str | None = None  # what it means
    granularity: Grain = "day"  # the finest grain a time dimension holds
    stored_as: Literal["timestamp", "date"] = "timestamp"  # dates are not shifted by time zones

    @property
    def sql(self) -> str:
        return self.expr or self.name


Agg = Literal["sum", "count", "count_distinct", "avg", "min", "max", "median", "percentile"]


class PerEntity(Frozen):
    """Aggregate per entity first (an order's total from its lines), then apply the measure's
    `agg` to those values; the measure's `expr` may use the per-entity result as `value`."""

    entity: Name  # the entity to aggregate per (customer)
    agg: Agg  # how each entity's rows are aggregated first
    expr: str | None = None  # what is aggregated per entity; defaults to the measure's name


class NonAdditive(Frozen):
    """Semi-additive: keep only the rows at the last (or first) time within each period."""

    time: str  # a time dimension of the model
    window: Literal["last", "first"] = "last"  # keep the rows at the last (or first) time of each period
    groupings: tuple[Name, ...] = ()  # entities whose own latest rows count (per account balance)


class Segment(Frozen):
    """A named, reviewed boolean filter on a model's rows (Cube's segments): `order.completed`."""

    name: Name  # addressed as <model>.<segment>
    filter: str  # a boolean expression over dimensions, e.g. "order.status = 'completed'"
    label: str | None = None  # the name people see
    description: str | None = None  # what it selects


class Measure(Frozen):
    name: Name  # addressed as <model>.<name> by simple metrics
    agg: Agg  # the aggregation: sum, count, count_distinct, avg, min, max, median or percentile
    expr: str | None = None  # defaults to the name; `count` defaults to counting rows
    percentile: float | None = Field(default=None, gt=0, lt=1)  # with agg: percentile, the fraction between 0 and 1 (0.9 for p90)
    per: PerEntity | None = None  # aggregate per entity first, then apply `agg` to those values
    non_additive: NonAdditive | None = None  # semi-additive: only the rows at the last (or first) time of each period count
    label: str | None = None  # the name people see
    description: str | None = None  # what it measures

    @model_validator(mode="after")
    def _percentile_needs_value(self):
        if (self.agg == "percentile") != (self.percentile is not None):
            raise ValueError("`percentile` is required with agg: percentile and allowed only there")
        return self


class Deduplicate(Frozen):
    """Keep one row per key: the one with the greatest `latest_by` (restated source rows)."""

    key: tuple[str, ...] = Field(min_length=1)  # columns that identify one logical row
    latest_by: str  # the column whose greatest value wins among rows sharing a key


class Validity(Frozen):
    """Type II history: each row holds from `from` (inclusive) to `to` (exclusive; NULL: still holds).
    A fact joined to the model meets the row valid at the fact's own time (compiler/scd.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)
    valid_from: Name = Field(alias="from")  # a column of the model
    valid_to: Name = Field(alias="to")  # a column of the model: when the row stops holding (NULL: still holds)


# --- governance: data tests and freshness (issue 7) --------------------------------------------
# Declared next to a semantic model; run on the warehouse by `canon test` / `canon freshness`.
# Columns and expressions are SQL over the model's source (after `deduplicate`).

DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> float:
    """'12h' -> 43200.0; units s, m, h, d, w."""
    match = re.match(DURATION_PATTERN, text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30m, 12h, 2d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]


class _DataTest(Frozen):
    name: Name | None = None  # defaults to <type>_<column(s)>
    severity: Literal["error", "warn"] = "error"  # error fails `canon test`; warn only reports
    description: str | None = None  # why the rule holds


class NotNullTest(_DataTest):
    type: Literal["not_null"]  # not_null
    column: str  # a column (or expression) that is never NULL


class UniqueTest(_DataTest):
    type: Literal["unique"]  # unique
    columns: tuple[str, ...] = Field(min_length=1)  # together unique


class AcceptedValuesTest(_DataTest):
    type: Literal["accepted_values"]  # accepted_values
    column: str  # a column (or expression) whose values are all listed
    values: tuple[str | int | float | bool, ...] = Field(min_length=1)  # the allowed values


class RelationshipsTest(_DataTest):
    type: Literal["relationships"]  # relationships
    column: str  # a foreign key column whose values all exist in `to`
    to: Name  # a model, or an entity whose primary model is meant
    field: str | None = None  # a column of `to`; defaults to its primary entity


class ExpressionTest(_DataTest):
    type: Literal["expression"]  # expression
    expr: str  # must hold on every row, e.g. spend >= 0


class FunnelTest(_DataTest):
    """Per group, each step (a measure of this model) is at least the next one."""

    type: Literal["funnel"]  # funnel
    group_by: tuple[str, ...] = Field(min_length=1)  # columns per which the funnel holds
    steps: tuple[Name, ...] = Field(min_length=2)  # measures of this model, each at least the next


class SequenceTest(_DataTest):
    """`before` never comes after `after` on a row; either may be `<model>.<dimension>` of a joined model."""

    type: Literal["sequence"]  # sequence
    before: str  # a time column or <model>.<dimension> that comes first
    after: str  # a time column or <model>.<dimension> that comes later (or at the same time)


DataTest = Annotated[
    Union[NotNullTest, UniqueTest, AcceptedValuesTest, RelationshipsTest, ExpressionTest, FunnelTest, SequenceTest],
    Field(discriminator="type"),
]
DATA_TEST_TYPES = ("not_null", "unique", "accepted_values", "relationships", "expression", "funnel", "sequence")


class Freshness(Frozen):
    loaded_at: str  # a timestamp column (or expression) of the model's source
    warn_after: Duration | None = None  # warn when the newest row is older than this (30m, 12h, 2d)
    error_after: Duration | None = None  # fail when the newest row is older than this

    @model_validator(mode="after")
    def _thresholds(self):
        if self.warn_after is None and self.error_after is None:
            raise ValueError("give `warn_after`, `error_after` or both")
        if self.warn_after and self.error_after and duration_seconds(self.warn_after) > duration_seconds(self.error_after):
            raise ValueError("`warn_after` must not be longer than `error_after`")
        return self

# --- end governance ----------------------------------------------------------------------------


class SemanticModel(Governed):
    name: Name  # the model's name: addresses its measures (<model>.<measure>) and dimensions
    table: str | None = None  # the warehouse table, [catalog.][schema.]table; or give `sql`
    sql: str | None = None  # a SELECT whose rows the model describes; or give `table`
    entities: tuple[Entity, ...] = ()  # the keys: one primary per model at most, foreign ones point to other models
    dimensions: tuple[Dimension, ...] = ()  # what its rows can be grouped and filtered by
    measures: tuple[Measure, ...] = ()  # aggregations over its rows, used by simple metrics
    default_time: str | None = None  # a time dimension: "ordered_at" or "order.ordered_at"
    deduplicate: Deduplicate | None = None  # keep one row per key (restated source rows)
    validity: Validity | None = None  # slowly changing (type II): rows valid from/to (compiler/scd.py)
    # A bridge may be joined from the one side of its foreign keys (an order to its lines), so a
    # parent's measures can be grouped by the lines' dimensions, each parent row counted once per
    # group. Only bridges are crossed that way: a new event table never reroutes other metrics.
    bridge: bool = False
    tests: tuple[DataTest, ...] = ()  # governance (issue 7)
    segments: tuple[Segment, ...] = ()  # named filters, usable by name from every front end
    freshness: Freshness | None = None  # governance (issue 7)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of `table` or `sql`")
        return self

    @field_validator("table")
    @classmethod
    def _table_name(cls, value):
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}", value):
            raise ValueError("`table` must be a plain [catalog.][schema.]table name")
        return value


# --- metrics ---------------------------------------------------------------------------------


# a value shown as a plain number, an amount of money, or a share (0.25 shows as 25 %)
ValueFormat = Literal["number", "currency", "percent"]


class MetricInput(Frozen):
    """A metric used inside another one, optionally filtered, renamed or shifted in time."""

    name: Name  # the metric used
    filter: str | None = None  # a filter applied to this input only
    alias: Name | None = None  # the name the input has in `expr`
    offset_window: Window | None = None  # the input's value this long before each period


class MetricBase(Governed):
    """What every metric type can say about empty periods."""

    fill_nulls_with: float | None = None  # e.g. 0 for counts and sums; NULL otherwise
    join_to_timespine: bool = False  # list every period of the range, even without data
    format: ValueFormat | None = None  # how front ends show a value (Cube's measure `format`)


class SimpleMetric(MetricBase):
    type: Literal["simple"]  # simple: a measure, optionally filtered
    name: Name  # the metric's name, unique in the catalog
    measure: str  # <model>.<measure>
    filter: str | None = None  # a boolean expression over dimensions, e.g. order.status = 'completed'


class RatioMetric(MetricBase):
    type: Literal["ratio"]  # ratio: numerator / denominator, each aggregated first
    name: Name  # the metric's name, unique in the catalog
    numerator: Name | MetricInput  # a metric, or a metric input with a filter
    denominator: Name | MetricInput  # a metric, or a metric input with a filter


class DerivedMetric(MetricBase):
    type: Literal["derived"]  # derived: an expression over other metrics
    name: Name  # the metric's name, unique in the catalog
    expr: str  # SQL arithmetic over the input metrics' names or aliases
    metrics: tuple[Name | MetricInput, ...] = Field(min_length=1)  # the metrics `expr` uses (with aliases, filters, time offsets)


class CumulativeMetric(MetricBase):
    """A simple metric accumulated over a trailing window or from the start of a period."""

    type: Literal["cumulative"]  # cumulative: a running total
    name: Name  # the metric's name, unique in the catalog
    metric: Name  # the simple metric accumulated
    window: Window | Literal["unbounded"] | None = None  # a trailing window (28 days), or unbounded (all time); or give grain_to_date
    grain_to_date: Literal["week", "month", "quarter", "fiscal_quarter", "year", "fiscal_year"] | None = None  # accumulate from the start of each week, month, quarter or year

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.window is None) == (self.grain_to_date is None):
            raise ValueError("give exactly one of `window` (e.g. 28 days, or unbounded for all time) or `grain_to_date` (e.g. month)")
        return self


class ConversionMetric(MetricBase):
    """Share of base events (a lead) followed by a conversion event (a meeting, an order) of the
    same entity within `window`; each base event converts at most once."""

    type: Literal["conversion"]  # conversion: base events followed by a conversion event
    name: Name  # the metric's name, unique in the catalog
    entity: Name  # the entity whose events are matched (a lead, a customer)
    base: Name  # a simple metric counting base events
    conversion: Name  # a simple metric counting conversion events
    window: Window  # how long after a base event a conversion counts
    calculation: Literal["conversion_rate", "conversions"] = "conversion_rate"  # conversion_rate (share of base events) or conversions (their number)


class CohortMetric(Governed):
    """Entities (customers) grouped into cohorts by the period of their first `cohort` event (their
    first completed order), and what they do with `activity` events in each period since
    (compiler/cohort.py). In a query, metric_time is the cohort period and `cohort.periods_since`
    counts periods from it (0 is the cohort period itself), at metric_time's grain, else `grain`;
    a member counts at period k only once the data has reached it. Calculations: retention (members
    with activity in period k ÷ members), active, cohort_size, cumulative_value (the activity's sum
    or count over periods 0..k per member: lifetime value) and repeat_rate (share of members with
    two or more activity events by period k). Without cohort.periods_since values run to date, and
    retention and active need it. The time range and filters choose the members, never their activity."""

    type: Literal["cohort"]  # cohort: entities grouped by the period of their first event
    format: ValueFormat | None = None  # how front ends show the value
    name: Name  # the metric's name, unique in the catalog
    entity: Name  # the entity followed (customer)
    cohort: Name  # a simple metric: each entity's first event of it starts its cohort
    activity: Name  # a simple metric: its events are activity, its measure the value
    calculation: Literal["retention", "active", "cohort_size", "cumulative_value", "repeat_rate"] = "retention"  # what each cohort period shows
    grain: Literal["day", "week", "month", "quarter", "fiscal_quarter", "year", "fiscal_year"] = "month"  # the period length when the request has no metric_time grain


class AffinityMetric(Governed):
    type: Literal["affinity"]  # affinity: pairs of items bought in the same basket
    format: ValueFormat | None = None  # how front ends show the value
    name: Name  # the metric's name, unique in the catalog
    basket: Name  # the entity whose instances are baskets (order)
    item: Name  # the entity whose instances are items (product)
    returns: Literal["support", "confidence", "lift", "pair_count", "antecedent_count", "consequent_count", "basket_count"]  # which association-rule number: support, confidence, lift or a count
    filter: str | None = None  # a boolean expression over dimensions that narrows the baskets


Metric = Annotated[
    Union[SimpleMetric, RatioMetric, DerivedMetric, CumulativeMetric, ConversionMetric, CohortMetric, AffinityMetric],
    Field(discriminator="type"),
]
METRIC_TYPES = ("simple", "ratio", "derived", "cumulative", "conversion", "cohort", "affinity")


class Export(Frozen):
    """A saved query's answer written on a schedule (MetricFlow's saved-query exports): to a file in
    the project (`.parquet` or `.csv`) or to a warehouse table (`schema.table`), replaced whole."""

    name: Name  # the export's name
    file: str | None = Field(default=None, pattern=r"^[\w./-]+\.(parquet|csv)$")  # relative to the project
    table: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")  # a warehouse table, schema.table
    every: Duration | None = None  # run by `canon serve` this often; none: only `canon exports run`

    @model_validator(mode="after")
    def _one_target(self):
        if (self.file is None) == (self.table is None):
            raise ValueError("give exactly one of `file` (e.g. exports/spend.parquet) or `table` (e.g. exports.spend)")
        if self.file is not None and (self.file.startswith("/") or ".." in self.file.split("/")):
            raise ValueError("`file` is a path inside the project folder")
        return self


class SavedQuery(Governed):
    name: Name  # the saved query's name (canon query --saved-query NAME)
    metrics: tuple[Name, ...] = Field(min_length=1)  # the metrics it asks for
    dimensions: tuple[str, ...] = ()  # the dimensions it groups by (with grains: metric_time.week)
    where: str | None = None  # a boolean expression over dimensions
    order: tuple[str, ...] = ()  # fields to sort by; a leading - sorts descending
    limit: int | None = Field(default=None, ge=1)  # at most this many rows
    exports: tuple[Export, ...] = ()  # where its answer is written on a schedule


class ViewColumn(Frozen):
    ref: str  # a metric name or a dimension reference
    name: Name | None = None  # the column name BI tools see; defaults to the ref with '.' -> '_'


class View(Governed):
    """A curated set of metrics and dimensions that BI tools see as one table."""

    name: Name  # the table name BI tools see
    metrics: tuple[Name, ...] = Field(min_length=1)  # the metrics offered as columns
    dimensions: tuple[str | ViewColumn, ...] = ()  # the dimensions offered as columns
    segments: tuple[str, ...] = ()  # segments of the models ('order.web'), offered with the view's name


class RollupRefresh(Frozen):
    """When a rollup is refreshed: `every` (`canon serve` refreshes a built rollup this often, unless
    canon.yml says `rollups: {schedule: false}`; cron may run `canon rollups refresh` instead) and
    `lookback` (how many trailing partitions each refresh recomputes, besides the ones whose rows
    arrived late by the sources' `freshness.loaded_at` watermark)."""

    every: Duration | None = None  # `canon serve` refreshes the built rollup this often (30s, 1h, 1d); none: only by hand
    lookback: int = Field(default=1, ge=0, le=1000)  # trailing partitions recomputed by each refresh


class Rollup(Governed):
    """A pre-aggregation: metrics at a grain, materialised in the warehouse (compiler/rollups.py)."""

    name: Name  # the rollup's name
    metrics: tuple[Name, ...] = Field(min_length=1)  # the metrics it pre-aggregates
    dimensions: tuple[str, ...] = ()  # the dimensions it keeps
    time_grain: Literal["day", "week", "month", "quarter", "year"] | None = None  # adds metric_time.<grain>
    partition_by: Literal["week", "month", "quarter", "year"] | None = None  # time partitions refreshed alone
    refresh: RollupRefresh = Field(default_factory=RollupRefresh)  # when it is rebuilt


# --- project settings (canon.yml) ---------------------------------------------------------------

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Calendar(Frozen):
    week_start: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"  # the first day of a week
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)  # the month (1-12) a fiscal year starts
    now: str | None = None  # pins "today" for relative ranges (tests, reproducible reports)


class TimeSpine(Frozen):
    """A table with one row per day; periods without data and time windows are built on it."""

    table: str  # a table with one row per day
    column: str = "date_day"  # its DATE column


class Settings(BaseModel):
    """The compiler's part of canon.yml; other sections belong to the server."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    calendar: Calendar = Field(default_factory=Calendar)  # weeks, fiscal years and a pinned today
    time_spine: TimeSpine | None = None  # a table of days; absent: Canon generates the days in SQL


# --- the files ---------------------------------------------------------------------------------


class SemanticModelFile(Frozen):
    semantic_model: SemanticModel | None = None  # one semantic model
    semantic_models: tuple[SemanticModel, ...] = ()  # several semantic models


class GlossaryTerm(Frozen):
    """A business term: what people call it, what it means, and what measures it."""

    name: Name  # the term's key
    term: str  # the words people use
    definition: str  # what it means
    synonyms: tuple[str, ...] = ()  # other words for it
    metrics: tuple[Name, ...] = ()  # metrics that measure it
    dimensions: tuple[str, ...] = ()  # dimensions that describe it
    owner: str | None = None  # the team answerable for the definition


class RecommendItems(Frozen):
    """What is recommended: dimensions of the affinity metric's item model."""

    id: str  # product.product_id: the key requests and answers name items by
    name: str  # product.product_name: looked up by exact name, shown in reasons
    show: tuple[str, ...] = ()  # dimensions returned with every item
    levels: tuple[str, ...] = ()  # dimensions cross-sell also answers at (`level=<dimension name>`)


class RecommendCustomers(Frozen):
    """Who is recommended to: dimensions reached from the customer entity."""

    id: str  # customer.customer_id
    show: tuple[str, ...] = ()  # dimensions returned with a customer's recommendations
    cold_start: tuple[str, ...] = ()  # a customer without history gets the favourites of their group
    audience_segments: tuple[str, ...] = ()  # dimensions whose values `canon audience --segment` takes


class RecommendUpsell(Frozen):
    """Upsell: per `group` the customer bought in, items ranked above the best they bought there."""

    group: str  # product.category
    tier: str | None = None  # product.tier, ranked by `order`
    order: tuple[str, ...] = ()  # the tier values, lowest first
    price: str | None = None  # product.list_price: expected_uplift; ranks items when there is no tier


class Recommendations(Frozen):
    """The `recommendations:` block: which catalog definitions cross-sell, recommendations, upsell
    and audiences are built from (server/recommend/). Without it a catalog has none of them."""

    affinity: Name  # an affinity metric with `returns: confidence`; its basket, item and filter define the rules
    popularity: Name  # orders holding an item (product_purchase_frequency): ranks ties and cold starts
    time: str  # the basket model's default time dimension: windows count back from its last day with data
    timezone: str | None = None  # IANA zone (Asia/Tokyo) whose days the windows count; none: the stored time's days (UTC)
    items: RecommendItems  # the item model's dimensions
    customers: RecommendCustomers  # the customer's dimensions
    upsell: RecommendUpsell | None = None  # upsell ranking; absent: no upsell


class MetricsFile(Frozen):
    metrics: tuple[Metric, ...] = ()  # metrics of every type, tagged by `type`
    saved_queries: tuple[SavedQuery, ...] = ()  # named requests
    views: tuple[View, ...] = ()  # curated tables for BI tools
    glossary: tuple[GlossaryTerm, ...] = ()  # business terms and the metrics that measure them
    rollups: tuple[Rollup, ...] = ()  # pre-aggregations materialised in the warehouse
    recommendations: Recommendations | None = None  # what cross-sell, recommendations and upsell are built from
