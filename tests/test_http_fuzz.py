"""Property-based fuzz of every operation in /openapi.json: no input may produce a 5xx.

Hypothesis draws path and query parameters and JSON bodies shaped by the schema (its field names,
with values from real catalog names, near misses, hostile strings and arbitrary JSON), plus raw bodies
that are not JSON at all, and sends them over real HTTP to `canon serve`. Bounded to about a minute.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import httpx
import pytest

from tests.support.servers import build_warehouse, copy_project, serve

BUDGET_S = 50.0
HOSTILE = ["' OR 1=1 --", "1; DROP TABLE orders", "read_csv('/etc/passwd')", "(SELECT 1)", "%", "\x00", "../../etc",
           "metric_time.month", "antecedent.category", "🙂", "a" * 300, "", " ", "-revenue", "order.status = 'x'"]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    project = copy_project(root / "project")
    warehouse = build_warehouse(root / "demo.duckdb", scale=0.05)
    with serve(project, warehouse, "--reload-interval", "0", "--query-timeout", "5", "--max-rows", "2000") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            schema = client.get("/openapi.json").json()
            metrics = [m["name"] for m in client.get("/v1/metrics").json()["metrics"]]
            cube_members = [m["name"] for c in client.get("/cubejs-api/v1/meta").json()["cubes"]
                            for m in c["measures"] + c["dimensions"]]
            dims = [d["ref"] for d in client.get("/v1/dimensions", params={"metrics": "revenue"}).json()["dimensions"]]
            yield {"client": client, "schema": schema, "names": metrics + dims + cube_members}


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in ("get", "post"):
                yield path, method, op


def _body_fields(schema, op):
    ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}) or {}).get("$ref")
    if not ref:
        return {}
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]].get("properties", {})


@pytest.mark.slow  # about a minute of requests by design
def test_openapi_fuzz_finds_no_5xx(api):
    from hypothesis import HealthCheck, given, settings, strategies as st  # imported here: collection stays fast

    client, schema, names = api["client"], api["schema"], api["names"]
    operations = list(_operations(schema))
    assert len(operations) >= 11
    words = st.one_of(st.sampled_from(names), st.sampled_from(HOSTILE), st.text(max_size=40))
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**15, max_value=10**15),
                        st.floats(allow_nan=False), words)
    json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(words, inner, max_size=4)), max_leaves=12)
    filters = st.fixed_dictionaries({"field": words, "op": st.sampled_from(
        ["equals", "notEquals", "contains", "gt", "lte", "set", "notSet", "inDateRange", "beforeDate", "afterOrOnDate", "bogus"]),
        "values": st.lists(scalars, max_size=3)})
    cube_filter = st.fixed_dictionaries({"member": words, "operator": words, "values": st.lists(scalars, max_size=3)})
    cube_query = st.fixed_dictionaries({}, optional={
        "measures": st.lists(words, max_size=3), "dimensions": st.lists(words, max_size=3),
        "timeDimensions": st.lists(st.fixed_dictionaries({"dimension": words}, optional={
            "granularity": st.sampled_from(["day", "month", "hour", "eon"]), "dateRange": st.one_of(
                st.sampled_from(["last 7 days", "this month", "today", "last 2 years", "never"]), st.lists(words, max_size=3))}),
            max_size=2),
        "filters": st.lists(st.one_of(cube_filter, st.fixed_dictionaries({"or": st.lists(cube_filter, max_size=2)})), max_size=2),
        "order": st.one_of(st.dictionaries(words, st.sampled_from(["asc", "desc", "up"]), max_size=2), json_values),
        "limit": scalars, "offset": scalars, "segments": st.lists(words, max_size=1), "timezone": words, "total": scalars})
    started = time.monotonic()
    seen: list[tuple] = []

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def one(data):
        if time.monotonic() - started > BUDGET_S:
            return
        path, method, op = data.draw(st.sampled_from(operations))
        url = path
        for param in op.get("parameters", []):
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", quote(data.draw(words), safe="") or "x")
        params = {p["name"]: data.draw(st.one_of(words, st.integers(-5, 10**9).map(str)))
                  for p in op.get("parameters", []) if p["in"] == "query" and data.draw(st.booleans())}
        kwargs = {"params": params}
        if path.startswith("/cubejs-api") and path != "/cubejs-api/v1/meta":
            query = data.draw(st.one_of(cube_query, json_values))
            if method == "get":
                kwargs["params"] = {**params, "query": json.dumps(query)}
            else:
                kwargs["content"] = json.dumps({"query": query})
                kwargs["headers"] = {"content-type": "application/json"}  # a form post is a 415 (CSRF)
        elif method == "post":
            fields = _body_fields(schema, op)
            body = data.draw(st.one_of(
                st.fixed_dictionaries({}, optional={k: (st.lists(filters, max_size=3) if k == "filters" else
                                                        st.one_of(st.lists(words, max_size=3), json_values)) for k in fields}),
                json_values))
            kwargs["content"] = data.draw(st.one_of(st.just(json.dumps(body)), st.text(max_size=30)))
            kwargs["headers"] = {"content-type": "application/json"}
        if method == "get":
            response = client.get(url, **kwargs)
        else:
            response = client.post(url, **kwargs)
        seen.append((method, path, response.status_code))
        timed_out = response.status_code == 504 and response.json().get("code") == "query_timeout"
        assert response.status_code < 500 or timed_out, (method, url, kwargs, response.text[:500])
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/json"), response.text[:200]
            assert response.json().get("message"), response.text[:200]

    one()
    assert len(seen) >= 100, f"only {len(seen)} requests in the budget"
    for path, method, op in operations:  # an operation the draws missed within the budget: asked once plainly
        if path in {p for _, p, _ in seen}:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        response = client.get(url) if method == "get" else client.post(
            url, content="{}", headers={"content-type": "application/json"})
        seen.append((method, path, response.status_code))
        assert response.status_code < 500, (method, url, response.text[:500])
    assert {p for _, p, _ in seen} >= {p for p, _, _ in operations} - {"/docs", "/docs/oauth2-redirect", "/redoc"}
