"""Cohort metrics (metrics/retention.yml) against hand-written SQL over the raw demo tables, on DuckDB
(tests/test_cohorts_postgres.py runs the same cases on PostgreSQL).

The oracle is written from the definitions, not from Canon's SQL: a customer's cohort is the period
(in the request's zone) of their first completed order over all of history; periods are numbered by a
period index (year × 12 + month, year × 4 + quarter, days since a Monday ÷ 7, ...), so periods since =
activity index − cohort index; a period is observable when some completed order falls in it. Per
(member, observable period since): active = a completed order in that period; orders and revenue to
that period are summed with a self-join (no window functions). The time range and customer filters
choose members; their activity is never cut.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from canon.compiler.compile import compile_request
from canon.compiler.errors import CanonError, FilterError, QueryError
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows

LA = "America/Los_Angeles"
COHORT_METRICS = ("retention_rate", "retained_customers", "cohort_customers", "repeat_purchase_rate",
                  "customer_lifetime_value")
DIMS = {"customer.acquisition_channel": "m.channel", "customer.segment": "m.segment"}


def _local(column: str, tz: str | None) -> str:
    return column if not tz else f"(({column} AT TIME ZONE 'UTC') AT TIME ZONE '{tz}')"


def _index(column: str, grain: str) -> str:
    """Consecutive whole numbers for consecutive periods: their difference is the periods between."""
    return {
        "day": f"(CAST({column} AS DATE) - DATE '1970-01-01')",
        "week": f"CAST((CAST(DATE_TRUNC('week', {column}) AS DATE) - DATE '1970-01-05') / 7 AS INTEGER)",
        "month": f"(EXTRACT(YEAR FROM {column}) * 12 + EXTRACT(MONTH FROM {column}))",
        "quarter": f"(EXTRACT(YEAR FROM {column}) * 4 + EXTRACT(QUARTER FROM {column}))",
        "year": f"EXTRACT(YEAR FROM {column})",
    }[grain]


def _members(grain: str, tz: str | None, start: str | None, end: str | None, where: tuple[str, ...]) -> str:
    first = _local("f.first_at", tz)
    conditions = list(where)
    if start:
        conditions.append(f"{first} >= TIMESTAMP '{start} 00:00:00'")
    if end:
        conditions.append(f"CAST({first} AS DATE) <= DATE '{end}'")
    order_time = _local("o.ordered_at", tz)
    return (
        "WITH first AS (SELECT customer_id, MIN(ordered_at) AS first_at FROM orders\n"
        "               WHERE status = 'completed' AND customer_id IS NOT NULL GROUP BY customer_id),\n"
        f"members AS (SELECT f.customer_id, CAST(DATE_TRUNC('{grain}', {first}) AS DATE) AS cohort,\n"
        f"                   {_index(first, grain)} AS ci, c.acquisition_channel AS channel, c.segment AS segment\n"
        "            FROM first AS f LEFT JOIN customers AS c ON c.customer_id = f.customer_id\n"
        f"            {'WHERE ' + ' AND '.join(f'({c})' for c in conditions) if conditions else ''}),\n"
        f"done AS (SELECT o.order_id, o.customer_id, {_index(order_time, grain)} AS pi FROM orders AS o\n"
        "         WHERE o.status = 'completed'),\n"
        "revenue AS (SELECT d.customer_id, d.pi, SUM(oi.quantity * oi.unit_price - oi.discount_amount) AS revenue\n"
        "            FROM done AS d JOIN order_items AS oi ON oi.order_id = d.order_id GROUP BY d.customer_id, d.pi),\n"
        "orders_per AS (SELECT customer_id, pi, COUNT(*) AS n FROM done GROUP BY customer_id, pi)")


def oracle_by_periods(warehouse, metrics, dims, *, grain="month", tz=None, start=None, end=None, where=(),
                      periods_where: str | None = None):
    """Rows (dims..., periods since, metrics...) for `dims` among metric_time and DIMS."""
    exprs = ["m.cohort" if d.startswith("metric_time") else DIMS[d] for d in dims]
    values = {
        "retention_rate": "CAST(SUM(CASE WHEN g.n_now > 0 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / COUNT(*)",
        "retained_customers": "SUM(CASE WHEN g.n_now > 0 THEN 1 ELSE 0 END)",
        "cohort_customers": "COUNT(*)",
        "repeat_purchase_rate": "CAST(SUM(CASE WHEN g.n_to_k >= 2 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / COUNT(*)",
        "customer_lifetime_value": "CAST(SUM(r.revenue_to_k) AS DOUBLE PRECISION) / COUNT(*)",
    }
    sql = (_members(grain, tz, start, end, where) + ",\n"
           "observed AS (SELECT DISTINCT pi FROM done),\n"
           "grid AS (SELECT m.customer_id, ob.pi - m.ci AS k,\n"
           "                COALESCE(SUM(CASE WHEN op.pi = ob.pi THEN op.n END), 0) AS n_now,\n"
           "                COALESCE(SUM(op.n), 0) AS n_to_k\n"
           "         FROM members AS m JOIN observed AS ob ON ob.pi >= m.ci\n"
           "         LEFT JOIN orders_per AS op ON op.customer_id = m.customer_id AND op.pi <= ob.pi\n"
           "         GROUP BY m.customer_id, ob.pi - m.ci),\n"
           "rgrid AS (SELECT m.customer_id, ob.pi - m.ci AS k, COALESCE(SUM(rv.revenue), 0) AS revenue_to_k\n"
           "          FROM members AS m JOIN observed AS ob ON ob.pi >= m.ci\n"
           "          LEFT JOIN revenue AS rv ON rv.customer_id = m.customer_id AND rv.pi <= ob.pi\n"
           "          GROUP BY m.customer_id, ob.pi - m.ci)\n"
           f"SELECT {', '.join(exprs + ['g.k'] + [values[x] for x in metrics])}\n"
           "FROM grid AS g JOIN members AS m ON m.customer_id = g.customer_id\n"
           "JOIN rgrid AS r ON r.customer_id = g.customer_id AND r.k = g.k\n"
           + (f"WHERE {periods_where.replace('K', 'g.k')}\n" if periods_where else "")
           + f"GROUP BY {', '.join(exprs + ['g.k'])}")
    return warehouse.execute(sql)[1]


def oracle_to_date(warehouse, metrics, dims, *, grain="month", tz=None, start=None, end=None, where=()):
    exprs = ["m.cohort" if d.startswith("metric_time") else DIMS[d] for d in dims]
    values = {
        "cohort_customers": "COUNT(*)",
        "repeat_purchase_rate": "CAST(SUM(CASE WHEN t.n >= 2 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / COUNT(*)",
        "customer_lifetime_value": "CAST(SUM(COALESCE(t.revenue, 0)) AS DOUBLE PRECISION) / COUNT(*)",
    }
    sql = (_members(grain, tz, start, end, where) + "\n"
           f"SELECT {', '.join(exprs + [values[x] for x in metrics])}\n"
           "FROM members AS m LEFT JOIN (\n"
           "  SELECT o.customer_id, o.n, r.revenue FROM (SELECT customer_id, SUM(n) AS n FROM orders_per GROUP BY customer_id) AS o\n"
           "  LEFT JOIN (SELECT customer_id, SUM(revenue) AS revenue FROM revenue GROUP BY customer_id) AS r\n"
           "    ON r.customer_id = o.customer_id) AS t ON t.customer_id = m.customer_id\n"
           + (f"GROUP BY {', '.join(exprs)}" if exprs else ""))
    return warehouse.execute(sql)[1]


def bought_again(warehouse, first_month: date, months=(1, 2, 3)):
    """Of the customers whose first completed order was in `first_month`, how many completed an order
    in month 1, 2, 3 after it: written as plainly as the question."""
    index = first_month.year * 12 + first_month.month
    following = (first_month.replace(day=28) + timedelta(days=4)).replace(day=1)
    sql = ("WITH first AS (SELECT customer_id, MIN(ordered_at) AS first_at FROM orders WHERE status = 'completed'\n"
           "               GROUP BY customer_id)\n"
           f"SELECT EXTRACT(YEAR FROM o.ordered_at) * 12 + EXTRACT(MONTH FROM o.ordered_at) - {index} AS k,\n"
           "       COUNT(DISTINCT f.customer_id)\n"
           "FROM first AS f JOIN orders AS o ON o.customer_id = f.customer_id AND o.status = 'completed'\n"
           f"WHERE f.first_at >= TIMESTAMP '{first_month} 00:00:00' AND f.first_at < TIMESTAMP '{following} 00:00:00'\n"
           f"  AND EXTRACT(YEAR FROM o.ordered_at) * 12 + EXTRACT(MONTH FROM o.ordered_at) - {index} IN "
           f"({', '.join(str(k) for k in months)})\n"
           "GROUP BY 1")
    return warehouse.execute(sql)[1]


# --- the cases, shared with the PostgreSQL run ----------------------------------------------------------


def check_by_periods(catalog, warehouse, metrics, dims=("metric_time.month",), *, grain="month", tz=None,
                     start=None, end=None, canon_where=(), oracle_where=(), periods_where=None):
    want = oracle_by_periods(warehouse, metrics, dims, grain=grain, tz=tz, start=start, end=end, where=oracle_where,
                             periods_where=periods_where)
    assert want, "the oracle found no cohort rows"
    where = tuple(canon_where) + ((periods_where.replace("K", "cohort.periods_since"),) if periods_where else ())
    request = QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims) + ("cohort.periods_since",), where=where,
                           start=start, end=end, timezone=tz)
    got = canon_rows(catalog, warehouse, request)
    assert_same(got, want, keys=len(dims) + 1, rel=1e-9, label=str(request))
    return got


def check_to_date(catalog, warehouse, metrics, dims=(), *, grain="month", tz=None, start=None, end=None,
                  canon_where=(), oracle_where=()):
    want = oracle_to_date(warehouse, metrics, dims, grain=grain, tz=tz, start=start, end=end, where=oracle_where)
    assert want and all(row[-1] is not None for row in want)
    request = QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims), where=tuple(canon_where), start=start,
                           end=end, timezone=tz)
    got = canon_rows(catalog, warehouse, request)
    assert_same(got, want, keys=len(dims), rel=1e-9, label=str(request))
    return got


def case_bought_again_in_months_1_2_3(catalog, warehouse):
    want = bought_again(warehouse, date(2024, 1, 1))
    request = QueryRequest(metrics=("retained_customers",), dimensions=("cohort.periods_since",),
                           where=("cohort.periods_since BETWEEN 1 AND 3",), start="2024-01-01", end="2024-01-31")
    got = canon_rows(catalog, warehouse, request)
    assert_same(got, want, keys=1)
    assert [row[0] for row in got] == [1, 2, 3] and all(row[1] > 0 for row in got)


def case_retention_by_cohort_month(catalog, warehouse):
    rows = check_by_periods(catalog, warehouse, ["retention_rate", "cohort_customers", "retained_customers"],
                            start="2024-01-01", end="2024-06-30")
    assert all(rate == 1.0 for _, k, rate, _, _ in rows if k == 0)  # the first order's own month
    last = {str(cohort)[:10]: max(k for c, k, *_ in rows if c == cohort) for cohort, *_ in rows}
    # the data ends in December 2025: January 2024 has months 0..23, June 2024 months 0..18
    assert last["2024-01-01"] == 23 and last["2024-06-01"] == 18


def case_ltv_by_cohort_and_channel(catalog, warehouse):
    check_to_date(catalog, warehouse, ["customer_lifetime_value", "cohort_customers", "repeat_purchase_rate"],
                  ("metric_time.quarter", "customer.acquisition_channel"), grain="quarter")


def case_ltv_curve_by_cohort_and_channel(catalog, warehouse):
    rows = check_by_periods(catalog, warehouse, ["customer_lifetime_value", "repeat_purchase_rate"],
                            ("metric_time.quarter", "customer.acquisition_channel"), grain="quarter",
                            start="2024-01-01", end="2024-12-31")
    curves: dict = {}
    for cohort, channel, k, ltv, repeat in rows:
        curves.setdefault((cohort, channel), []).append((k, ltv, repeat))
    for curve in curves.values():  # a cohort's members stay the same along k: its LTV and repeat rate never fall
        curve.sort()
        assert all(a[1] <= b[1] + 1e-9 and a[2] <= b[2] for a, b in zip(curve, curve[1:]))
    # without the cohort, a period since averages the members the data has reached that far
    check_by_periods(catalog, warehouse, ["customer_lifetime_value"], ("customer.acquisition_channel",),
                     start="2024-01-01", end="2024-12-31")


def case_time_zone(catalog, warehouse):
    check_by_periods(catalog, warehouse, list(COHORT_METRICS), tz=LA, start="2024-01-01", end="2024-03-31",
                     periods_where="K <= 6")


def case_weeks_with_a_customer_filter(catalog, warehouse):
    check_by_periods(catalog, warehouse, ["retention_rate", "cohort_customers"], ("metric_time.week",), grain="week",
                     start="2025-01-06", end="2025-02-02", canon_where=("customer.segment = 'enterprise'",),
                     oracle_where=("c.segment = 'enterprise'",), periods_where="K < 8")


def case_totals_to_date(catalog, warehouse):
    [(size, ltv)] = check_to_date(catalog, warehouse, ["cohort_customers", "customer_lifetime_value"])
    assert size > 1000 and ltv > 0


CASES = [case_bought_again_in_months_1_2_3, case_retention_by_cohort_month, case_ltv_by_cohort_and_channel,
         case_ltv_curve_by_cohort_and_channel, case_time_zone, case_weeks_with_a_customer_filter, case_totals_to_date]


@pytest.fixture(scope="module")
def duck(demo_path):
    from canon.server.warehouses import open_warehouse

    warehouse = open_warehouse(str(demo_path))
    yield warehouse
    warehouse.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[len("case_"):])
def test_cohorts_match_hand_written_sql_on_duckdb(catalog, duck, case):
    case(catalog, duck)


# --- errors that name the way out ----------------------------------------------------------------------


@pytest.mark.parametrize("request_, error, words", [
    (QueryRequest(metrics=("retention_rate",), dimensions=("metric_time.month",)), QueryError,
     ["retention_rate", "cohort.periods_since"]),
    (QueryRequest(metrics=("retention_rate", "revenue"), dimensions=("cohort.periods_since",)), QueryError,
     ["cannot be combined with revenue"]),
    (QueryRequest(metrics=("revenue",), dimensions=("cohort.periods_since",)), QueryError,
     ["only to cohort metrics", "retention_rate"]),
    (QueryRequest(metrics=("cohort_customers",), dimensions=("cohort.months",)), CanonError, ["cohort.periods_since"]),
    (QueryRequest(metrics=("cohort_customers",), dimensions=("metric_time.hour",)), QueryError, ["day, week, month"]),
    (QueryRequest(metrics=("cohort_customers",), dimensions=("metric_time.month", "metric_time.year")), QueryError,
     ["one metric_time grain"]),
    (QueryRequest(metrics=("cohort_customers",), dimensions=("order.sales_channel",)), QueryError,
     ["customer", "order"]),
    (QueryRequest(metrics=("retention_rate",), dimensions=("cohort.periods_since",),
                  where=("cohort.periods_since = 1 OR customer.segment = 'consumer'",)), FilterError,
     ["cohort.periods_since", "of its own"]),
    (QueryRequest(metrics=("cohort_customers",), where=("cohort.periods_since = 1",)), QueryError,
     ["group by cohort.periods_since"]),
    (QueryRequest(metrics=("cohort_customers",), dimensions=("metric_time.month",), fill_gaps=True), QueryError,
     ["fill_gaps"]),
    (QueryRequest(metrics=("cohort_customers",), where=("metric_time.dow = 1",)), QueryError,
     ["cohort period", "metric_time.<grain>"]),
    (QueryRequest(metrics=("cohort_customers", "lead_to_order_28d")), QueryError, ["cannot be combined"]),
], ids=["needs-periods", "mixed", "not-cohort", "unknown", "clock-grain", "two-grains", "many-side", "mixed-filter",
        "filter-ungrouped", "fill-gaps", "time-part", "mixed-types"])
def test_unsupported_combinations_say_what_to_do(catalog, request_, error, words):
    with pytest.raises(error) as raised:
        compile_request(catalog, request_)
    text = f"{raised.value.message} {raised.value.hint or ''}"
    assert all(w in text for w in words), text


def test_every_dialect_compiles_a_cohort_query(catalog):
    from canon.compiler.compile import DIALECTS

    request = QueryRequest(metrics=COHORT_METRICS, dimensions=("metric_time.week", "cohort.periods_since",
                                                               "customer.acquisition_channel"), timezone=LA)
    for dialect in DIALECTS:
        if dialect != "clickhouse":  # no generated time spine needed: ClickHouse compiles too
            assert "_canon_k" in compile_request(catalog, request, dialect).sql
    assert compile_request(catalog, request, "clickhouse").sql


def test_catalog_lists_the_cohort_dimensions(catalog):
    from canon.compiler.introspect import dimensions_for

    refs = {d.ref for d in dimensions_for(catalog, ["retention_rate"])}
    assert {"cohort.periods_since", "metric_time", "customer.acquisition_channel", "campaign.channel"} <= refs
    assert "order.sales_channel" not in refs


# --- definitions that cannot work fail in validate --------------------------------------------------------

BAD = """\
metrics:
  - name: bad_ltv
    type: cohort
    entity: customer
    cohort: order_count
    activity: buyer_count
    calculation: cumulative_value
  - name: bad_entity
    type: cohort
    entity: shopper
    cohort: order_count
    activity: order_count
  - name: bad_reach
    type: cohort
    entity: customer
    cohort: ad_spend
    activity: order_count
"""


def test_validate_rejects_broken_cohort_metrics(tmp_path):
    from canon.compiler.compile import load_catalog
    from canon.compiler.errors import CatalogErrors
    from tests.support.project import copy_project

    project = copy_project(tmp_path / "project")
    (project / "metrics" / "bad_cohorts.yml").write_text(BAD)
    with pytest.raises(CatalogErrors) as raised:
        load_catalog(project)
    text = "\n".join(str(e) for e in raised.value.errors)
    assert "bad_ltv" in text and "order.buyers" in text and "agg sum or count" in text
    assert "unknown entity 'shopper'" in text
    assert "bad_reach" in text and "ad_spend" in text


# --- front ends ---------------------------------------------------------------------------------------------


def test_cli_shows_a_retention_table():
    from tests.support.cli import canon, demo_warehouse
    from canon.server.warehouses import open_warehouse

    warehouse = demo_warehouse()
    result = canon("query", "--metric", "retention_rate", "--metric", "cohort_customers", "--by", "metric_time.month",
                   "--by", "cohort.periods_since", "--start", "2024-01-01", "--end", "2024-03-31", "--format", "json",
                   warehouse=warehouse)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [c["name"] for c in body["columns"]] == ["metric_time.month", "cohort.periods_since", "retention_rate",
                                                    "cohort_customers"]
    assert [c["type"] for c in body["columns"]] == ["time", "number", "number", "number"]
    duck = open_warehouse(str(warehouse))
    try:
        want = oracle_by_periods(duck, ["retention_rate", "cohort_customers"], ["metric_time.month"],
                                 start="2024-01-01", end="2024-03-31")
    finally:
        duck.close()
    assert_same(body["rows"], want, keys=2)
    failed = canon("query", "--metric", "retention_rate", "--by", "metric_time.month", warehouse=warehouse)
    assert failed.returncode != 0 and "cohort.periods_since" in failed.stderr and "Traceback" not in failed.stderr


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app
    from tests.support.servers import build_warehouse, copy_project

    root = tmp_path_factory.mktemp("cohorts_http")
    warehouse = build_warehouse(root / "demo.duckdb")
    app = create_app(copy_project(root / "project"), str(warehouse), reload_interval_s=0)
    with TestClient(app) as client:
        yield client, warehouse


def test_http_query_and_cube_meta(http):
    from canon.server.warehouses import open_warehouse

    client, warehouse = http
    response = client.post("/v1/query", json={"metrics": ["customer_lifetime_value", "cohort_customers"],
                                              "dimensions": ["metric_time.quarter", "customer.acquisition_channel"]})
    assert response.status_code == 200, response.text
    duck = open_warehouse(str(warehouse))
    try:
        want = oracle_to_date(duck, ["customer_lifetime_value", "cohort_customers"],
                              ["metric_time.quarter", "customer.acquisition_channel"], grain="quarter")
    finally:
        duck.close()
    assert_same(response.json()["rows"], want, keys=2)
    bad = client.post("/v1/query", json={"metrics": ["retention_rate"]})
    assert bad.status_code == 400 and "cohort.periods_since" in bad.text
    dims = client.get("/v1/dimensions", params={"metrics": "retention_rate"})
    assert dims.status_code == 200 and "cohort.periods_since" in dims.text
    meta = client.get("/cubejs-api/v1/meta")
    assert meta.status_code == 200
    measures = {m["name"] for cube in meta.json()["cubes"] for m in cube["measures"]}
    assert "metrics.retention_rate" in measures and "metrics.customer_lifetime_value" in measures
    dimensions = {d["name"]: d["type"] for cube in meta.json()["cubes"] for d in cube["dimensions"]}
    assert dimensions["cohort.periods_since"] == "number"


def test_cube_load_retention_in_the_requested_column_order(http):
    """Periods since first, the cohort month as a Cube time dimension: each value in its own column."""
    client, _ = http
    query = {"measures": ["metrics.retention_rate"], "dimensions": ["cohort.periods_since"],
             "timeDimensions": [{"dimension": "metrics.metric_time", "granularity": "month",
                                 "dateRange": ["2024-01-01", "2024-02-29"]}],
             "filters": [{"member": "cohort.periods_since", "operator": "lte", "values": ["3"]}]}
    response = client.get("/cubejs-api/v1/load", params={"query": json.dumps(query)})
    assert response.status_code == 200, response.text
    got = {(row["metrics.metric_time.month"][:10], row["cohort.periods_since"]): row["metrics.retention_rate"]
           for row in response.json()["data"]}
    reference = client.post("/v1/query", json={"metrics": ["retention_rate"],
                                               "dimensions": ["cohort.periods_since", "metric_time.month"],
                                               "where": ["cohort.periods_since <= 3"],
                                               "start": "2024-01-01", "end": "2024-02-29"})
    assert reference.status_code == 200, reference.text
    want = {(month, k): rate for k, month, rate in reference.json()["rows"]}
    assert got == want and len(want) == 8 and want[("2024-01-01", 0)] == 1.0


RETENTION_TABLE = """saved_queries:
  - name: monthly_retention
    description: Customers by month of first completed order, and the share that ordered again each month after.
    metrics: [retention_rate, cohort_customers]
    dimensions: [metric_time.month, cohort.periods_since]
    order: [metric_time.month, cohort.periods_since]
"""


@pytest.mark.slow  # a CLI subprocess and a wire server
def test_saved_retention_table_runs_by_name_and_on_the_wire(tmp_path):
    """A saved cohort query: `canon query --saved-query` and a table on the PostgreSQL wire, with
    periods since as an integer column, both equal to the hand-written SQL."""
    import psycopg

    from canon.server.pgwire.server import start_pg_server
    from canon.server.runtime import Runtime
    from canon.server.warehouses import open_warehouse
    from tests.support.cli import canon
    from tests.support.project import copy_project, shared_demo

    project = copy_project(tmp_path / "project")
    (project / "metrics" / "saved_retention.yml").write_text(RETENTION_TABLE)
    warehouse = shared_demo()
    duck = open_warehouse(str(warehouse))
    try:
        want = oracle_by_periods(duck, ["retention_rate", "cohort_customers"], ["metric_time.month"],
                                 start="2025-01-01", end="2025-02-28", periods_where="K <= 2")
    finally:
        duck.close()
    result = canon("query", "--project", str(project), "--saved-query", "monthly_retention", "--start", "2025-01-01",
                   "--end", "2025-02-28", "--where", "cohort.periods_since <= 2", "--format", "json",
                   warehouse=warehouse)
    assert result.returncode == 0, result.stderr
    want = sorted(want, key=lambda row: (str(row[0]), row[1]))  # the saved query's order
    assert_same(json.loads(result.stdout)["rows"], want, keys=2, ordered=True)
    runtime = Runtime.open(project, str(warehouse))
    handle = start_pg_server(runtime, "127.0.0.1", 0)
    try:
        with psycopg.connect(host="127.0.0.1", port=handle.port, user="analyst", dbname="canon",
                             autocommit=True) as conn:
            cursor = conn.execute("SELECT metric_time_month, cohort_periods_since, retention_rate, cohort_customers "
                                  "FROM monthly_retention WHERE cohort_periods_since <= 2 "
                                  "AND metric_time_month BETWEEN '2025-01-01' AND '2025-02-01'")
            rows = cursor.fetchall()
            assert [d.type_code for d in cursor.description][1] == 23  # int4
    finally:
        handle.stop()
        runtime.close()
    assert_same([list(r) for r in rows], want, keys=2)
