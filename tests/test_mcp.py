"""`canon mcp` driven by the MCP SDK's own client over stdio (issue 17): tools listed, numbers equal to
hand-written SQL, errors that name the valid choices, and access policies applied to the agent's token."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import jwt
import pytest
from mcp import Client, StdioServerParameters

from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import ROOT, copy_project, shared_demo

REVENUE_BY_CATEGORY = ("SELECT p.category, SUM(oi.quantity * oi.unit_price - oi.discount_amount) FROM order_items oi "
                       "JOIN orders o ON o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
                       "JOIN customers c ON c.customer_id = o.customer_id WHERE o.status = 'completed' {where} GROUP BY 1")
SECRET = "mcp-test-secret-mcp-test-secret-mcp-test"


def session(project, warehouse, *, token: str | None = None, env: dict | None = None):
    args = ["-m", "canon.server.cli", "mcp", "--project", str(project), "--warehouse", str(warehouse)]
    environment = {**os.environ, **(env or {})}
    environment.pop("CANON_TOKEN", None)
    if token:
        args += ["--token", token]
    return Client(StdioServerParameters(command=sys.executable, args=args, env=environment, cwd=str(ROOT)))


def payload(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content:
        return result.structured_content
    return json.loads(result.content[0].text)


def hand(where: str = "") -> list:
    warehouse = open_warehouse(str(shared_demo()))
    try:
        return [list(r) for r in warehouse.execute(REVENUE_BY_CATEGORY.format(where=where))[1]]
    finally:
        warehouse.close()


def test_agent_queries_through_the_sdk_client():
    async def run():
        async with session(ROOT, shared_demo()) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"list_metrics", "describe_metric", "list_dimensions", "search_catalog", "query_metrics",
                    "compile_sql", "run_saved_query"} <= tools
            metrics = payload(await client.call_tool("list_metrics", {"query": "revenue"}))["metrics"]
            assert "revenue" in {m["name"] for m in metrics}
            answer = payload(await client.call_tool("query_metrics", {"metrics": ["revenue"],
                                                                      "dimensions": ["product.category"]}))
            described = payload(await client.call_tool("describe_metric", {"name": "revenue"}))
            wrong = await client.call_tool("query_metrics", {"metrics": ["revenu"]})
            saved = payload(await client.call_tool("run_saved_query", {"name": "customer_category_spend",
                                                                       "limit": 5}))
            return answer, described, wrong, saved

    answer, described, wrong, saved = asyncio.run(run())
    assert [c["name"] for c in answer["columns"]] == ["product.category", "revenue"]
    assert_same(answer["rows"], hand(), keys=1)
    assert any(d["ref"] == "product.category" for d in described["dimensions"])
    assert wrong.is_error and "revenue" in wrong.content[0].text  # did you mean
    assert len(saved["rows"]) == 5


def test_agent_sees_only_what_its_token_allows(tmp_path):
    project = copy_project(tmp_path / "project")
    with (project / "canon.yml").open("a") as config:
        config.write("access: {default: deny, policies: [{name: managers, when: \"user.role = 'manager'\", "
                     "row_filter: 'customer.country_code = {{ user.country }}', deny: [cac]}]}\n")
    token = jwt.encode({"sub": "agent", "role": "manager", "country": "DE", "exp": int(time.time()) + 600},
                       SECRET, algorithm="HS256")

    async def run():
        async with session(project, shared_demo(), token=token, env={"CANON_API_SECRET": SECRET}) as client:
            answer = payload(await client.call_tool("query_metrics", {"metrics": ["revenue"],
                                                                      "dimensions": ["product.category"]}))
            listed = payload(await client.call_tool("list_metrics", {}))["metrics"]
            denied = await client.call_tool("query_metrics", {"metrics": ["cac"]})
            return answer, listed, denied

    answer, listed, denied = asyncio.run(run())
    assert_same(answer["rows"], hand("AND c.country_code = 'DE'"), keys=1)
    assert "cac" not in {m["name"] for m in listed}
    assert denied.is_error and "managers" in denied.content[0].text


def test_a_project_with_authentication_needs_a_token(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "canon.server.cli", "mcp", "--project", str(ROOT)],
                          capture_output=True, text=True, timeout=60, input="",
                          env={**os.environ, "CANON_API_SECRET": SECRET, "CANON_TOKEN": ""})
    assert done.returncode != 0 and "--token" in done.stderr


CROSS_SELL = ("WITH b AS (SELECT DISTINCT oi.order_id, p.category FROM order_items oi JOIN orders o ON o.order_id = oi.order_id "
              "JOIN products p ON p.product_id = oi.product_id WHERE o.status = 'completed') "
              "SELECT c.category, COUNT(*) * 1.0 / (SELECT COUNT(*) FROM b WHERE category = 'Coffee') FROM b a "
              "JOIN b c ON c.order_id = a.order_id AND c.category <> a.category WHERE a.category = 'Coffee' GROUP BY 1")


@pytest.mark.slow  # a `canon serve` process and four HTTP sessions
def test_streamable_http_under_serve_answers_as_the_token(tmp_path):
    """`canon serve` also serves the tools at /mcp (streamable HTTP): the SDK's client with a token in
    `Authorization` gets the same numbers as the token's row filter allows; no token is 401; the
    lineage and cross-sell tools answer."""
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    from tests.support.servers import start_serve

    project = copy_project(tmp_path / "project")
    with (project / "canon.yml").open("a") as config:
        config.write("access: {default: deny, policies: [{name: analysts, when: \"user.role = 'analyst'\"}, "
                     "{name: managers, when: \"user.role = 'manager'\", "
                     "row_filter: 'customer.country_code = {{ user.country }}', deny: [cac]}]}\n")
    started = start_serve(project, warehouse=shared_demo(), env={"CANON_API_SECRET": SECRET})

    def token(**claims):
        return jwt.encode({"sub": "agent", "exp": int(time.time()) + 600, **claims}, SECRET, algorithm="HS256")

    async def call(claims, tool, arguments):
        headers = {"Authorization": f"Bearer {token(**claims)}"} if claims else {}
        transport = streamable_http_client(f"{started.url}/mcp", http_client=create_mcp_http_client(headers=headers))
        async with Client(transport) as client:
            return await client.call_tool(tool, arguments)

    try:
        import httpx

        deadline = time.monotonic() + 60  # the MCP routes are mounted in the background after start
        ping = {"jsonrpc": "2.0", "id": 0, "method": "ping"}
        headers = {"Authorization": f"Bearer {token(role='analyst')}", "Accept": "application/json, text/event-stream"}
        while httpx.post(f"{started.url}/mcp", json=ping, headers=headers, timeout=10).status_code == 503:
            assert time.monotonic() < deadline, "/mcp never came up"
            time.sleep(0.1)
        manager = payload(asyncio.run(call({"role": "manager", "country": "DE"}, "query_metrics",
                                           {"metrics": ["revenue"], "dimensions": ["product.category"]})))
        assert_same(manager["rows"], hand("AND c.country_code = 'DE'"), keys=1)
        denied = asyncio.run(call({"role": "manager", "country": "DE"}, "query_metrics", {"metrics": ["cac"]}))
        assert denied.is_error and "managers" in denied.content[0].text
        lineage = payload(asyncio.run(call({"role": "analyst"}, "explain_lineage", {"metric": "revenue"})))
        assert "order_items" in json.dumps(lineage)
        pairs = payload(asyncio.run(call({"role": "analyst"}, "cross_sell", {"value": "Coffee", "limit": 50})))
        score = [c["name"] for c in pairs["columns"]].index("cross_sell_score")
        warehouse = open_warehouse(str(shared_demo()))
        try:
            want = [list(r) for r in warehouse.execute(CROSS_SELL)[1]]
        finally:
            warehouse.close()
        assert_same([[r[1], r[score]] for r in pairs["rows"]], want, keys=1)

        anonymous = httpx.post(f"{started.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                               headers={"Accept": "application/json, text/event-stream"})
        assert anonymous.status_code == 401
    finally:
        started.stop(timeout=10)
