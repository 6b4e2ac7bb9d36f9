"""The Cube-compatible REST API: hand-built requests, and Cube's own JavaScript client, unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import httpx
import pytest

from canon.server.structured_filters import date_range
from tests.support.servers import build_warehouse, cli_json, copy_project, serve

CLIENT_DIR = Path(__file__).parent / "cube_client"
API = "/cubejs-api/v1"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("cube")
    project = copy_project(root / "project")
    warehouse = build_warehouse(root / "demo.duckdb")
    with serve(project, warehouse, "--reload-interval", "0", "--max-rows", "20000") as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield {"url": url, "client": client, "project": project, "warehouse": warehouse}


@pytest.fixture
def client(site):
    return site["client"]


def load(client, query, method="POST"):
    if method == "GET":
        return client.get(f"{API}/load", params={"query": json.dumps(query)})
    return client.post(f"{API}/load", json={"query": query})


def test_meta_lists_every_metric_and_dimension(client):
    meta = client.get(f"{API}/meta").json()
    cubes = {c["name"]: c for c in meta["cubes"]}
    catalog = client.get("/v1/metrics").json()["metrics"]
    measures = {m["name"] for m in cubes["metrics"]["measures"]}
    assert measures == {f"metrics.{m['name']}" for m in catalog}
    dims = {d["name"]: d for c in meta["cubes"] for d in c["dimensions"]}
    assert dims["product.category"]["type"] == "string"
    assert dims["order.ordered_at"]["type"] == "time"
    assert dims["order.is_attributed"]["type"] == "boolean"
    assert dims["product.list_price"]["type"] == "number"
    assert dims["sales.product_category"]["type"] == "string" and dims["sales.metric_time"]["type"] == "time"
    assert cubes["sales"]["type"] == "view" and "sales.revenue" in {m["name"] for m in cubes["sales"]["measures"]}
    for cube in meta["cubes"]:
        assert cube["segments"] == [] and cube["title"]
        for member in cube["measures"] + cube["dimensions"]:
            assert member["name"].startswith(cube["name"] + ".") and member["title"] and member["type"]


def test_load_shape_and_numbers_match_v1_query(client):
    query = {"measures": ["sales.revenue", "sales.order_count"], "dimensions": ["sales.product_category"],
             "timeDimensions": [{"dimension": "sales.metric_time", "granularity": "month",
                                 "dateRange": ["2025-01-01", "2025-03-31"]}],
             "order": [["sales.product_category", "asc"], ["sales.metric_time", "asc"]], "limit": 500}
    for method in ("GET", "POST"):
        response = load(client, query, method)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) >= {"query", "data", "annotation", "lastRefreshTime"}
        assert body["query"]["timeDimensions"][0]["dateRange"] == ["2025-01-01T00:00:00.000", "2025-03-31T23:59:59.999"]
        assert set(body["annotation"]) == {"measures", "dimensions", "segments", "timeDimensions"}
        assert body["annotation"]["timeDimensions"]["sales.metric_time.month"]["type"] == "time"
        row = body["data"][0]
        assert set(row) == {"sales.product_category", "sales.metric_time.month", "sales.metric_time",
                            "sales.revenue", "sales.order_count"}
        assert row["sales.metric_time.month"] == "2025-01-01T00:00:00.000"
    plain = client.post("/v1/query", json={"metrics": ["revenue", "order_count"],
                                           "dimensions": ["product.category", "metric_time.month"],
                                           "start": "2025-01-01", "end": "2025-03-31", "limit": 500}).json()
    cube_rows = [[r["sales.product_category"], r["sales.metric_time.month"][:10], r["sales.revenue"], r["sales.order_count"]]
                 for r in body["data"]]
    assert cube_rows == plain["rows"]


def test_timezone_shifts_days_like_v1_query(client):
    """Cube's `timezone`: stored UTC times fall into that zone's days, and the date range is read there."""
    query = {"measures": ["metrics.order_count"], "timezone": "America/Los_Angeles",
             "timeDimensions": [{"dimension": "metrics.metric_time", "granularity": "day",
                                 "dateRange": ["2025-03-08", "2025-03-10"]}]}
    body = load(client, query).json()
    assert body["query"]["timezone"] == "America/Los_Angeles"
    cube = [[r["metrics.metric_time.day"][:10], r["metrics.order_count"]] for r in body["data"]]
    plain = client.post("/v1/query", json={"metrics": ["order_count"], "dimensions": ["metric_time.day"],
                                           "start": "2025-03-08", "end": "2025-03-10",
                                           "timezone": "America/Los_Angeles"}).json()["rows"]
    utc = client.post("/v1/query", json={"metrics": ["order_count"], "dimensions": ["metric_time.day"],
                                         "start": "2025-03-08", "end": "2025-03-10"}).json()["rows"]
    assert cube == plain and [d for d, _ in cube] == ["2025-03-08", "2025-03-09", "2025-03-10"]
    assert plain != utc  # the zone moves orders between days (and across the DST change on the 9th)


def test_v1_query_takes_time_range_having_and_today(client):
    body = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"],
                                          "time_range": "this month", "today": "2025-06-15",
                                          "having": "revenue > 10000", "order": "-revenue"}).json()
    june = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"],
                                          "start": "2025-06-01", "end": "2025-06-30", "order": "-revenue"}).json()
    assert body["rows"] == [r for r in june["rows"] if r[1] > 10000] and 0 < len(body["rows"]) < len(june["rows"])


def test_multi_query_type_envelope(client):
    r = client.get(f"{API}/load", params={"query": json.dumps({"measures": ["metrics.revenue"]}), "queryType": "multi"})
    body = r.json()
    assert body["queryType"] == "regularQuery" and len(body["results"]) == 1 and body["pivotQuery"]["measures"]
    assert body["results"][0]["data"][0]["metrics.revenue"] > 0


def test_filters_nested_and_or_all_operators(client):
    base = {"measures": ["metrics.revenue"]}
    nested = {**base, "filters": [{"or": [
        {"member": "customer.country_code", "operator": "equals", "values": ["US"]},
        {"and": [{"member": "product.category", "operator": "contains", "values": ["o"]},
                 {"member": "order_item.quantity", "operator": "gte", "values": ["2"]}]}]}]}
    got = load(client, nested).json()["data"][0]["metrics.revenue"]
    where = "customer.country_code = 'US' OR (product.category ILIKE '%o%' AND order_item.quantity >= 2)"
    assert got == client.post("/v1/query", json={"metrics": ["revenue"], "where": where}).json()["rows"][0][0]
    operators = {
        "equals": ("customer.segment", ["enterprise"]), "notEquals": ("customer.segment", ["enterprise"]),
        "contains": ("product.product_name", ["a"]), "notContains": ("product.product_name", ["a"]),
        "startsWith": ("product.brand", ["A"]), "notStartsWith": ("product.brand", ["A"]),
        "endsWith": ("product.brand", ["o"]), "notEndsWith": ("product.brand", ["o"]),
        "gt": ("order_item.quantity", ["1"]), "gte": ("order_item.quantity", ["1"]),
        "lt": ("order_item.quantity", ["3"]), "lte": ("order_item.quantity", ["3"]),
        "set": ("order.campaign_id", []), "notSet": ("order.campaign_id", []),
        "inDateRange": ("order.ordered_at", ["2025-01-01", "2025-01-31"]),
        "notInDateRange": ("order.ordered_at", "last year"),
        "beforeDate": ("order.ordered_at", ["2025-01-01"]), "beforeOrOnDate": ("order.ordered_at", ["2025-01-01"]),
        "afterDate": ("order.ordered_at", ["2025-06-30"]), "afterOrOnDate": ("order.ordered_at", ["2025-06-30"]),
    }
    for op, (member, values) in operators.items():
        values = [values] if isinstance(values, str) else values
        r = load(client, {**base, "filters": [{"member": member, "operator": op, "values": values}]})
        assert r.status_code == 200, (op, r.text)


def test_relative_date_ranges():
    today = date(2025, 3, 12)  # a Wednesday
    def iso(pair):
        return [p.isoformat(sep=" ") for p in pair]
    assert iso(date_range("today", "d", today=today)) == ["2025-03-12 00:00:00", "2025-03-13 00:00:00"]
    assert iso(date_range("yesterday", "d", today=today)) == ["2025-03-11 00:00:00", "2025-03-12 00:00:00"]
    assert iso(date_range("last 7 days", "d", today=today)) == ["2025-03-05 00:00:00", "2025-03-12 00:00:00"]
    assert iso(date_range("last 28 days", "d", today=today)) == ["2025-02-12 00:00:00", "2025-03-12 00:00:00"]
    assert iso(date_range("this month", "d", today=today)) == ["2025-03-01 00:00:00", "2025-04-01 00:00:00"]
    assert iso(date_range("last month", "d", today=today)) == ["2025-02-01 00:00:00", "2025-03-01 00:00:00"]
    assert iso(date_range("this quarter", "d", today=today)) == ["2025-01-01 00:00:00", "2025-04-01 00:00:00"]
    assert iso(date_range("last quarter", "d", today=today)) == ["2024-10-01 00:00:00", "2025-01-01 00:00:00"]
    assert iso(date_range("this year", "d", today=today)) == ["2025-01-01 00:00:00", "2026-01-01 00:00:00"]
    assert iso(date_range("this week", "d", today=today)) == ["2025-03-10 00:00:00", "2025-03-17 00:00:00"]
    assert iso(date_range("last 2 months", "d", today=today)) == ["2025-01-01 00:00:00", "2025-03-01 00:00:00"]
    assert iso(date_range("from 2025-01-01 to 2025-01-31", "d", today=today)) == ["2025-01-01 00:00:00", "2025-02-01 00:00:00"]
    assert iso(date_range(["2025-01-01", "2025-01-31T12:00:00"], "d", today=today)) == ["2025-01-01 00:00:00", "2025-01-31 12:00:00.001000"]


def test_relative_range_in_query_is_normalized(client):
    body = load(client, {"measures": ["metrics.revenue"], "timeDimensions": [
        {"dimension": "metrics.metric_time", "dateRange": "last 7 days"}]}).json()
    start, end = body["query"]["timeDimensions"][0]["dateRange"]
    assert start.endswith("T00:00:00.000") and end.endswith("T23:59:59.999")
    sql = client.post(f"{API}/sql", json={"query": {"measures": ["metrics.revenue"], "timeDimensions": [
        {"dimension": "metrics.metric_time", "dateRange": "this month"}]}}).json()
    assert "ordered_at >= CAST(" in sql["sql"]["sql"][0] and sql["sql"]["sql"][1] == []


def test_order_forms_limit_offset_total(client):
    query = {"measures": ["metrics.revenue"], "dimensions": ["product.category"], "limit": 3}
    by_object = load(client, {**query, "order": {"metrics.revenue": "desc"}}).json()["data"]
    by_array = load(client, {**query, "order": [["metrics.revenue", "desc"]]}).json()["data"]
    assert by_object == by_array and by_object[0]["metrics.revenue"] >= by_object[1]["metrics.revenue"]
    page = load(client, {**query, "order": {"metrics.revenue": "desc"}, "offset": 1, "total": True}).json()
    assert page["data"][0] == by_object[1]
    everything = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"]}).json()
    assert page["total"] == len(everything["rows"])
    compact = load(client, {**query, "order": {"metrics.revenue": "desc"}, "responseFormat": "compact"}).json()
    assert compact["data"]["members"] == ["product.category", "metrics.revenue"]
    assert compact["data"]["dataset"][0] == [by_object[0]["product.category"], by_object[0]["metrics.revenue"]]


@pytest.mark.parametrize("query,status,needle", [
    ({"measures": ["metrics.revenue"], "segments": ["sales.big"]}, 400, "segment"),
    ({"measures": ["metrics.revenue"], "timezone": "Mars/Olympus_Mons"}, 400, "time zone"),
    ({"measures": ["metrics.revenu"]}, 400, "metrics.revenue"),  # Cube: 400 for an unknown member
    ({"measures": ["product.category"]}, 400, "dimension"),
    ({"measures": ["metrics.revenue"], "bogus": 1}, 400, "bogus"),
    ({"measures": ["metrics.revenue"], "limit": 10**9}, 400, "limit"),
    ({"measures": ["metrics.revenue"], "limit": "ten"}, 400, "limit"),
    ({"measures": ["metrics.revenue"], "timeDimensions": [{"dimension": "metrics.metric_time", "granularity": "fortnight"}]}, 400, "fortnight"),
    ({"measures": ["metrics.revenue"], "timeDimensions": [{"dimension": "metrics.metric_time", "dateRange": "next blue moon"}]}, 400, "date range"),
    ({"measures": ["metrics.revenue"], "filters": [{"member": "product.category", "operator": "like", "values": ["a"]}]}, 400, "operator"),
    ({"measures": ["metrics.revenue"], "filters": [{"member": "metrics.revenue", "operator": "contains", "values": ["1"]}]}, 400, "measures"),
    ({"measures": ["metrics.revenue"], "filters": [{"or": [{"member": "metrics.revenue", "operator": "gt", "values": [1]},
                                                          {"member": "product.category", "operator": "set"}]}]}, 400, "mixes"),
    ({"measures": ["metrics.revenue"], "ungrouped": True}, 400, "ungrouped"),
    ({"segments": []}, 400, "no measure and no dimension"),
    ({"measures": ["metrics.revenue"], "responseFormat": "xml"}, 400, "responseFormat"),
    ({"measures": ["metrics.revenue"], "filters": [{"or": []}]}, 400, "or"),
    ({"measures": ["metrics.revenue"], "order": {"product.category": "asc"}}, 400, "order"),
    ({"measures": ["metrics.revenue"], "order": {"metrics.revenue": "up"}}, 400, "order"),
    ([], 400, "1 to 16"),
    ("not a query", 400, "JSON"),
])
def test_cube_errors(client, query, status, needle):
    response = client.post(f"{API}/load", json={"query": query})
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert needle.lower() in body["error"].lower(), body
    assert body["code"] and body["message"]


def test_cube_load_without_query_and_bad_body(client):
    assert client.get(f"{API}/load").status_code == 400
    assert client.post(f"{API}/load", content="{oops", headers={"content-type": "application/json"}).status_code == 400
    assert client.get(f"{API}/load", params={"query": "{oops"}).status_code == 400


# --- Cube's own client ----------------------------------------------------------------------------------

CLIENT_QUERIES = [
    {"measures": ["sales.revenue", "sales.order_count"], "dimensions": ["sales.product_category"],
     "order": {"sales.revenue": "desc"}, "limit": 5},
    {"measures": ["metrics.revenue", "metrics.ad_spend"],
     "timeDimensions": [{"dimension": "metrics.metric_time", "granularity": "month", "dateRange": ["2025-01-01", "2025-06-30"]}]},
    {"measures": ["marketing.cac"], "dimensions": ["marketing.campaign_channel"],
     "filters": [{"member": "marketing.campaign_channel", "operator": "notEquals", "values": ["email"]}]},
    {"measures": ["sales.nonexistent"]},
]
CLI_ARGS = [
    ["-m", "revenue", "-m", "order_count", "-b", "product.category", "-o", "-revenue", "-l", "5"],
    ["-m", "revenue", "-m", "ad_spend", "-b", "metric_time.month", "--start", "2025-01-01", "--end", "2025-06-30"],
    ["-m", "cac", "-b", "campaign.channel", "-w", "campaign.channel <> 'email' OR campaign.channel IS NULL"],
]


def _node_client() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed to run Cube's JavaScript client (.ci/run's machine has them)")
    if not (CLIENT_DIR / "node_modules" / "@cubejs-client" / "core").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(CLIENT_DIR)],
                       check=True, capture_output=True, timeout=600)
    return CLIENT_DIR / "client.js"


@pytest.mark.node
def test_real_cube_client(site):
    script = _node_client()
    out = subprocess.run(["node", str(script), site["url"] + API, json.dumps(CLIENT_QUERIES)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)

    # meta(): every metric is discoverable as a measure, every dimension as a dimension
    catalog = {m["name"] for m in site["client"].get("/v1/metrics").json()["metrics"]}
    assert {f"metrics.{n}" for n in catalog} <= set(result["meta"]["measures"])
    assert {"product.category", "customer.segment", "sales.product_category", "metrics.metric_time"} <= set(result["meta"]["dimensions"])
    assert "order.ordered_at" in result["meta"]["timeDimensions"]
    assert result["meta"]["revenue"]["type"] == "number" and result["meta"]["revenue"]["title"]
    assert "contains" in result["meta"]["categoryOperators"]

    by_category, by_month, cac, bad = result["results"]
    # load(): the same numbers as POST /v1/query and the CLI
    for i, (got, args) in enumerate(zip((by_category, by_month, cac), CLI_ARGS)):
        assert "error" not in got, got
        expected = cli_json(site["project"], site["warehouse"], *args)
        names = [c["name"] for c in expected["columns"]]
        members = list(got["annotation"]["dimensions"]) + [k for k in got["annotation"]["timeDimensions"] if k.count(".") == 2] \
            + list(got["annotation"]["measures"])
        rows = [[row[m][:10] if isinstance(row[m], str) and "T00:00:00" in row[m] else row[m] for m in members]
                for row in got["rawData"]]
        if i == 2:  # no explicit order: compare as sets
            assert sorted(map(json.dumps, rows)) == sorted(map(json.dumps, expected["rows"]))
        else:
            assert rows == expected["rows"], (names, rows[:3], expected["rows"][:3])
        assert "SELECT" in got["sql"]
    assert by_category["seriesNames"] == ["sales.revenue", "sales.order_count"]
    assert len(by_month["chartPivot"]) == 6 and by_month["chartPivot"][0]["x"].startswith("2025-01-01")
    api_rows = site["client"].post("/v1/query", json={"metrics": ["revenue", "order_count"], "dimensions": ["product.category"],
                                                      "order": ["-revenue"], "limit": 5}).json()["rows"]
    assert [[r["sales.product_category"], r["sales.revenue"], r["sales.order_count"]] for r in by_category["tablePivot"]] == api_rows
    # errors reach the client as RequestError with the message and status
    assert bad["status"] == 400 and "sales.nonexistent" in bad["error"]


def _run_node(script: str, *args: str, timeout: float = 180) -> dict:
    _node_client()
    out = subprocess.run(["node", str(CLIENT_DIR / script), *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.node
def test_cube_client_every_method(site):
    """CubeApi (meta, load in every format and query type, sql, dryRun, subscribe), ResultSet (pivots,
    drillDown, decompose, totalRows) and Meta, from Node, unchanged; the numbers equal POST /v1/query."""
    result = _run_node("parity.js", site["url"] + API)
    failed = [c for c in result["calls"] if not c["ok"]]
    assert not failed, failed
    assert len(result["calls"]) == 18
    v, client = result["values"], site["client"]

    monthly = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["metric_time.month", "product.category"],
                                             "start": "2025-01-01", "end": "2025-03-31",
                                             "order": ["metric_time.month", "product.category"]}).json()["rows"]
    assert [[r["metrics.metric_time.month"][:10], r["product.category"], r["metrics.revenue"]] for r in v["load"]] == monthly
    assert len(v["resultSet.pivots"]["chartPivot"]) == 3 and v["resultSet.pivots"]["decompose"] == 1
    by_category = client.post("/v1/query", json={"metrics": ["revenue", "order_count"], "dimensions": ["product.category"],
                                                 "order": ["product.category"]}).json()["rows"]
    as_rows = [[r["sales.product_category"], r["sales.revenue"], r["sales.order_count"]] for r in v["load.default"]]
    assert as_rows == by_category
    assert v["load.columnar"] == v["load.compact"] == v["load.default"] == v["load.castNumerics"]
    assert v["load.total"] == len(by_category)
    assert v["subscribe"] == len(by_category)

    drill = v["resultSet.drillDown"]
    assert drill["query"]["filters"][0] == {"member": "metrics.revenue", "operator": "measureFilter"}
    dims = drill["query"]["dimensions"]
    canon_dims = [d for d in dims]  # model cube members are Canon references
    want = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": canon_dims, "start": "2025-01-01",
                                          "end": "2025-01-31", "where": "product.category = 'Audio'",
                                          "having": "revenue IS NOT NULL", "order": ["-revenue"]}).json()["rows"]
    assert sorted(json.dumps([r[d] for d in dims]) for r in drill["rows"]) == sorted(json.dumps(r[:-1]) for r in want)

    compare = v["load.compareDateRange"]["decompose"]
    assert len(compare) == 2 and [r["metrics.revenue"] for r in compare[0]] == [r[1] for r in client.post(
        "/v1/query", json={"metrics": ["revenue"], "dimensions": ["metric_time.month"], "start": "2025-01-01",
                           "end": "2025-02-28"}).json()["rows"]]
    blend = v["load.blending"]
    assert blend["series"] == ["metrics.revenue", "metrics.ad_spend"] and len(blend["chart"]) == 3
    assert v["load.relativeRanges"][0] == ["2025-12-24T00:00:00.000", "2025-12-31T23:59:59.999"]
    assert "SELECT" in v["sql"]["sql"] and v["dryRun"]["queryOrder"]
    assert v["errors.unknownMember"]["status"] == 400 and "did you mean" in v["errors.unknownMember"]["message"]
    assert v["meta.onlyViews"] and set(v["meta.onlyViews"]) == {"view"}


@pytest.mark.node
@pytest.mark.slow
def test_cube_client_continue_wait(tmp_path):
    """A slow query: the server answers "Continue wait" (HTTP 200), the JS client polls the same query
    again (its progressCallback sees each wait), until the query's time cap ends it with a 504."""
    project = copy_project(tmp_path / "project", slow=True)
    warehouse = build_warehouse(tmp_path / "demo.duckdb")
    env = {"CANON_CUBE_CONTINUE_WAIT_S": "0.3"}
    with serve(project, warehouse, "--reload-interval", "0", "--query-timeout", "2", env=env) as url:
        result = _run_node("parity.js", url + API, "continue-wait", timeout=120)
        outcome = result["values"]["load.continueWait"]
        assert outcome["progress"] >= 3 and outcome["status"] == 504, outcome
        # the job ended with the time cap: a fresh request starts over and waits again
        with httpx.Client(base_url=url, timeout=30) as client:
            first = client.get(f"{API}/load", params={"query": json.dumps({"measures": ["metrics.slow_checksum"]})})
            assert first.status_code == 200 and first.json() == {"error": "Continue wait"}


# --- Python clients from the package index -------------------------------------------------------------


def test_python_client_cube_http(site):
    """`cube-http-client` (pydantic models of Cube's answers): meta, load, sql."""
    from cube_http import Client

    cube = Client({"url": site["url"] + "/cubejs-api", "token": "canon-test-token", "timeout": 60})
    meta = cube.v1.meta()
    assert "metrics.revenue" in {m.name for c in meta.cubes for m in c.measures}
    query = {"measures": ["metrics.revenue"], "dimensions": ["product.category"], "order": {"product.category": "asc"}}
    loaded = cube.v1.load({"query": query})
    want = site["client"].post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"],
                                                  "order": ["product.category"]}).json()["rows"]
    assert [[r["product.category"], r["metrics.revenue"]] for r in loaded.results[0].data] == want
    sql = cube.v1.sql({"query": query})
    assert "SELECT" in sql.sql.sql[0] and sql.sql.order == {"product.category": "asc"} and sql.sql.data_source == "default"


def test_python_client_cubejs_client_python(site):
    """`cubejs-client-python` (a port of the JS client): meta, load (default and columnar), sql, dry_run."""
    from cubejs_client import cube

    client = cube("canon-test-token", api_url=site["url"] + API)
    assert client.meta().resolve_member("sales.revenue", "measures")["title"] == "Sales Revenue"
    query = {"measures": ["sales.revenue"], "dimensions": ["sales.product_category"], "order": {"sales.product_category": "asc"}}
    default = client.load(query).raw_data()
    assert client.load(query, response_format="columnar").raw_data() == default
    want = site["client"].post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"],
                                                  "order": ["product.category"]}).json()["rows"]
    assert [[r["sales.product_category"], r["sales.revenue"]] for r in default] == want
    assert "SELECT" in client.sql(query).sql()
    dry = client.dry_run(query)
    assert dry["queryType"] == "regularQuery" and dry["normalizedQueries"][0]["measures"] == ["sales.revenue"]
    assert client.readyz().healthy and client.livez().healthy


def test_meta_format_from_the_catalog(client):
    """A metric's `format` reaches Cube's /meta (clients format currency and percent values by it)."""
    measures = {m["name"]: m for c in client.get(f"{API}/meta").json()["cubes"] for m in c["measures"]}
    assert measures["metrics.revenue"]["format"] == "currency"
    assert measures["metrics.ctr"]["format"] == "percent"
    assert "format" not in measures["metrics.order_count"]
    listed = {m["name"]: m for m in client.get("/v1/metrics").json()["metrics"]}
    assert listed["revenue"]["format"] == "currency" and listed["order_count"]["format"] is None
