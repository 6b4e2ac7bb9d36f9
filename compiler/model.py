"""Definition models: the shape of semantic models, metrics, saved queries and views.

Frozen pydantic v2 models with extra='forbid'; metrics are a union discriminated on `type`.
Only structure lives here; cross-references are checked in `validate`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
Tier = Literal["draft", "verified", "certified", "deprecated"]
Grain = Literal["day", "week", "month", "quarter", "year"]
GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")


class Frozen(BaseModel):
    # defer_build: schemas are built on first validation, not at import (a cached catalog needs none)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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

    @property
    def sql(self) -> str:
        return self.expr or self.name


class Measure(Frozen):
    name: Name
    agg: Literal["sum", "count", "count_distinct", "avg", "min", "max", "median", "percentile"]
    expr: str | None = None  # defaults to the name; `count` defaults to counting rows
    percentile: float | None = Field(default=None, gt=0, lt=1)
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


class SemanticModel(Governed):
    name: Name
    table: str | None = None
    sql: str | None = None
    entities: tuple[Entity, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    measures: tuple[Measure, ...] = ()
    default_time: str | None = None  # a time dimension: "ordered_at" or "order.ordered_at"
    deduplicate: Deduplicate | None = None

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


class SimpleMetric(Governed):
    type: Literal["simple"]
    name: Name
    measure: str
    filter: str | None = None


class RatioMetric(Governed):
    type: Literal["ratio"]
    name: Name
    numerator: Name | MetricInput
    denominator: Name | MetricInput


class DerivedMetric(Governed):
    type: Literal["derived"]
    name: Name
    expr: str
    metrics: tuple[Name | MetricInput, ...] = Field(min_length=1)


class AffinityMetric(Governed):
    type: Literal["affinity"]
    name: Name
    basket: Name  # the entity whose instances are baskets (order)
    item: Name  # the entity whose instances are items (product)
    returns: Literal["support", "confidence", "lift", "pair_count", "antecedent_count", "consequent_count", "basket_count"]
    filter: str | None = None


Metric = Annotated[
    Union[SimpleMetric, RatioMetric, DerivedMetric, AffinityMetric],
    Field(discriminator="type"),
]
METRIC_TYPES = ("simple", "ratio", "derived", "affinity")


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


# --- the files ---------------------------------------------------------------------------------


class SemanticModelFile(Frozen):
    semantic_model: SemanticModel | None = None
    semantic_models: tuple[SemanticModel, ...] = ()


class MetricsFile(Frozen):
    metrics: tuple[Metric, ...] = ()
    saved_queries: tuple[SavedQuery, ...] = ()
    views: tuple[View, ...] = ()
