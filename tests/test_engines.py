"""Canon's Spark and ClickHouse SQL, executed on the real engines, gives DuckDB's numbers.

The demo (scale 0.2) is exported to parquet once; one local-mode SparkSession (server/warehouses/spark.py,
`spark-local:<folder>`) and one in-process ClickHouse (chDB, server/warehouses/chdb.py, `chdb:<folder>`)
read it. Each request below is compiled for "spark" and "clickhouse", run on that engine, and compared
with the same request compiled for and run on DuckDB: same column names, same rows in any order, numbers
equal to 1e-9 relative, dates and times as ISO strings, NULL equal to NULL.

The requests cover every metric type and the hard cases: fan-out, multi-fact, deduplicated sources,
affinity, cumulative windows, offsets, conversion windows, entity-level measures, exact medians, gap
filling, derived (RFM) dimensions, HAVING and time zones.

Needs pyspark with a Java 17+ runtime, and chdb (both in the `test` extra).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.errors import QueryCancelledError, QueryTimeoutError, WarehouseError
from canon.compiler.request import QueryRequest
from canon.server.parquet_export import export_parquet
from canon.server.warehouses import QueryTicket, open_warehouse
from tests.support.project import demo_copy

REPO_ROOT = Path(__file__).resolve().parent.parent
ENGINE_SCALE = 0.2
ENGINE_SEED = 42
REL_TOL = 1e-9

# pyspark 4 warns that it is not tested with pandas 3; no pandas code path is used here
pytestmark = [pytest.mark.engines,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

REQUESTS = {
    "simple": QueryRequest(metrics=["revenue"], dimensions=["product.category"]),
    "ratio_where": QueryRequest(metrics=["aov"], dimensions=["customer.country_code"],
                                where=["customer.segment = 'enterprise'"]),
    "fanout_sum": QueryRequest(metrics=["shipping_total"], dimensions=["product.category"]),
    "fanout_filter": QueryRequest(metrics=["order_count"], where=["product.category = 'Coffee'"]),
    "multi_fact": QueryRequest(metrics=["revenue", "ad_spend"], dimensions=["metric_time.month"]),
    "dedup": QueryRequest(metrics=["ad_spend"], dimensions=["campaign.channel"]),
    "affinity": QueryRequest(metrics=["cross_sell_score", "cross_sell_lift"],
                             dimensions=["antecedent.category", "consequent.category"]),
    "cumulative": QueryRequest(metrics=["revenue_rolling_28d", "revenue_mtd"], dimensions=["metric_time.day"],
                               start="2025-01-15", end="2025-03-10"),
    "offset": QueryRequest(metrics=["revenue_mom_growth"], dimensions=["metric_time.month"]),
    "rolling_week": QueryRequest(metrics=["revenue_rolling_28d", "revenue_to_date"], dimensions=["metric_time.week"],
                                 start="2024-11-20", end="2025-02-10"),  # window functions over days
    "conversion": QueryRequest(metrics=["meeting_conversion_14d", "lead_to_order_28d"],
                               dimensions=["campaign.channel"]),
    "entity_level": QueryRequest(metrics=["avg_items_per_order", "repeat_buyer_count"],
                                 dimensions=["metric_time.quarter"]),
    "median": QueryRequest(metrics=["median_order_value"], dimensions=["metric_time.quarter"]),
    "gap_fill": QueryRequest(metrics=["order_count"], dimensions=["metric_time.month"],
                             start="2023-09-01", end="2024-06-30"),
    "rfm": QueryRequest(metrics=["buyer_count"], dimensions=["customer.rfm_segment"]),
    "having": QueryRequest(metrics=["revenue"], dimensions=["product.category"], having=["revenue > 100000"]),
    "timezone": QueryRequest(metrics=["order_count"], dimensions=["metric_time.day"],
                             start="2025-03-01", end="2025-03-14", timezone="America/New_York"),
    # wider: week starts, year-to-date and year-over-year, ratios of deduplicated sources, a far zone
    # at year grain, a ratio of two fan-out measures with order and limit
    "week": QueryRequest(metrics=["revenue", "lead_count"], dimensions=["metric_time.week"],
                         start="2025-01-01", end="2025-03-31"),
    "ytd_yoy": QueryRequest(metrics=["revenue_ytd", "revenue_yoy_growth"], dimensions=["metric_time.month"]),
    "marketing_ratios": QueryRequest(metrics=["cac", "ctr", "cost_per_lead"], dimensions=["campaign.channel"]),
    "year_tz": QueryRequest(metrics=["revenue", "order_count"], dimensions=["metric_time.year", "customer.segment"],
                            timezone="Asia/Tokyo"),
    "order_limit": QueryRequest(metrics=["purchase_frequency", "units_sold"], dimensions=["product.tier"],
                                order=["-units_sold"], limit=2),
}

ENGINES = ("spark", "clickhouse")  # every request must give DuckDB's numbers on each


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def engine_demo(tmp_path_factory):
    """(DuckDB file, folder of parquet files) holding the same demo data."""
    root = tmp_path_factory.mktemp("engines")
    path = demo_copy(root / "demo.duckdb", scale=ENGINE_SCALE, seed=ENGINE_SEED)
    folder = root / "parquet"
    export_parquet(path, folder)
    return path, folder


@pytest.fixture(scope="module")
def engine_catalog():
    return load_catalog(REPO_ROOT)


@pytest.fixture(scope="module")
def duck(engine_demo):
    warehouse = open_warehouse(str(engine_demo[0]))
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def spark(engine_demo):
    # pyspark (the test extra) and Java 17+ are installed by `.ci/run`: a missing engine fails, never skips
    warehouse = open_warehouse(f"spark-local:{engine_demo[1]}")
    yield warehouse
    warehouse.stop()


@pytest.fixture(scope="module")
def clickhouse(engine_demo):
    warehouse = open_warehouse(f"chdb:{engine_demo[1]}")
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def duck_results(engine_catalog, duck):
    """The DuckDB answer per request, computed once."""
    cache: dict[str, tuple[list[str], list[tuple]]] = {}

    def answer(name: str):
        if name not in cache:
            cache[name] = duck.execute(compile_request(engine_catalog, REQUESTS[name], "duckdb").sql)
        return cache[name]

    return answer


# ------------------------------------------------------------------------------------------- tests


def _cases():
    for engine in ENGINES:
        for name in REQUESTS:
            yield pytest.param(engine, name, id=f"{engine}-{name}")


@pytest.mark.parametrize(("engine", "name"), list(_cases()))
def test_engine_gives_duckdbs_numbers(request, engine_catalog, duck_results, engine, name):
    warehouse = request.getfixturevalue(engine)
    compiled = compile_request(engine_catalog, REQUESTS[name], engine)
    names, rows = warehouse.execute(compiled.sql)
    expected_names, expected_rows = duck_results(name)
    assert names == expected_names
    assert expected_rows, f"{name}: DuckDB answers no rows, so the comparison proves nothing"
    _assert_same_rows(rows, expected_rows, compiled.sql)


# the exact median of the completed orders' net totals per quarter, from the raw tables (no Canon SQL)
_MEDIAN_ORACLE_SQL = """
SELECT CAST(DATE_TRUNC('quarter', o.ordered_at) AS DATE) AS quarter,
       SUM(oi.quantity * oi.unit_price - oi.discount_amount) AS order_value
FROM orders AS o JOIN order_items AS oi ON oi.order_id = o.order_id
WHERE o.status = 'completed'
GROUP BY 1, o.order_id
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_median_matches_the_exact_oracle(request, engine_catalog, duck, engine):
    values: dict[date, list[Decimal]] = {}
    for quarter, value in duck.execute(_MEDIAN_ORACLE_SQL)[1]:
        values.setdefault(quarter, []).append(value)
    oracle = [(quarter, statistics.median(sorted(v))) for quarter, v in values.items()]
    warehouse = request.getfixturevalue(engine)
    compiled = compile_request(engine_catalog, REQUESTS["median"], engine)
    _, rows = warehouse.execute(compiled.sql)
    _assert_same_rows(rows, oracle, compiled.sql)


def test_routing_by_url(engine_demo, spark, clickhouse):
    assert spark.dialect == "spark" and spark.url == f"spark-local:{engine_demo[1]}"
    assert clickhouse.dialect == "clickhouse" and clickhouse.url == f"chdb:{engine_demo[1]}"
    assert {"orders", "order_items", "time_spine"} <= set(spark.tables) & set(clickhouse.tables)


@pytest.mark.parametrize("scheme", ["spark-local:", "chdb:"])
def test_missing_folder_is_a_warehouse_error(tmp_path, scheme):
    with pytest.raises(WarehouseError, match="does not exist"):
        open_warehouse(f"{scheme}{tmp_path / 'nowhere'}")
    with pytest.raises(WarehouseError, match="no <table>.parquet"):
        open_warehouse(f"{scheme}{tmp_path}")


@pytest.mark.parametrize("engine", ENGINES)
def test_query_errors_are_warehouse_errors(request, engine):
    warehouse = request.getfixturevalue(engine)
    with pytest.raises(WarehouseError, match="rejected the query"):
        warehouse.execute("SELECT no_such_column FROM orders")
    assert warehouse.execute("SELECT COUNT(*) AS n FROM orders")[1][0][0] > 0  # still usable


# runs for minutes unless stopped
_LONG_SQL = {"spark": "SELECT SUM(id % 7) AS s FROM range(0, 100000000000, 1, 2)",
             "clickhouse": "SELECT count() AS n FROM numbers(100000000000)"}


@pytest.mark.parametrize("engine", ENGINES)
def test_timeout_and_cancel_stop_the_query_in_the_engine(request, engine):
    """Spark: a job-group cancel; chDB: KILL QUERY from a second connection (see their modules)."""
    warehouse = request.getfixturevalue(engine)
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError):
        warehouse.execute(_LONG_SQL[engine], timeout_s=0.5)
    ticket = QueryTicket()
    timer = threading.Timer(0.5, ticket.cancel)
    timer.start()
    try:
        with pytest.raises(QueryCancelledError):
            warehouse.execute(_LONG_SQL[engine], ticket=ticket, timeout_s=30)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 8
    if engine == "spark":  # no job of the stopped queries still runs
        assert warehouse._spark.sparkContext.statusTracker().getActiveJobsIds() == []
    started = time.perf_counter()
    assert warehouse.execute("SELECT 1 AS one")[1] == [(1,)]
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("engine", ENGINES)
def test_stream_batches_make_execute(request, engine):
    warehouse = request.getfixturevalue(engine)
    sql = "SELECT order_id FROM orders ORDER BY order_id"
    stream = warehouse.stream(sql, batch_rows=1000)
    assert stream.columns == ["order_id"]
    batches = list(stream)
    assert len(batches) > 1 and all(0 < len(batch) <= 1000 for batch in batches)
    assert (stream.columns, [row for batch in batches for row in batch]) == warehouse.execute(sql)


def test_stored_times_are_not_shifted(engine_catalog, duck, spark, clickhouse):
    """Naive UTC timestamps read back unchanged on every engine (no JVM or server zone applied)."""
    sql = {"duckdb": "SELECT MIN(ordered_at) AS t, MAX(ordered_at) AS u FROM orders"}
    expected = duck.execute(sql["duckdb"])[1]
    for warehouse in (spark, clickhouse):
        assert _normal_rows(warehouse.execute(sql["duckdb"])[1]) == _normal_rows(expected)


# ----------------------------------------------------------------------------------------- helpers


def _normal(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _normal_rows(rows):
    return [tuple(_normal(v) for v in row) for row in rows]


def _sort_key(row):
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in row)


def _assert_same_rows(actual, expected, sql):
    actual, expected = sorted(_normal_rows(actual), key=_sort_key), sorted(_normal_rows(expected), key=_sort_key)
    assert len(actual) == len(expected), f"{len(actual)} rows, DuckDB has {len(expected)}\n{sql}"
    for got, want in zip(actual, expected):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            if isinstance(a, float) and isinstance(b, float):
                assert math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12), f"{got} != {want} (DuckDB)\n{sql}"
            else:
                assert a == b, f"{got} != {want} (DuckDB)\n{sql}"
