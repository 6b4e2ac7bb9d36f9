"""Request and response bodies of the HTTP API (pydantic v2; unknown fields are refused).

These models are the OpenAPI schema at /openapi.json: one definition, no JSON Schema written by hand.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What the schema accepts at most: the runtime's configurable limits (canon.yml `limits:` max_metrics,
# max_filters, max_filter_chars, ...: server/runtime/limits.py) decide below it, for every front end,
# and the body size (canon.yml `http: max_body_bytes`, server/http_guard.py) bounds filter text.
MAX_ITEMS = 1_000  # metrics, dimensions, filters or order items in one request

# Cube's filter operators (https://cube.dev/docs/product/apis-integrations/rest-api/query-format)
FilterOp = Literal[
    "equals", "notEquals", "contains", "notContains", "startsWith", "notStartsWith", "endsWith",
    "notEndsWith", "gt", "gte", "lt", "lte", "set", "notSet", "inDateRange", "notInDateRange",
    "beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate", "in", "notIn", "onTheDate",
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

    metrics: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, examples=[["revenue"]],
                               description="Metric names; none with dimensions lists the combinations of their values")
    dimensions: list[str] = Field(default_factory=list, max_length=MAX_ITEMS,
                                  examples=[["product.category", "metric_time.month"]])
    where: Union[str, list[str], None] = Field(default=None, description="Filter expression(s) over dimensions, ANDed",
                                               examples=["customer.country_code IN ('US', 'GB')"])
    filters: list[StructuredFilter] = Field(default_factory=list, max_length=MAX_ITEMS)
    segments: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, examples=[["order.completed"]],
                                description="Named filters of the catalog (<model>.<segment>), ANDed")
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
    use_rollups: bool = Field(default=True, description="Answer from a rollup when one answers exactly; false reads "
                              "the raw tables")

    @model_validator(mode="after")
    def _metrics_or_dimensions(self):
        if not self.metrics and not self.dimensions:
            raise ValueError("metrics: give at least one metric (or dimensions alone, to list their combinations)")
        return self


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
    cached: bool | None = Field(default=None, description="true when answered from the result cache (canon.yml `cache:`)")
    rollup: str | None = Field(default=None, description="the rollup that answered, when one did (canon rollups)")
    partial_periods: dict[str, list[str]] | None = Field(
        default=None, description="{time column: [period starts]}: first/last periods holding only some of their days")


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
    format: str | None = Field(None, description="how to show a value: number, currency or percent")


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
    exports: list[dict] = []  # each saved-query export: target, schedule, last run, fresh | stale | failed | never
    rollups: list[dict] = []  # each rollup's refresh schedule: every, last run, next due, last error, status


# --- GET /v1/recommendations/config: what the catalog's `recommendations:` block names (the web app's
# cross-sell page builds itself from it, assuming no demo name) ---------------------------------------------


class NamedRef(BaseModel):
    name: str = Field(description="The name requests (`/v1/cross-sell?level=`) and answers use for it")
    ref: str = Field(description="The dimension reference, e.g. product.category")


class RecommendItemsConfig(BaseModel):
    id: str = Field(description="items.id, e.g. product.product_id")
    name: str = Field(description="items.name, e.g. product.product_name")
    show: list[NamedRef] = Field(description="items.show: dimensions returned with every item, in order")
    levels: list[NamedRef] = Field(description="items.levels: the other levels cross-sell answers at, in order")


class RecommendCustomersConfig(BaseModel):
    id: str = Field(description="customers.id, e.g. customer.customer_id")
    show: list[NamedRef] = Field(description="customers.show: dimensions returned with a customer's recommendations")


class RecommendationsConfig(BaseModel):
    """The block's names, and the fixed keys the recommendation answers carry."""

    affinity: str = Field(description="The affinity metric (returns: confidence)")
    lift: str | None = Field(description="A catalog affinity metric with the same basket, item and filter and "
                                         "returns: lift (queryable through /v1/query), if the catalog has one "
                                         "the caller may read; else null")
    popularity: str = Field(description="The popularity metric")
    basket: str = Field(description="The affinity metric's basket entity (order): what the counts count")
    item_level: str = Field(description="The items' own level in /v1/cross-sell?level=")
    items: RecommendItemsConfig
    customers: RecommendCustomersConfig
    answer_keys: dict[str, str] = Field(description="Role -> the key answers name it by (the same on every "
                                                    "catalog): item_id, item_name, confidence, lift, support, "
                                                    "pair_count, popularity, popularity_in_group")


# --- the Cube REST API's parameters, for the OpenAPI only (server/cube_api.py reads and checks the query
# itself, with Cube's own error messages); every field is optional, as in Cube -------------------------------


class CubeQuery(BaseModel):
    """A Cube query (https://cube.dev/docs/product/apis-integrations/rest-api/query-format)."""

    model_config = ConfigDict(extra="allow", title="CubeQuery")

    measures: list[str] = Field(default_factory=list, examples=[["metrics.revenue"]])
    dimensions: list[str] = Field(default_factory=list, examples=[["product.category"]])
    segments: list[str] = Field(default_factory=list)
    timeDimensions: list[dict[str, Any]] = Field(default_factory=list, description="{dimension, granularity, dateRange}",
                                                 examples=[[{"dimension": "metrics.metric_time", "granularity": "month",
                                                             "dateRange": "last 6 months"}]])
    filters: list[dict[str, Any]] = Field(default_factory=list, description="{member, operator, values} or {and|or: [...]}",
                                          examples=[[{"member": "product.category", "operator": "equals", "values": ["Phones"]}]])
    order: Union[dict[str, Literal["asc", "desc"]], list[list[str]], None] = None
    limit: int | None = Field(default=None, ge=0, description="0: check the query, return no rows")
    rowLimit: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    timezone: str | None = Field(default=None, examples=["Europe/Berlin"])
    total: bool | None = None
    ungrouped: bool | None = None
    renewQuery: bool | None = None
    responseFormat: Literal["default", "compact", "columnar"] | None = None


def cube_openapi(method: str) -> dict:
    """`openapi_extra` of a Cube endpoint: GET takes ?query=<JSON>&queryType=multi, POST a body
    {"query": ..., "queryType": ...}; a query is one Cube query or a list of them (blending)."""
    one = CubeQuery.model_json_schema()
    query = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]}
    query_type = {"type": "string", "enum": ["multi"]}
    if method == "get":
        return {"parameters": [
            {"name": "query", "in": "query", "required": True, "description": "The Cube query, as JSON",
             "content": {"application/json": {"schema": query}}},
            {"name": "queryType", "in": "query", "required": False, "schema": query_type}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["query"],
        "properties": {"query": query, "queryType": query_type}}}}}}
