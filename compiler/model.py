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

    label: str | None = None
    description: str | None = None
    owner: str | None = None
    tier: Tier = "draft"
    tags: tuple[str, ...] = ()
    replaced_by: str | None = None
    sunset: str | None = None


# --- semantic models -------------------------------------------------------------------------


class Entity(Frozen):
    name: Name
    type: Literal["primary", "unique", "foreign"]
    expr: str | None = None  # column or SQL expression; defaults to the name

    @property
    def sql(self) -> str:
        return self.expr or self.name


class Dimension(Frozen):
    name: Name
    type: Literal["categorical", "time", "number", "boolean"] = "categorical"
    expr: str | None = None
    label: str | None = None
    description: str | None = None
    granularity: Grain = "day"  # the finest grain a time dimension holds
    stored_as: Literal["timestamp", "date"] = "timestamp"  # dates are not shifted by time zones

    @property
    def sql(self) -> str:
        return self.expr or self.name


Agg = Literal["sum", "count", "count_distinct", "avg", "min", "max", "median", "percentile"]


class PerEntity(Frozen):
    """Aggregate per entity first (an order's total from its lines), then apply the measure's
    `agg` to those values; the measure's `expr` may use the per-entity result as `value`."""

    entity: Name
    agg: Agg
    expr: str | None = None


class NonAdditive(Frozen):
    """Semi-additive: keep only the rows at the last (or first) time within each period."""

    time: str  # a time dimension of the model
    window: Literal["last", "first"] = "last"
    groupings: tuple[Name, ...] = ()  # entities whose own latest rows count (per account balance)


class Segment(Frozen):
    """A named, reviewed boolean filter on a model's rows (Cube's segments): `order.completed`."""

    name: Name
    filter: str  # a boolean expression over dimensions, e.g. "order.status = 'completed'"
    label: str | None = None
    description: str | None = None


class Measure(Frozen):
    name: Name
    agg: Agg
    expr: str | None = None  # defaults to the name; `count` defaults to counting rows
    percentile: float | None = Field(default=None, gt=0, lt=1)
    per: PerEntity | None = None
    non_additive: NonAdditive | None = None
    label: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _percentile_needs_value(self):
        if (self.agg == "percentile") != (self.percentile is not None):
            raise ValueError("`percentile` is required with agg: percentile and allowed only there")
        return self


class Deduplicate(Frozen):
    """Keep one row per key: the one with the greatest `latest_by` (restated source rows)."""

    key: tuple[str, ...] = Field(min_length=1)
    latest_by: str


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
    severity: Literal["error", "warn"] = "error"
    description: str | None = None


class NotNullTest(_DataTest):
    type: Literal["not_null"]
    column: str


class UniqueTest(_DataTest):
    type: Literal["unique"]
    columns: tuple[str, ...] = Field(min_length=1)  # together unique


class AcceptedValuesTest(_DataTest):
    type: Literal["accepted_values"]
    column: str
    values: tuple[str | int | float | bool, ...] = Field(min_length=1)


class RelationshipsTest(_DataTest):
    type: Literal["relationships"]
    column: str
    to: Name  # a model, or an entity whose primary model is meant
    field: str | None = None  # a column of `to`; defaults to its primary entity


class ExpressionTest(_DataTest):
    type: Literal["expression"]
    expr: str  # must hold on every row, e.g. spend >= 0


class FunnelTest(_DataTest):
    """Per group, each step (a measure of this model) is at least the next one."""

    type: Literal["funnel"]
    group_by: tuple[str, ...] = Field(min_length=1)
    steps: tuple[Name, ...] = Field(min_length=2)


class SequenceTest(_DataTest):
    """`before` never comes after `after` on a row; either may be `<model>.<dimension>` of a joined model."""

    type: Literal["sequence"]
    before: str
    after: str


DataTest = Annotated[
    Union[NotNullTest, UniqueTest, AcceptedValuesTest, RelationshipsTest, ExpressionTest, FunnelTest, SequenceTest],
    Field(discriminator="type"),
]
DATA_TEST_TYPES = ("not_null", "unique", "accepted_values", "relationships", "expression", "funnel", "sequence")


class Freshness(Frozen):
    loaded_at: str  # a timestamp column (or expression) of the model's source
    warn_after: Duration | None = None
    error_after: Duration | None = None

    @model_validator(mode="after")
    def _thresholds(self):
        if self.warn_after is None and self.error_after is None:
            raise ValueError("give `warn_after`, `error_after` or both")
        if self.warn_after and self.error_after and duration_seconds(self.warn_after) > duration_seconds(self.error_after):
            raise ValueError("`warn_after` must not be longer than `error_after`")
        return self

# --- end governance ----------------------------------------------------------------------------


class SemanticModel(Governed):
    name: Name
    table: str | None = None
    sql: str | None = None
    entities: tuple[Entity, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    measures: tuple[Measure, ...] = ()
    default_time: str | None = None  # a time dimension: "ordered_at" or "order.ordered_at"
    deduplicate: Deduplicate | None = None
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


class MetricInput(Frozen):
    """A metric used inside another one, optionally filtered, renamed or shifted in time."""

    name: Name
    filter: str | None = None
    alias: Name | None = None
    offset_window: Window | None = None  # the input's value this long before each period


class MetricBase(Governed):
    """What every metric type can say about empty periods."""

    fill_nulls_with: float | None = None  # e.g. 0 for counts and sums; NULL otherwise
    join_to_timespine: bool = False  # list every period of the range, even without data


class SimpleMetric(MetricBase):
    type: Literal["simple"]
    name: Name
    measure: str
    filter: str | None = None


class RatioMetric(MetricBase):
    type: Literal["ratio"]
    name: Name
    numerator: Name | MetricInput
    denominator: Name | MetricInput


class DerivedMetric(MetricBase):
    type: Literal["derived"]
    name: Name
    expr: str
    metrics: tuple[Name | MetricInput, ...] = Field(min_length=1)


class CumulativeMetric(MetricBase):
    """A simple metric accumulated over a trailing window or from the start of a period."""

    type: Literal["cumulative"]
    name: Name
    metric: Name
    window: Window | None = None
    grain_to_date: Literal["week", "month", "quarter", "fiscal_quarter", "year", "fiscal_year"] | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.window is None) == (self.grain_to_date is None):
            raise ValueError("give exactly one of `window` (e.g. 28 days) or `grain_to_date` (e.g. month)")
        return self


class ConversionMetric(MetricBase):
    """Share of base events (a lead) followed by a conversion event (a meeting, an order) of the
    same entity within `window`; each base event converts at most once."""

    type: Literal["conversion"]
    name: Name
    entity: Name
    base: Name  # a simple metric counting base events
    conversion: Name  # a simple metric counting conversion events
    window: Window
    calculation: Literal["conversion_rate", "conversions"] = "conversion_rate"


class AffinityMetric(Governed):
    type: Literal["affinity"]
    name: Name
    basket: Name  # the entity whose instances are baskets (order)
    item: Name  # the entity whose instances are items (product)
    returns: Literal["support", "confidence", "lift", "pair_count", "antecedent_count", "consequent_count", "basket_count"]
    filter: str | None = None


Metric = Annotated[
    Union[SimpleMetric, RatioMetric, DerivedMetric, CumulativeMetric, ConversionMetric, AffinityMetric],
    Field(discriminator="type"),
]
METRIC_TYPES = ("simple", "ratio", "derived", "cumulative", "conversion", "affinity")


class SavedQuery(Governed):
    name: Name
    metrics: tuple[Name, ...] = Field(min_length=1)
    dimensions: tuple[str, ...] = ()
    where: str | None = None
    order: tuple[str, ...] = ()
    limit: int | None = Field(default=None, ge=1)


class ViewColumn(Frozen):
    ref: str  # a metric name or a dimension reference
    name: Name | None = None  # the column name BI tools see; defaults to the ref with '.' -> '_'


class View(Governed):
    """A curated set of metrics and dimensions that BI tools see as one table."""

    name: Name
    metrics: tuple[Name, ...] = Field(min_length=1)
    dimensions: tuple[str | ViewColumn, ...] = ()
    segments: tuple[str, ...] = ()  # segments of the models ('order.web'), offered with the view's name


# --- project settings (canon.yml) ---------------------------------------------------------------

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Calendar(Frozen):
    week_start: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    now: str | None = None  # pins "today" for relative ranges (tests, reproducible reports)


class TimeSpine(Frozen):
    """A table with one row per day; periods without data and time windows are built on it."""

    table: str
    column: str = "date_day"


class Settings(BaseModel):
    """The compiler's part of canon.yml; other sections belong to the server."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    calendar: Calendar = Field(default_factory=Calendar)
    time_spine: TimeSpine | None = None


# --- the files ---------------------------------------------------------------------------------


class SemanticModelFile(Frozen):
    semantic_model: SemanticModel | None = None
    semantic_models: tuple[SemanticModel, ...] = ()


class GlossaryTerm(Frozen):
    """A business term: what people call it, what it means, and what measures it."""

    name: Name
    term: str
    definition: str
    synonyms: tuple[str, ...] = ()
    metrics: tuple[Name, ...] = ()
    dimensions: tuple[str, ...] = ()
    owner: str | None = None


class MetricsFile(Frozen):
    metrics: tuple[Metric, ...] = ()
    saved_queries: tuple[SavedQuery, ...] = ()
    views: tuple[View, ...] = ()
    glossary: tuple[GlossaryTerm, ...] = ()
