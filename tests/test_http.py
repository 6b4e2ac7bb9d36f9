"""The HTTP API, driven over real HTTP against `canon serve` in a subprocess."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest

from tests.support.servers import build_warehouse, cli_json, copy_project, serve


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    project = copy_project(root / "project", slow=True)
    warehouse = build_warehouse(root / "demo.duckdb")
    with serve(project, warehouse, "--query-timeout", "2", "--max-rows", "5000", "--reload-interval", "0") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield {"url": url, "client": client, "project": project, "warehouse": warehouse}


@pytest.fixture
def client(site):
    return site["client"]


def error_of(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "message", "location", "hint"}, body
    return body


# --- status and catalog ------------------------------------------------------------------------


def test_health_status_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    status = client.get("/v1/status").json()
    assert status["status"] == "ok" and status["load_errors"] == []
    assert status["warehouse"]["reachable"] is True and status["warehouse"]["dialect"] == "duckdb"
    assert status["catalog_version"] and status["catalog"]["metrics"] >= 20
    schema = client.get("/openapi.json").json()
    for path in ("/v1/metrics", "/v1/metrics/{name}", "/v1/dimensions", "/v1/dimensions/{ref}/values",
                 "/v1/query", "/v1/compile", "/healthz", "/v1/status", "/cubejs-api/v1/load",
                 "/cubejs-api/v1/meta", "/cubejs-api/v1/sql"):
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 200


def test_list_metrics_filters(client):
    everything = client.get("/v1/metrics").json()
    names = [m["name"] for m in everything["metrics"]]
    assert "revenue" in names and "cross_sell_score" in names and everything["count"] == len(names)
    finance = client.get("/v1/metrics", params={"tag": "finance"}).json()["metrics"]
    assert finance and all("finance" in m["tags"] for m in finance)
    verified = client.get("/v1/metrics", params={"tier": "verified"}).json()["metrics"]
    assert verified and all(m["tier"] == "verified" for m in verified)
    merch = client.get("/v1/metrics", params={"owner": "merchandising"}).json()["metrics"]
    assert {"cross_sell_score", "product_purchase_frequency"} <= {m["name"] for m in merch}
    found = client.get("/v1/metrics", params={"q": "cross-sell score"}).json()["metrics"]
    assert "cross_sell_score" in {m["name"] for m in found}
    assert client.get("/v1/metrics", params={"q": "zzzz-nothing"}).json()["metrics"] == []
    body = error_of(client.get("/v1/metrics", params={"tier": "gold"}), 422)
    assert "tier" in body["location"]


def test_metric_detail(client):
    body = client.get("/v1/metrics/aov").json()
    assert body["owner"] == "sales-analytics" and body["tier"] == "certified"
    assert body["definition"]["numerator"] == "revenue"
    assert set(body["depends_on"]["metrics"]) == {"revenue", "order_count"}
    assert "order_item.line_revenue" in body["depends_on"]["measures"]
    refs = {d["ref"] for d in body["dimensions"]}
    assert {"product.category", "customer.segment", "metric_time"} <= refs
    assert "SELECT" in body["example"]["sql"] and "sales" in body["views"]
    affinity = client.get("/v1/metrics/cross_sell_score").json()
    assert "antecedent.category" in {d["ref"] for d in affinity["dimensions"]}
    assert affinity["example"]["request"]["dimensions"] == ["antecedent.product_name", "consequent.product_name"]
    err = error_of(client.get("/v1/metrics/revenu"), 404)
    assert "revenue" in err["hint"]


def test_dimensions_for_metrics(client):
    body = client.get("/v1/dimensions", params={"metrics": "revenue,ad_spend"}).json()
    refs = {d["ref"] for d in body["dimensions"]}
    assert "campaign.channel" in refs and "metric_time" in refs
    assert "product.category" not in refs  # ad spend cannot be split by product
    alone = {d["ref"] for d in client.get("/v1/dimensions", params={"metrics": "revenue"}).json()["dimensions"]}
    assert "product.category" in alone
    assert "ad_spend" in error_of(client.get("/v1/dimensions", params={"metrics": "revenue,ad_spendd"}), 404)["hint"]
    assert "metrics" in error_of(client.get("/v1/dimensions"), 422)["location"]


def test_dimension_values(client):
    body = client.get("/v1/dimensions/order.status/values").json()
    assert body["values"] == ["cancelled", "completed", "returned"] and body["truncated"] is False
    months = client.get("/v1/dimensions/order.ordered_at.month/values", params={"limit": 3}).json()
    assert months["values"] == ["2024-01-01", "2024-02-01", "2024-03-01"] and months["truncated"] is True
    assert client.get("/v1/dimensions/antecedent.category/values").json()["values"]
    error_of(client.get("/v1/dimensions/metric_time/values"), 400)
    assert "product.category" in error_of(client.get("/v1/dimensions/product.categry/values"), 404)["hint"]
    error_of(client.get("/v1/dimensions/order.status/values", params={"limit": 0}), 422)
    error_of(client.get("/v1/dimensions/order.status/values", params={"limit": "x"}), 422)


# --- queries ----------------------------------------------------------------------------------------

CLI_CASES = [
    ({"metrics": ["revenue"], "dimensions": ["product.category"]}, ["-m", "revenue", "-b", "product.category"]),
    ({"metrics": ["revenue", "ad_spend"], "dimensions": ["metric_time.month"], "start": "2025-01-01", "end": "2025-06-30"},
     ["-m", "revenue", "-m", "ad_spend", "-b", "metric_time.month", "--start", "2025-01-01", "--end", "2025-06-30"]),
    ({"metrics": ["aov", "order_count"], "dimensions": ["customer.segment"], "where": "customer.country_code IN ('US', 'GB')",
      "order": "-aov"},
     ["-m", "aov", "-m", "order_count", "-b", "customer.segment", "-w", "customer.country_code IN ('US', 'GB')", "-o", "-aov"]),
    ({"metrics": ["cross_sell_score"], "dimensions": ["antecedent.category", "consequent.category"],
      "order": ["-cross_sell_score"], "limit": 5},
     ["-m", "cross_sell_score", "-b", "antecedent.category", "-b", "consequent.category", "-o", "-cross_sell_score", "-l", "5"]),
    ({"metrics": ["cac"], "dimensions": ["campaign.channel"]}, ["-m", "cac", "-b", "campaign.channel"]),
]


@pytest.mark.slow  # runs the canon CLI as a subprocess
@pytest.mark.parametrize("body,args", CLI_CASES, ids=[c[0]["metrics"][0] for c in CLI_CASES])
def test_query_matches_cli(site, client, body, args):
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert list(got)[:4] == ["columns", "rows", "sql", "elapsed_ms"]
    expected = cli_json(site["project"], site["warehouse"], *args)
    assert got["columns"] == expected["columns"]
    assert got["rows"] == expected["rows"]
    # without a limit both paths cap rows, one row over: the server at --max-rows 5000, the CLI at canon.yml's
    # limits.max_rows (100,000); a request's own limit is kept as it is
    assert got["sql"].removesuffix(" LIMIT 5001") == expected["sql"].removesuffix(" LIMIT 100001")
    assert ("limit" in body) == (got["sql"] == expected["sql"])
    for row in got["rows"]:
        for value, column in zip(row, got["columns"]):
            if column["type"] == "number" and value is not None:
                assert isinstance(value, (int, float))


def test_structured_filters_equal_where(client):
    base = {"metrics": ["revenue"], "dimensions": ["product.category"]}
    pairs = [
        ([{"field": "customer.country_code", "op": "equals", "values": ["US", "GB"]}],
         "customer.country_code IN ('US', 'GB')"),
        ([{"field": "product.tier", "op": "notEquals", "values": ["entry"]}],
         "product.tier <> 'entry' OR product.tier IS NULL"),
        ([{"field": "product.category", "op": "startsWith", "values": ["Co"]}], "product.category ILIKE 'Co%'"),
        ([{"field": "order_item.quantity", "op": "gte", "values": ["2"]}], "order_item.quantity >= 2"),
        ([{"field": "order.ordered_at", "op": "inDateRange", "values": ["2025-01-01", "2025-03-31"]}],
         "order.ordered_at >= CAST('2025-01-01' AS DATE) AND order.ordered_at < CAST('2025-04-01' AS DATE)"),
        ([{"field": "order.campaign_id", "op": "set"}], "order.campaign_id IS NOT NULL"),
    ]
    for filters, where in pairs:
        a = client.post("/v1/query", json={**base, "filters": filters})
        b = client.post("/v1/query", json={**base, "where": where})
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.json()["rows"] == b.json()["rows"] and a.json()["rows"], filters


def test_every_filter_operator_answers(client):
    cases = {
        "equals": ("customer.segment", ["enterprise"]), "notEquals": ("customer.segment", ["enterprise"]),
        "contains": ("product.product_name", ["a"]), "notContains": ("product.product_name", ["a"]),
        "startsWith": ("product.brand", ["A"]), "notStartsWith": ("product.brand", ["A"]),
        "endsWith": ("product.brand", ["o"]), "notEndsWith": ("product.brand", ["o"]),
        "gt": ("order_item.quantity", [1]), "gte": ("order_item.quantity", [1.5]), "lt": ("order_item.quantity", ["3"]),
        "lte": ("order_item.quantity", [3]), "set": ("order.campaign_id", []), "notSet": ("order.campaign_id", []),
        "inDateRange": ("metric_time", ["2025-01-01", "2025-01-31T23:59:59.999"]),
        "notInDateRange": ("order.ordered_at", ["2025-01-01", "2025-12-31"]),
        "beforeDate": ("order.ordered_at", ["2025-01-01"]), "beforeOrOnDate": ("order.ordered_at", ["2025-01-01"]),
        "afterDate": ("order.ordered_at", ["2025-06-30T12:00:00"]), "afterOrOnDate": ("order.ordered_at", ["2025-06-30"]),
    }
    for op, (field, values) in cases.items():
        r = client.post("/v1/query", json={"metrics": ["revenue"], "filters": [{"field": field, "op": op, "values": values}]})
        assert r.status_code == 200, (op, r.text)
        assert r.json()["rows"][0][0] is not None, op


def test_injection_attempts_stay_literal(client):
    evil = "x' OR 1=1 --"
    r = client.post("/v1/query", json={"metrics": ["revenue"], "filters": [{"field": "product.category", "op": "equals", "values": [evil]}]})
    assert r.status_code == 200 and r.json()["rows"] == [[None]]
    assert "'x'' OR 1=1 --'" in r.json()["sql"]
    r = client.post("/v1/query", json={"metrics": ["revenue"], "filters": [{"field": "product.category", "op": "contains", "values": ["%'; DROP TABLE orders; --"]}]})
    assert r.status_code == 200
    for where in ["1=1; DROP TABLE orders", "product.category IN (SELECT * FROM read_csv('/etc/passwd'))",
                  "product.category = 'a' -- comment", "read_csv('/etc/passwd') IS NULL", "product.category = (SELECT 1)"]:
        error_of(client.post("/v1/query", json={"metrics": ["revenue"], "where": where}), 400)
    for field in ["product.category; DROP TABLE x", "1=1", "product.category'--"]:
        body = error_of(client.post("/v1/query", json={"metrics": ["revenue"], "filters": [{"field": field, "op": "equals", "values": ["a"]}]}), 400)
        assert "filters[0]" in body["location"]
    assert client.get("/v1/status").json()["warehouse"]["reachable"]


@pytest.mark.parametrize("body,status,field", [
    ({"metrics": ["revenue"], "bogus": 1}, 422, "bogus"),
    ({"metrics": "revenue"}, 422, "metrics"),
    ({"metrics": []}, 422, "metrics"),  # no metric and no dimension
    ({}, 422, "metrics"),
    ({"metrics": ["revenue"], "limit": "ten"}, 422, "limit"),
    ({"metrics": ["revenue"], "limit": -1}, 422, "limit"),
    ({"metrics": ["revenue"], "limit": 10**12}, 400, "limit"),
    ({"metrics": ["revenue"], "limit": 6000}, 400, "limit"),
    ({"metrics": ["revenue"], "offset": -5}, 422, "offset"),
    ({"metrics": ["revenue"], "filters": [{"field": "product.category", "op": "like", "values": ["a"]}]}, 422, "filters[0].op"),
    ({"metrics": ["revenue"], "filters": [{"field": "product.category", "op": "equals", "values": [{"a": 1}]}]}, 422, "filters[0].values"),
    ({"metrics": ["revenue"], "filters": [{"field": "order_item.quantity", "op": "gt", "values": ["many"]}]}, 400, "filters[0].values"),
    ({"metrics": ["revenue"], "filters": [{"field": "product.category", "op": "gt"}]}, 400, "filters[0].values"),
    ({"metrics": ["revenue"], "filters": [{"field": "product.category", "op": "inDateRange", "values": ["2025-01-01", "2025-02-01"]}]}, 400, "filters[0].operator"),
    ({"metrics": ["revenue"], "start": "yesterday-ish"}, 400, None),
    ({"metrics": ["revenue"], "dimensions": ["product.categori"]}, 404, None),
    ({"metrics": ["revenue", "revenue"]}, 400, None),
    ({"metrics": ["revenue"], "order": ["-nothing"]}, 404, None),
])
def test_bad_queries_are_4xx_naming_the_field(client, body, status, field):
    err = error_of(client.post("/v1/query", json=body), status)
    if field:
        assert field in (err["location"] or "") + err["message"], err
    assert err["message"]


def test_unknown_metric_says_did_you_mean(client):
    err = error_of(client.post("/v1/query", json={"metrics": ["revnue"]}), 404)
    assert "revnue" in err["message"] and "revenue" in err["hint"]


def test_malformed_json_and_wrong_types(client, site):
    for raw in ['{"metrics": ["revenue"', "not json", '["revenue"]', "null", ""]:
        r = client.post("/v1/query", content=raw, headers={"content-type": "application/json"})
        assert r.status_code in (400, 422), (raw, r.text)
        assert r.json()["message"]
    r = httpx.post(site["url"] + "/v1/query", content='{"metrics": ["revenue"]}',
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415  # a form post is refused (CSRF: server/http_guard.py), whatever its body
    assert client.get("/v1/query").status_code == 405
    assert client.get("/v1/nowhere").json()["code"] == "not_found"


def test_row_limit_truncates_and_flags(client):
    r = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["order.order_id", "product.product_id"]})
    body = r.json()
    assert r.status_code == 200 and body["truncated"] is True and len(body["rows"]) == 5000
    assert any("5,000" in w for w in body["warnings"])
    small = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"]}).json()
    assert "truncated" not in small


def test_compile(client):
    for dialect in ("duckdb", "postgres", "snowflake", "bigquery", "spark", "trino", "clickhouse"):
        r = client.post("/v1/compile", params={"dialect": dialect}, json={"metrics": ["revenue"], "dimensions": ["metric_time.month"]})
        assert r.status_code == 200, (dialect, r.text)
        assert r.json()["dialect"] == dialect and "SELECT" in r.json()["sql"]
    body = client.post("/v1/compile", json={"metrics": ["revenue"], "dialect": "postgres"}).json()
    assert body["dialect"] == "postgres" and body["columns"] == [{"name": "revenue", "type": "number"}]
    assert "postgres" in error_of(client.post("/v1/compile", json={"metrics": ["revenue"], "dialect": "postgress"}), 400)["hint"]


# --- load ---------------------------------------------------------------------------------------------


def _dashboard_queries():
    dims = ["product.category", "customer.segment", "order.sales_channel", "metric_time.month", "customer.country_code"]
    metrics = ["revenue", "order_count", "aov", "units_sold", "buyer_count"]
    return [{"metrics": [metrics[i % 5]], "dimensions": [dims[(i // 5) % 5]], "limit": 50 + i} for i in range(50)]


@pytest.mark.slow  # fifty clients at once
def test_fifty_concurrent_clients(site):
    queries = _dashboard_queries()
    with httpx.Client(base_url=site["url"], timeout=60) as serial:
        expected = [serial.post("/v1/query", json=q).json()["rows"] for q in queries]

    barrier = threading.Barrier(len(queries))

    def one(i):
        with httpx.Client(base_url=site["url"], timeout=60) as c:
            barrier.wait()
            r = c.post("/v1/query", json=queries[i])
            return i, r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(len(queries)) as pool:
        results = list(pool.map(one, range(len(queries))))
    for i, status, body in results:
        assert status == 200, body
        assert body["rows"] == expected[i], queries[i]


@pytest.mark.slow  # waits for the 2 s query timeout
def test_slow_query_times_out_without_blocking_catalog(site):
    outcome = {}

    def slow():
        with httpx.Client(base_url=site["url"], timeout=60) as c:
            started = time.monotonic()
            outcome["response"] = c.post("/v1/query", json={"metrics": ["slow_checksum"]})
            outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    with httpx.Client(base_url=site["url"], timeout=10) as c:
        for _ in range(5):
            started = time.monotonic()
            assert c.get("/v1/metrics").status_code == 200
            assert c.get("/v1/metrics/revenue").status_code == 200
            assert time.monotonic() - started < 0.5
        fast = c.post("/v1/query", json={"metrics": ["revenue"]})
        assert fast.status_code == 200
    thread.join(30)
    err = error_of(outcome["response"], 504)
    assert err["code"] == "query_timeout" and "2 s" in err["message"]
    assert outcome["seconds"] < 10


@pytest.mark.slow  # a server of its own
def test_warehouse_down_is_503(tmp_path):
    project = copy_project(tmp_path / "project")
    with serve(project, tmp_path / "missing.duckdb", "--reload-interval", "0") as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/v1/metrics").status_code == 200
            err = error_of(c.post("/v1/query", json={"metrics": ["revenue"]}), 503)
            assert "missing.duckdb" in err["message"]
            assert error_of(c.post("/v1/query", json={"metrics": ["revenu"]}), 404)  # bad input still 4xx
            status = c.get("/v1/status").json()
            assert status["status"] == "degraded" and status["warehouse"]["reachable"] is False


# --- hot reload -------------------------------------------------------------------------------------------


def _wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow  # a server of its own, waiting for its reload loop four times
def test_hot_reload_and_broken_yaml(tmp_path, site):
    project = copy_project(tmp_path / "project")
    sales = project / "metrics" / "sales.yml"
    with serve(project, site["warehouse"]) as url, httpx.Client(base_url=url, timeout=30) as c:
        before = c.get("/v1/status").json()["catalog_version"]
        text = sales.read_text()
        assert "Net revenue of completed orders" in text
        sales.write_text(text.replace("Net revenue of completed orders", "Hot reloaded revenue"))
        assert _wait_for(lambda: "Hot reloaded" in c.get("/v1/metrics/revenue").json()["description"])
        status = c.get("/v1/status").json()
        assert status["catalog_version"] != before and status["catalog"]["reloads"] == 1
        version = status["catalog_version"]

        sales.write_text(sales.read_text().replace("measure: order_item.line_revenue", "measure: order_item.no_such_measure"))
        assert _wait_for(lambda: c.get("/v1/status").json()["load_errors"])
        status = c.get("/v1/status").json()
        assert status["status"] == "degraded" and status["catalog_version"] == version
        assert any("no_such_measure" in e["message"] + (e["hint"] or "") for e in status["load_errors"])
        assert any("sales.yml" in (e["location"] or "") for e in status["load_errors"])
        r = c.post("/v1/query", json={"metrics": ["revenue"]})  # the previous catalog keeps serving
        assert r.status_code == 200 and r.json()["rows"][0][0] > 0

        sales.write_text("metrics: [this is: not valid")
        assert _wait_for(lambda: any("sales.yml" in (e["location"] or "") + e["message"]
                                     for e in c.get("/v1/status").json()["load_errors"]))
        assert c.get("/v1/metrics/revenue").status_code == 200

        sales.write_text(text)
        assert _wait_for(lambda: not c.get("/v1/status").json()["load_errors"])
        assert "Net revenue" in c.get("/v1/metrics/revenue").json()["description"]
