"""Request and response bodies of the HTTP API (pydantic v2; unknown fields are refused).

These models are the OpenAPI schema at /openapi.json: one definition, no JSON Schema written by hand.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

MAX_ITEMS = 64  # metrics, dimensions, filters or order items in one request
MAX_TEXT = 4_000  # characters of one filter expression

# Cube's filter operators (https://cube.dev/docs/product/apis-integrations/rest-api/query-format)
FilterOp = Literal[
    "equals", "notEquals", "contains", "notContains", "startsWith", "notStartsWith", "endsWith",
    "notEndsWith", "gt", "gte", "lt", "lte", "set", "notSet", "inDateRange", "notInDateRange",
    "beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate",
]
FilterValue = Union[str, int, float, bool, None]
Ref = Field(min_length=1, max_length=200)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StructuredFilter(Strict):
    """One condition on a dimension, with Cube's operator names; values are literals, never SQL."""

    field: str = Field(min_length=1, max_length=200, description="A dimension reference, e.g. product.category")
    op: FilterOp
    values: list[FilterValue] = Field(default_factory=list, max_length=1000)


class QueryBody(Strict):
    """A metric request. `where` (expressions) and `filters` (structured) are ANDed together."""

    metrics: list[str] = Field(min_length=1, max_length=MAX_ITEMS, examples=[["revenue"]])
    dimensions: list[str] = Field(default_factory=list, max_length=MAX_ITEMS,
                                  examples=[["product.category", "metric_time.month"]])
    where: Union[str, list[str], None] = Field(default=None, description="Filter expression(s) over dimensions, ANDed",
                                               examples=["customer.country_code IN ('US', 'GB')"])
    filters: list[StructuredFilter] = Field(default_factory=list, max_length=MAX_ITEMS)
    order: Union[str, list[str], None] = Field(default=None, description="Metric or dimension; '-' prefix sorts descending",
                                               examples=[["-revenue"]])
    limit: int | None = Field(default=None, ge=1)
    offset: int | None = Field(default=None, ge=0)
    start: str | None = Field(default=None, max_length=40, description="metric_time from this ISO date/time (inclusive)")
    end: str | None = Field(default=None, max_length=40, description="metric_time up to this ISO date (inclusive) or time (exclusive)")
    time_range: str | None = Field(default=None, max_length=40, examples=["last 28 days"],
                                   description="Relative range instead of start/end: today, last N days, this month, year to date, ...")
    having: Union[str, list[str], None] = Field(default=None, description="Conditions on metric values, ANDed",
                                                examples=["revenue > 100000"])
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"],
                                 description="IANA time zone: stored UTC times fall into its days, weeks and months")
    today: str | None = Field(default=None, max_length=10, description="The date relative ranges count from (ISO)")
    fill_gaps: bool | None = Field(default=None, description="List every period of metric_time, crossed with the "
                                   "other dimensions (default: only a pure time series of join_to_timespine metrics)")
    timeout_s: float | None = Field(default=None, gt=0, description="This query's time cap in seconds, within the "
                                    "server's limit (default: limits.query_timeout_s in canon.yml)")


class CompileBody(QueryBody):
    dialect: str = Field(default="duckdb", max_length=40,
                         description="duckdb, postgres, snowflake, bigquery, spark, trino or clickhouse")


class Column(BaseModel):
    name: str
    type: str


class QueryResponse(BaseModel):
    columns: list[Column]
    rows: list[list[Any]]
    sql: str
    elapsed_ms: float
    warnings: list[str] | None = None
    truncated: bool | None = Field(default=None, description="true when more rows exist than the server's row limit")


class CompileResponse(BaseModel):
    sql: str
    dialect: str
    columns: list[Column]


class ErrorBody(BaseModel):
    code: str
    message: str
    location: str | None = None
    hint: str | None = None
    errors: list[dict] | None = None


class MetricSummary(BaseModel):
    name: str
    type: str
    label: str | None = None
    description: str | None = None
    owner: str | None = None
    tier: str
    tags: list[str] = []


class MetricList(BaseModel):
    metrics: list[MetricSummary]
    count: int
    catalog_version: str


class DimensionItem(BaseModel):
    ref: str
    type: str
    label: str | None = None
    description: str | None = None
    grains: list[str] | None = None


class DimensionList(BaseModel):
    metrics: list[str]
    dimensions: list[DimensionItem]


class MetricDetail(MetricSummary):
    definition: dict
    dimensions: list[DimensionItem]
    depends_on: dict
    example: dict | None = None
    views: list[str] = []


class ValuesResponse(BaseModel):
    dimension: str
    values: list[Any]
    sql: str
    truncated: bool


class StatusResponse(BaseModel):
    status: Literal["ok", "degraded"]
    catalog_version: str
    catalog_loaded_at: str
    catalog: dict
    load_errors: list[dict]
    warehouse: dict
    freshness: list[dict] = []  # each monitored source: newest load, age, fresh | warn | error
    project: str
