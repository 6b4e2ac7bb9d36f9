"""Cube query features answer exactly what the runtime answers for the equivalent Canon request
(POST /v1/query), and hand-written SQL where Cube's semantics are new to Canon. In process: the app
with its lifespan, over a scale-0.2 demo warehouse (canon.yml pins `calendar.now` to 2025-12-31)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import duckdb
import pytest
from fastapi.testclient import TestClient

from canon.server.cube_dates import date_range
from canon.server.cube_jobs import CONTINUE_WAIT, CubeJobs
from tests.support.servers import build_warehouse, copy_project

API = "/cubejs-api/v1"


SEGMENTS = """\
  segments:
    - {name: web, filter: "order.sales_channel = 'web'", label: Web orders}
    - {name: enterprise_buyers, filter: "customer.segment = 'enterprise'", description: Orders of enterprise customers.}
"""


def add_segments(path, text: str) -> None:
    """A `segments:` list on the model of `path` (inserted after its default_time)."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("  default_time:")) + 1
    path.write_text("".join(lines[:at]) + text + "".join(lines[at:]))


def add_view_segments(path, view: str, segments: list[str]) -> None:
    """`segments: [...]` on view `view` of the metrics file `path` (after its `name:` line)."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {view}") + 1
    indent = " " * (len(lines[at - 1]) - len(lines[at - 1].lstrip()) + 2)
    path.write_text("".join(lines[:at]) + f"{indent}segments: {json.dumps(segments)}\n" + "".join(lines[at:]))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from canon.server.http_api import create_app

    root = tmp_path_factory.mktemp("cube_parity")
    project = copy_project(root / "project")
    add_segments(project / "semantic_models" / "orders.yml", SEGMENTS)
    add_view_segments(project / "metrics" / "sales.yml", "sales", ["order.web"])
    warehouse = build_warehouse(root / "demo.duckdb")
    app = create_app(project, str(warehouse), max_rows=5_000, reload_interval_s=0)
    with TestClient(app) as client:
        yield {"client": client, "warehouse": warehouse, "app": app}


@pytest.fixture
def client(site):
    return site["client"]


def load(client, query, **params):
    response = client.post(f"{API}/load", json={"query": query, **params})
    assert response.status_code == 200, response.text[:500]
    return response.json()


def plain(client, **body):
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text[:500]
    return response.json()["rows"]


def rows(body, members):
    return [[row[m] for m in members] for row in body["data"]]


def hand_sql(site, sql):
    con = duckdb.connect(str(site["warehouse"]), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


CATEGORY = {"measures": ["metrics.revenue"], "dimensions": ["product.category"], "order": {"product.category": "asc"}}


def cube_filter(client, member, operator, values=None):
    f = {"member": member, "operator": operator, **({"values": values} if values is not None else {})}
    return rows(load(client, {**CATEGORY, "filters": [f]}), ["product.category", "metrics.revenue"])


def canon_where(client, where):
    return plain(client, metrics=["revenue"], dimensions=["product.category"], where=where, order=["product.category"])


# --- filter operators ----------------------------------------------------------------------------------------


def test_in_and_not_in_equal_equals_and_not_equals(client):
    for cube_op, same in (("in", "equals"), ("notIn", "notEquals")):
        got = cube_filter(client, "customer.segment", cube_op, ["enterprise", "consumer"])
        assert got == cube_filter(client, "customer.segment", same, ["enterprise", "consumer"]) and got
    assert cube_filter(client, "customer.segment", "in", ["enterprise"]) == \
        canon_where(client, "customer.segment = 'enterprise'")


def test_null_among_values(client):
    """equals [null] is notSet; [x, null] also keeps missing values; notEquals [x, null] drops both."""
    assert cube_filter(client, "order.campaign_id", "equals", [None]) == canon_where(client, "order.campaign_id IS NULL")
    assert cube_filter(client, "order.campaign_id", "notEquals", [None]) == \
        canon_where(client, "order.campaign_id IS NOT NULL")
    campaign = plain(client, metrics=["revenue"], dimensions=["order.campaign_id"], where="order.campaign_id IS NOT NULL",
                     order=["order.campaign_id"], limit=1)[0][0]
    with_null = cube_filter(client, "order.campaign_id", "equals", [campaign, None])
    assert with_null == canon_where(client, f"order.campaign_id = {campaign} OR order.campaign_id IS NULL")
    without = cube_filter(client, "order.campaign_id", "notEquals", [campaign, None])
    assert without == canon_where(client, f"order.campaign_id <> {campaign} AND order.campaign_id IS NOT NULL")
    assert with_null != without


def test_on_the_date_is_the_whole_day(client):
    got = cube_filter(client, "order.ordered_at", "onTheDate", ["2025-03-01"])
    assert got == cube_filter(client, "order.ordered_at", "inDateRange", ["2025-03-01", "2025-03-01"])
    assert got == canon_where(client, "order.ordered_at >= '2025-03-01' AND order.ordered_at < '2025-03-02'") and got


def test_before_or_on_and_after_date_compare_with_the_start_of_the_day(client, site):
    """As Cube: a bare date is its midnight, so beforeOrOnDate keeps nothing of that day after 00:00."""
    body = load(client, {"measures": ["metrics.order_count"], "filters": [
        {"member": "order.ordered_at", "operator": "beforeOrOnDate", "values": ["2025-03-01"]}]})
    expected = hand_sql(site, "SELECT count(*) FROM orders WHERE status = 'completed' "
                              "AND ordered_at <= TIMESTAMP '2025-03-01 00:00:00'")[0][0]
    assert body["data"][0]["metrics.order_count"] == expected
    whole_day = hand_sql(site, "SELECT count(*) FROM orders WHERE status = 'completed' "
                               "AND ordered_at < TIMESTAMP '2025-03-02 00:00:00'")[0][0]
    assert whole_day > expected  # the day's orders are not included
    after = load(client, {"measures": ["metrics.order_count"], "filters": [
        {"member": "order.ordered_at", "operator": "afterDate", "values": ["2025-03-01"]}]})
    assert after["data"][0]["metrics.order_count"] == hand_sql(
        site, "SELECT count(*) FROM orders WHERE status = 'completed' AND ordered_at > TIMESTAMP '2025-03-01 00:00:00'")[0][0]


def test_relative_values_in_date_filters(client):
    """beforeDate 'last year' (now is 2025-12-31): before its start; afterDate: after its last millisecond."""
    before = cube_filter(client, "order.ordered_at", "beforeDate", ["last year"])
    assert before == canon_where(client, "order.ordered_at < '2024-01-01'")
    after = cube_filter(client, "order.ordered_at", "afterDate", ["last month"])
    assert after == canon_where(client, "order.ordered_at > CAST('2025-11-30 23:59:59.999' AS TIMESTAMP)")
    assert after and after != before


def test_measure_filters_are_having(client):
    query = {"measures": ["metrics.revenue"], "dimensions": ["product.subcategory"],
             "filters": [{"member": "metrics.revenue", "operator": "gt", "values": ["20000"]}],
             "order": {"metrics.revenue": "desc"}}
    got = rows(load(client, query), ["product.subcategory", "metrics.revenue"])
    want = plain(client, metrics=["revenue"], dimensions=["product.subcategory"], having="revenue > 20000",
                 order=["-revenue"])
    everything = plain(client, metrics=["revenue"], dimensions=["product.subcategory"])
    assert got == want and 0 < len(got) < len(everything)
    # a filter on a measure the query does not return: computed, applied, not returned (as in Cube)
    hidden = load(client, {"measures": ["metrics.order_count"], "dimensions": ["product.subcategory"],
                           "filters": [{"or": [{"member": "metrics.revenue", "operator": "gt", "values": [20000]},
                                               {"member": "metrics.revenue", "operator": "lt", "values": [100]}]}],
                           "order": {"product.subcategory": "asc"}})
    assert set(hidden["data"][0]) == {"product.subcategory", "metrics.order_count"}
    want = plain(client, metrics=["order_count", "revenue"], dimensions=["product.subcategory"],
                 having="revenue > 20000 OR revenue < 100", order=["product.subcategory"])
    assert rows(hidden, ["product.subcategory", "metrics.order_count"]) == [r[:2] for r in want]


def test_dimension_only_query_with_measure_filter_lists_groups_with_facts(client):
    """What drillDown() sends: dimensions, no measures, a measureFilter on the measure."""
    body = load(client, {"dimensions": ["order.sales_channel", "order.status"],
                         "filters": [{"member": "metrics.revenue", "operator": "measureFilter"}],
                         "order": {"order.sales_channel": "asc", "order.status": "asc"}})
    want = plain(client, metrics=["revenue"], dimensions=["order.sales_channel", "order.status"],
                 having="revenue IS NOT NULL", order=["order.sales_channel", "order.status"])
    assert rows(body, ["order.sales_channel", "order.status"]) == [r[:2] for r in want]
    assert {r[1] for r in want} == {"completed"}  # revenue counts completed orders only


# --- query shapes ------------------------------------------------------------------------------------------


def test_default_order_is_first_measure_descending(client):
    body = load(client, {"measures": ["metrics.revenue", "metrics.order_count"], "dimensions": ["product.category"]})
    assert body["query"]["order"] == [{"id": "metrics.revenue", "desc": True}]
    assert rows(body, ["product.category", "metrics.revenue", "metrics.order_count"]) == \
        plain(client, metrics=["revenue", "order_count"], dimensions=["product.category"], order=["-revenue"])
    by_time = load(client, {"measures": ["metrics.revenue"], "timeDimensions": [
        {"dimension": "metrics.metric_time", "granularity": "quarter", "dateRange": "this year"}]})
    assert by_time["query"]["order"] == [{"id": "metrics.metric_time.quarter", "desc": False}]


def test_time_granularity_in_dimensions(client):
    a = load(client, {"measures": ["metrics.revenue"], "dimensions": ["order.ordered_at.month"],
                      "order": {"order.ordered_at.month": "asc"}})
    b = load(client, {"measures": ["metrics.revenue"], "order": {"order.ordered_at.month": "asc"},
                      "timeDimensions": [{"dimension": "order.ordered_at", "granularity": "month"}]})
    assert rows(a, ["order.ordered_at.month", "metrics.revenue"]) == rows(b, ["order.ordered_at.month", "metrics.revenue"])
    assert len(a["data"]) >= 12 and "order.ordered_at.month" in a["annotation"]["timeDimensions"]


@pytest.mark.parametrize("granularity,trunc", [("hour", "hour"), ("minute", "minute"), ("second", "second")])
def test_clock_granularities_equal_hand_sql(client, site, granularity, trunc):
    """Hours, minutes and seconds; order_count fills days from the time spine, never periods below a day."""
    body = load(client, {"measures": ["metrics.order_count"], "timeDimensions": [
        {"dimension": "metrics.metric_time", "granularity": granularity, "dateRange": ["2025-03-01", "2025-03-07"]}]})
    got = [[r[f"metrics.metric_time.{granularity}"], r["metrics.order_count"]] for r in body["data"]]
    want = hand_sql(site, f"SELECT strftime(date_trunc('{trunc}', ordered_at), '%Y-%m-%dT%H:%M:%S.000'), count(*) "
                          "FROM orders WHERE status = 'completed' AND ordered_at >= '2025-03-01' AND ordered_at < '2025-03-08' "
                          "GROUP BY 1 ORDER BY 1")
    assert got == [list(r) for r in want] and len(want) > 7


def test_limit_zero_and_total_counted_in_the_warehouse(client, site):
    query = {"measures": ["metrics.revenue"], "dimensions": ["product.product_name", "customer.customer_id"]}
    body = load(client, {**query, "limit": 0, "total": True})
    expected = hand_sql(site, "SELECT count(*) FROM (SELECT DISTINCT i.product_id, o.customer_id FROM order_items i "
                              "JOIN orders o USING (order_id) WHERE o.status = 'completed')")[0][0]
    assert body["data"] == [] and body["total"] == expected and expected > 5_000  # above the row cap


def test_ranges_from_ago_to_now_and_last_hours():
    now = datetime(2025, 12, 31, 15, 42, 10)
    assert date_range("from 7 days ago to now", "d", now=now) == (datetime(2025, 12, 24), datetime(2026, 1, 1))
    assert date_range("last 6 hours", "d", now=now) == (datetime(2025, 12, 31, 9), datetime(2025, 12, 31, 15))
    assert date_range("from 2 hours ago to now", "d", now=now) == (datetime(2025, 12, 31, 13), datetime(2025, 12, 31, 16))
    assert date_range("this hour", "d", now=now) == (datetime(2025, 12, 31, 15), datetime(2025, 12, 31, 16))
    assert date_range("last 30 minutes", "d", now=now) == (datetime(2025, 12, 31, 15, 12), datetime(2025, 12, 31, 15, 42))
    assert date_range("from 2025-01-01 to today", "d", now=now) == (datetime(2025, 1, 1), datetime(2026, 1, 1))
    assert date_range("next 2 weeks", "d", now=now) == (datetime(2026, 1, 5), datetime(2026, 1, 19))


def test_from_days_ago_to_now_in_a_query(client):
    body = load(client, {"measures": ["metrics.order_count"], "timeDimensions": [
        {"dimension": "metrics.metric_time", "granularity": "day", "dateRange": "from 7 days ago to now"}],
        "order": {"metrics.metric_time.day": "asc"}})
    assert body["query"]["timeDimensions"][0]["dateRange"] == ["2025-12-24T00:00:00.000", "2025-12-31T23:59:59.999"]
    got = [[r["metrics.metric_time.day"][:10], r["metrics.order_count"]] for r in body["data"]]
    assert got == plain(client, metrics=["order_count"], dimensions=["metric_time.day"], start="2025-12-24", end="2025-12-31")


def test_compare_date_range_one_result_set_per_range(client):
    ranges = [["2025-01-01", "2025-01-31"], "last month"]
    body = load(client, {"measures": ["metrics.revenue"], "dimensions": ["product.category"],
                         "timeDimensions": [{"dimension": "metrics.metric_time", "compareDateRange": ranges}],
                         "order": {"product.category": "asc"}}, queryType="multi")
    assert body["queryType"] == "compareDateRangeQuery" and len(body["results"]) == 2
    assert "compareDateRange" in body["pivotQuery"]["dimensions"]
    for result, (start, end) in zip(body["results"], [("2025-01-01", "2025-01-31"), ("2025-11-01", "2025-11-30")]):
        assert rows(result, ["product.category", "metrics.revenue"]) == plain(
            client, metrics=["revenue"], dimensions=["product.category"], start=start, end=end, order=["product.category"])
        assert result["data"][0]["compareDateRange"] == f"{start}T00:00:00.000 - {end}T23:59:59.999"


def test_data_blending_one_result_set_per_query(client):
    td = [{"dimension": "metrics.metric_time", "granularity": "month", "dateRange": ["2025-01-01", "2025-03-31"]}]
    queries = [{"measures": ["metrics.revenue"], "timeDimensions": td}, {"measures": ["metrics.ad_spend"], "timeDimensions": td}]
    body = load(client, queries, queryType="multi")
    assert body["queryType"] == "blendingQuery" and body["pivotQuery"]["measures"] == ["metrics.revenue", "metrics.ad_spend"]
    for result, metric in zip(body["results"], ["revenue", "ad_spend"]):
        got = [[r["time.month"][:10], r[f"metrics.{metric}"]] for r in result["data"]]
        assert got == plain(client, metrics=[metric], dimensions=["metric_time.month"], start="2025-01-01", end="2025-03-31")


def test_columnar_and_compact_shapes(client):
    query = {"measures": ["metrics.revenue"], "dimensions": ["product.category"], "order": {"product.category": "asc"}}
    default = load(client, query)["data"]
    columnar = load(client, {**query, "responseFormat": "columnar"})
    assert columnar["query"]["responseFormat"] == "columnar"
    assert columnar["data"] == {"members": ["product.category", "metrics.revenue"],
                                "columns": [[r["product.category"] for r in default], [r["metrics.revenue"] for r in default]]}
    compact = load(client, {**query, "responseFormat": "compact"})["data"]
    assert compact["dataset"] == [[r["product.category"], r["metrics.revenue"]] for r in default]


# --- endpoints -----------------------------------------------------------------------------------------------


def test_sql_order_object_and_data_source(client):
    body = client.get(f"{API}/sql", params={"query": json.dumps({"measures": ["metrics.revenue"],
                                                                   "dimensions": ["product.category"]})}).json()["sql"]
    assert body["order"] == {"metrics.revenue": "desc"} and body["dataSource"] == "default"
    assert body["sql"][1] == [] and "SELECT" in body["sql"][0]


def test_dry_run_normalizes_without_running(client):
    query = {"measures": ["metrics.revenue"], "timeDimensions": [{"dimension": "metrics.metric_time", "dateRange": "last week"}]}
    body = client.post(f"{API}/dry-run", json={"query": query}).json()
    assert body["queryType"] == "regularQuery" and body["queryOrder"] == [{"metrics.revenue": "desc"}]
    assert body["normalizedQueries"][0]["timeDimensions"][0]["dateRange"] == ["2025-12-22T00:00:00.000", "2025-12-28T23:59:59.999"]
    assert body["pivotQuery"]["measures"] == ["metrics.revenue"]
    bad = client.post(f"{API}/dry-run", json={"query": {"measures": ["metrics.nope"]}})
    assert bad.status_code == 400 and "metrics.nope" in bad.json()["error"]


def test_meta_extended_only_views_and_member_details(client):
    meta = client.get(f"{API}/meta").json()
    views = client.get(f"{API}/meta", params={"onlyViews": "true"}).json()
    assert {c["type"] for c in views["cubes"]} == {"view"} and len(views["cubes"]) < len(meta["cubes"])
    extended = client.get(f"{API}/meta", params={"extended": "true"}).json()
    cubes = {c["name"]: c for c in extended["cubes"]}
    assert cubes["product"]["sql"] == "products" and "sql" not in meta["cubes"][0]
    measures = {m["name"]: m for c in meta["cubes"] for m in c["measures"]}
    assert measures["sales.revenue"]["aliasMember"] == "metrics.revenue"
    assert measures["metrics.revenue_rolling_28d"]["cumulative"] is True and measures["metrics.revenue"]["cumulative"] is False
    assert measures["metrics.revenue"]["drillMembers"] and all(
        m in {d["name"] for c in meta["cubes"] for d in c["dimensions"]} for m in measures["metrics.revenue"]["drillMembers"])
    dims = {d["name"]: d for c in meta["cubes"] for d in c["dimensions"]}
    assert dims["sales.product_category"]["aliasMember"] == "product.category"


def test_health_probes(client):
    assert client.get("/livez").json() == {"health": "HEALTH"}
    assert client.get("/readyz").json() == {"health": "HEALTH"}


# --- Continue wait -------------------------------------------------------------------------------------------


def test_continue_wait_polls_the_same_job():
    async def scenario():
        jobs = CubeJobs(wait_s=0.05, abandon_s=5)
        started = []

        async def slow(ticket):
            started.append(ticket)
            await asyncio.sleep(0.3)
            return "rows"

        first = await jobs.poll("q", slow)
        assert first is CONTINUE_WAIT and len(jobs) == 1
        while (outcome := await jobs.poll("q", slow)) is CONTINUE_WAIT:
            pass
        assert outcome == "rows" and len(started) == 1 and len(jobs) == 0  # one run, picked up, forgotten

        async def failing(ticket):
            raise ValueError("boom")
        with pytest.raises(ValueError):
            await jobs.poll("bad", failing)

    asyncio.run(scenario())


def test_continue_wait_job_nobody_polls_is_cancelled():
    async def scenario():
        jobs = CubeJobs(wait_s=0.01, abandon_s=0.2)
        tickets = []

        async def forever(ticket):
            tickets.append(ticket)
            await asyncio.sleep(30)

        assert await jobs.poll("q", forever) is CONTINUE_WAIT
        deadline = time.monotonic() + 3
        while len(jobs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(jobs) == 0 and tickets[0].cancelled

    asyncio.run(scenario())


def test_continue_wait_over_http(site):
    """A wait of 0 s: the first request answers Continue wait, a re-poll of the same query gets the rows."""
    client, app = site["client"], site["app"]
    saved = getattr(app.state, "cube_jobs", None)
    app.state.cube_jobs = CubeJobs(wait_s=0)
    try:
        query = {"measures": ["metrics.revenue"], "dimensions": ["product.brand"], "order": {"product.brand": "asc"}}
        first = client.post(f"{API}/load", json={"query": query})
        assert first.status_code == 200 and first.json() == {"error": "Continue wait"}
        app.state.cube_jobs.wait_s = 10
        body = load(client, query)
        assert rows(body, ["product.brand", "metrics.revenue"]) == plain(
            client, metrics=["revenue"], dimensions=["product.brand"], order=["product.brand"])
        assert len(app.state.cube_jobs) == 0
    finally:
        app.state.cube_jobs = saved


# --- segments ------------------------------------------------------------------------------------------------


def test_segments_from_the_catalog(client):
    meta = {c["name"]: c for c in client.get(f"{API}/meta").json()["cubes"]}
    assert [x["name"] for x in meta["order"]["segments"]] == ["order.web", "order.enterprise_buyers"]
    assert meta["order"]["segments"][0]["title"] == "Order Web orders"
    query = {**CATEGORY, "segments": ["order.web", "order.enterprise_buyers"]}
    body = load(client, query)
    assert body["query"]["segments"] == ["order.web", "order.enterprise_buyers"] and "order.web" in body["annotation"]["segments"]
    got = rows(body, ["product.category", "metrics.revenue"])
    want = canon_where(client, "order.sales_channel = 'web' AND customer.segment = 'enterprise'")
    assert got == want and got != canon_where(client, "order.sales_channel = 'web'")
    # the same segments from POST /v1/query
    assert plain(client, metrics=["revenue"], dimensions=["product.category"], segments=["order.web", "order.enterprise_buyers"],
                 order=["product.category"]) == want
    # a view offers the segment under its own name, standing for the model's
    views = {c["name"]: c for c in client.get(f"{API}/meta", params={"onlyViews": "true"}).json()["cubes"]}
    assert views["sales"]["segments"][0]["name"] == "sales.web" and views["sales"]["segments"][0]["aliasMember"] == "order.web"
    through_view = load(client, {"measures": ["sales.revenue"], "dimensions": ["sales.product_category"],
                                 "segments": ["sales.web"], "order": {"sales.product_category": "asc"}})
    assert rows(through_view, ["sales.product_category", "sales.revenue"]) == canon_where(client, "order.sales_channel = 'web'")
    bad = client.post(f"{API}/load", json={"query": {**CATEGORY, "segments": ["order.webb"]}})
    assert bad.status_code == 400 and "order.web" in bad.json()["error"]
    bad = client.post("/v1/query", json={"metrics": ["revenue"], "segments": ["order.webb"]})
    assert bad.status_code == 404 and "order.web" in bad.json()["hint"]


@pytest.mark.parametrize("segment,needle", [
    ("{name: bad, filter: \"order.colour = 'red'\"}", "colour"),
    ("{name: bad, filter: \"order.status IN (SELECT status FROM orders)\"}", "subquery"),
    ("{name: status, filter: \"order.status = 'completed'\"}", "clashes"),
])
def test_segments_are_validated(tmp_path, segment, needle):
    from canon.compiler.compile import load_catalog
    from canon.compiler.errors import CatalogErrors

    project = copy_project(tmp_path / "project")
    add_segments(project / "semantic_models" / "orders.yml", f"  segments:\n    - {segment}\n")
    with pytest.raises(CatalogErrors) as error:
        load_catalog(project)
    text = str(error.value)
    assert needle in text and "orders.yml:" in text, text


def test_view_segments_are_validated(tmp_path):
    from canon.compiler.compile import load_catalog
    from canon.compiler.errors import CatalogErrors

    project = copy_project(tmp_path / "project")
    add_segments(project / "semantic_models" / "orders.yml", SEGMENTS)
    add_view_segments(project / "metrics" / "sales.yml", "sales", ["order.webb"])
    with pytest.raises(CatalogErrors) as error:
        load_catalog(project)
    text = str(error.value)
    assert "view 'sales': unknown segment 'order.webb'" in text and "order.web" in text and "sales.yml:" in text, text
