"""The HTTP front door (server/http_guard.py) and the runtime's request-shape limits (server/runtime/limits.py).

In process (Starlette's test client) for the answers; a real uvicorn server in a thread for what only a
socket shows: a 3 MB body refused while a cheap request answers at once, and a 500 that keeps the
keep-alive connection.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from canon.compiler.errors import ConfigError
from canon.compiler.request import QueryRequest
from canon.server.http_guard import GuardSettings, json_depth
from canon.server.runtime.limits import Limits
from tests.support.servers import build_warehouse, copy_project, free_port


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    project = copy_project(root / "project")
    warehouse = build_warehouse(root / "demo.duckdb", scale=0.05)
    return project, warehouse


@pytest.fixture(scope="module")
def app(site):
    from canon.server.http_api import create_app

    app = create_app(site[0], str(site[1]), reload_interval_s=0)

    @app.get("/test-only/boom", include_in_schema=False)
    async def boom():  # an internal fault on purpose
        raise RuntimeError("boom")

    return app


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def error_of(response, status, code=None):
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["message"] and set(body) >= {"code", "message", "location", "hint"}, body
    if code:
        assert body["code"] == code, body
    return body


# --- CSRF: JSON content type ------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "text/json", "application/jsonx"])
def test_non_json_posts_are_415(client, content_type):
    for path in ("/v1/query", "/v1/compile", "/v1/recommendations/feedback", "/v1/recommendations/refresh",
                 "/cubejs-api/v1/load"):
        body = error_of(client.post(path, content=json.dumps({"metrics": ["revenue"]}),
                                    headers={"content-type": content_type}), 415, "unsupported_media_type")
        assert "application/json" in body["message"] and content_type.split(";")[0] in body["message"]


def test_json_posts_pass_and_bodiless_script_posts_pass(client):
    assert client.post("/v1/compile", json={"metrics": ["revenue"]}).status_code == 200
    ok = client.post("/v1/compile", content=json.dumps({"metrics": ["revenue"]}),
                     headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200
    # no body, no Content-Type, no Origin: curl -X POST, not a web page -> reaches the endpoint (422: no body)
    assert client.post("/v1/compile").status_code == 422
    # the same from a page (a browser always sends Origin on a cross-site POST) is refused
    error_of(client.post("/v1/compile", headers={"origin": "https://evil.example"}), 415)


# --- Host allow-list ---------------------------------------------------------------------------------------


def test_host_allow_list(client):
    body = error_of(client.get("/healthz", headers={"host": "evil.example"}), 400, "host_not_allowed")
    assert "evil.example" in body["message"] and "http.allowed_hosts" in body["hint"]
    for host in ("localhost", "localhost:8000", "127.0.0.1:9", "[::1]:8000", "testserver"):
        assert client.get("/healthz", headers={"host": host}).status_code == 200, host


def test_guard_settings_from_config():
    settings = GuardSettings.from_config({"http": {"allowed_hosts": ["canon.example.com", "*.corp.example"],
                                                   "max_body_bytes": 10}})
    assert settings.host_allowed("canon.example.com:443") and settings.host_allowed("a.corp.example")
    assert not settings.host_allowed("localhost") and not settings.host_allowed("corp.example.evil")
    assert GuardSettings.from_config({"http": {"allowed_hosts": ["*"]}}).host_allowed("anything")
    with pytest.raises(ConfigError, match="max_body_bytes, max_json_depth, allowed_hosts"):
        GuardSettings.from_config({"http": {"max_body": 1}})
    with pytest.raises(ConfigError, match="positive whole number"):
        GuardSettings.from_config({"http": {"max_body_bytes": "1MB"}})


# --- body size and JSON nesting -------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(client):
    big = json.dumps({"metrics": ["revenue"], "where": "product.category = '" + "a" * (2 << 20) + "'"})
    body = error_of(client.post("/v1/compile", content=big, headers={"content-type": "application/json"}),
                    413, "body_too_large")
    assert "1,048,576" in body["message"] and "http.max_body_bytes" in body["hint"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"a" * 65536

    error_of(client.post("/cubejs-api/v1/load", content=chunks(), headers={"content-type": "application/json"}), 413)


def test_deep_json_is_400_before_parsing(client):
    for path, deep in (("/v1/query", '{"metrics": ' + "[" * 100_000 + "]" * 100_000 + "}"),
                       ("/cubejs-api/v1/load", '{"query": {"measures": ["metrics.revenue"], "filters": ['
                        + '{"and": [' * 3000 + '{"member": "product.category", "operator": "equals", "values": ["x"]}'
                        + "]}" * 3000 + "]}}")):
        body = error_of(client.post(path, content=deep, headers={"content-type": "application/json"}), 400, "invalid_json")
        assert "levels deep" in body["message"] and "64" in body["message"]
    query = '{"measures": ["metrics.revenue"], "filters": [' + '{"or": [' * 2000 + "{}" + "]}" * 2000 + "]}"
    error_of(client.get("/cubejs-api/v1/load", params={"query": query}), 400)
    assert json_depth(b'{"a": "[[[[", "b": [[1], {"c": "\\"]]"}]}') == 3


# --- request-shape limits (the runtime: every front end) --------------------------------------------------------


def test_shape_limits_name_the_limit(client):
    cases = [({"metrics": ["revenue"] * 65}, "limits.max_metrics"),
             ({"metrics": ["revenue"], "dimensions": ["product.category"] * 65}, "limits.max_dimensions"),
             ({"metrics": ["revenue"], "where": ["product.category = 'x'"] * 65}, "limits.max_filters"),
             ({"metrics": ["revenue"], "order": ["revenue"] * 65}, "limits.max_order"),
             ({"metrics": ["revenue"], "where": "product.category = '" + "a" * 5000 + "'"}, "limits.max_filter_chars"),
             ({"metrics": ["revenue"], "where": "(" * 500 + "product.category = 'x'" + ")" * 500}, "limits.max_filter_depth"),
             ({"metrics": ["revenue"], "having": "NOT " * 40 + "revenue > 1"}, "limits.max_filter_depth")]
    for body, key in cases:
        for path in ("/v1/query", "/v1/compile"):
            answer = error_of(client.post(path, json=body), 400, "request_too_large")
            assert key in answer["message"], (path, key, answer)
    many = {"measures": ["metrics.revenue"], "filters": [{"member": "product.category", "operator": "equals",
                                                          "values": [f"v{i}" for i in range(6000)]}]}
    for path in ("/cubejs-api/v1/load", "/cubejs-api/v1/sql"):
        answer = error_of(client.post(path, json={"query": many}), 400, "request_too_large")
        assert "limits.max_filter_nodes" in answer["message"] and answer["error"]


def test_limits_from_config():
    limits = Limits.from_config({"limits": {"max_metrics": 2, "max_filter_depth": 3}})
    limits.check_request(QueryRequest(metrics=("a", "b"), where=("((a = 1))",)))
    with pytest.raises(Exception, match="limits.max_metrics"):
        limits.check_request(QueryRequest(metrics=("a", "b", "c")))
    with pytest.raises(Exception, match="nests 4 levels"):
        limits.check_request(QueryRequest(metrics=("a",), where=("((((a = 1))))",)))
    with pytest.raises(ConfigError, match="max_filter_chars"):  # the error lists the valid keys
        Limits.from_config({"limits": {"max_filter_size": 1}})
    with pytest.raises(ConfigError, match="at most 100"):
        Limits.from_config({"limits": {"max_filter_depth": 5000}})
    assert Limits.from_config({}).max_rows == 100_000  # the existing keys keep their defaults


# --- 500s from bad input, now 4xx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body, status, words", [
    ({"start": "9999-12-31"}, 200, None),
    ({"end": "9999-12-31"}, 200, None),
    ({"start": "0001-01-01", "end": "0001-01-02"}, 200, None),
    ({"today": "9999-12-31", "time_range": "this year"}, 400, "outside the calendar"),
    ({"today": "0001-01-01", "time_range": "last 9999 days"}, 400, "outside the calendar"),
    ({"timezone": "America"}, 400, "unknown time zone"),
    ({"timezone": "A" * 64}, 400, "unknown time zone"),
    ({"where": "product.category = 'a\x00b'"}, 400, "NUL"),
    ({"having": "revenue > 'abc'"}, 400, "Could not convert"),
    ({"where": "CAST(product.category AS INT) = 1"}, 400, "Could not convert"),
    ({"where": "product.category > 5"}, 400, "compare"),
])
def test_bad_input_is_4xx_not_5xx(client, body, status, words):
    response = client.post("/v1/query", json={"metrics": ["revenue"], **body})
    assert response.status_code == status, response.text[:400]
    if words:
        assert words in response.json()["message"], response.text


def test_warehouse_user_errors_are_400_with_class_22_or_42():
    from canon.compiler.errors import WarehouseQueryError
    from canon.server.warehouses.postgres import is_user_error

    error = WarehouseQueryError("x", sqlstate="22P02")
    assert error.http_status == 400 and error.sqlstate == "22P02"
    assert is_user_error("22P02") and is_user_error("42883") and is_user_error("42804")
    assert not is_user_error("42P01") and not is_user_error("08006") and not is_user_error("57014")


def test_cube_bad_input_is_4xx(client):
    cube = {"measures": ["metrics.revenue"]}
    for query in ({**cube, "timezone": "A" * 300}, {**cube, "timezone": "America"},
                  {**cube, "timeDimensions": [{"dimension": "metrics.metric_time", "dateRange": "next 99999 years"}]},
                  {**cube, "timeDimensions": [{"dimension": "metrics.metric_time", "dateRange": "last 99999 years"}]},
                  {**cube, "timeDimensions": [{"dimension": "metrics.metric_time", "dateRange": ["0001-01-01", "9999-12-31"]}]},
                  {**cube, "filters": [{"member": "product.category", "operator": "equals", "values": ["a\x00b"]}]}):
        for path in ("/cubejs-api/v1/load", "/cubejs-api/v1/sql"):
            response = client.post(path, json={"query": query})
            assert response.status_code < 500, (path, query, response.text[:300])


# --- smaller ---------------------------------------------------------------------------------------------------------


def test_status_shows_no_paths(client, site, tmp_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    text = client.get("/v1/status").text
    assert str(site[0]) not in text and str(site[1]) not in text and "/tmp" not in text
    missing = tmp_path / "secret-folder" / "missing.duckdb"  # unreachable: its error names the file
    with TestClient(create_app(site[0], str(missing), reload_interval_s=0, build_demo_if_missing=False)) as down:
        status = down.get("/v1/status").json()
    assert status["status"] == "degraded" and "missing.duckdb" in status["warehouse"]["error"], status
    assert "secret-folder" not in json.dumps(status) and str(tmp_path) not in json.dumps(status)


def test_values_at_the_documented_maximum(client):
    body = client.get("/v1/dimensions/product.category/values", params={"limit": 10000}).json()
    assert body["values"] and body["truncated"] is False
    error_of(client.get("/v1/dimensions/product.category/values", params={"limit": 10001}), 422)


def test_get_on_a_post_only_path_is_405(client):
    error_of(client.get("/v1/recommendations/feedback"), 405, "method_not_allowed")


def test_openapi_declares_parameters(client):
    schema = client.get("/openapi.json").json()
    values = schema["paths"]["/v1/dimensions/{ref}/values"]["get"]["parameters"]
    assert {p["name"] for p in values} >= {"ref", "limit"}
    assert "/test-only/boom" not in schema["paths"]


# --- over a real socket --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_internal_error_is_a_500_that_keeps_the_connection(live):
    connection = http.client.HTTPConnection("127.0.0.1", live, timeout=10)
    connection.request("GET", "/test-only/boom")
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 500 and body["code"] == "internal_error" and "boom" not in body["message"]
    first = connection.sock
    assert first is not None and response.getheader("connection") != "close"
    connection.request("GET", "/healthz")  # the same socket: the server kept it open
    again = connection.getresponse()
    assert again.status == 200 and again.read() and connection.sock is first
    connection.close()


def test_3mb_body_is_refused_fast_while_a_cheap_request_answers(live):
    size = 3 << 20
    results = {}

    def big():
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", live), timeout=10) as sock:
            head = (f"POST /v1/compile HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {size}\r\n\r\n").encode()
            sock.sendall(head + b'{"metrics": ["revenue"], "where": "' + b"a" * 65536)  # the start of 3 MB
            answer = sock.recv(65536).decode("latin-1")
        results["big"] = (answer.split("\r\n", 1)[0], time.perf_counter() - started)

    thread = threading.Thread(target=big)
    thread.start()
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", live, timeout=10)
    connection.request("GET", "/v1/metrics")
    cheap = connection.getresponse()
    cheap.read()
    cheap_s = time.perf_counter() - started
    thread.join(timeout=10)
    assert cheap.status == 200 and cheap_s < 1.0, cheap_s
    status_line, big_s = results["big"]
    assert " 413 " in status_line and big_s < 1.0, results


# --- PostgreSQL: user errors and NUL bytes ----------------------------------------------------------------------------


def test_postgres_user_errors_are_400_with_the_engines_sqlstate(site, pg_demo_url):
    from canon.compiler.errors import FilterError, WarehouseQueryError
    from canon.server.runtime import Runtime

    with Runtime.open(site[0], pg_demo_url) as runtime:
        for request, sqlstate in ((QueryRequest(metrics=("revenue",), having=("revenue > 'abc'",)), "22P02"),
                                  (QueryRequest(metrics=("revenue",), where=("product.category > 5",)), "42883"),
                                  (QueryRequest(metrics=("revenue",), where=("CAST(product.category AS INT) = 1",)), "22P02")):
            with pytest.raises(WarehouseQueryError) as info:
                runtime.query(request)
            assert info.value.http_status == 400 and info.value.sqlstate == sqlstate, info.value
        with pytest.raises(FilterError, match="NUL"):  # refused before PostgreSQL could cut the SQL short
            runtime.query(QueryRequest(metrics=("revenue",), where=("product.category = 'a\x00b'",)))
        assert runtime.query(QueryRequest(metrics=("revenue",))).rows  # and it serves on


def test_postgres_warehouse_refuses_a_nul_byte_before_sending(pg_demo_url):
    from canon.compiler.errors import WarehouseQueryError
    from canon.server.warehouses import open_warehouse

    warehouse = open_warehouse(pg_demo_url)
    try:
        with pytest.raises(WarehouseQueryError, match="NUL") as info:
            warehouse.execute("SELECT 'a\x00' AS x")
        assert info.value.sqlstate == "22021" and info.value.http_status == 400
    finally:
        warehouse.close()


# --- the compile cache is bounded by bytes ----------------------------------------------------------------------------------


def test_compile_cache_is_bounded_by_bytes():
    from canon.compiler.compile import load_catalog
    from canon.server.runtime.compile_cache import CompileCache, entry_bytes
    from tests.support.project import ROOT

    catalog = load_catalog(ROOT)

    def request(n: int) -> QueryRequest:
        return QueryRequest(metrics=("revenue",), where=(" OR ".join(f"product.category = 'c{i}'" for i in range(n)),))

    one = entry_bytes(CompileCache().compile(catalog, request(20), "duckdb"))
    cache = CompileCache(size=1000, max_bytes=one * 5)
    for n in range(20, 32):  # 12 distinct requests of about the same size
        cache.compile(catalog, request(n), "duckdb")
    assert 3 <= len(cache) <= 5 and cache.bytes <= cache.max_bytes, (len(cache), cache.bytes, cache.max_bytes)
    huge = CompileCache(max_bytes=one)  # an entry over a quarter of the cache is compiled, never kept
    huge.compile(catalog, request(20), "duckdb")
    assert len(huge) == 0 and huge.bytes == 0
