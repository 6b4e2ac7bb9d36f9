"""Saved queries run by name (issue 18): CLI and HTTP answers equal hand-written SQL over the raw tables."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from canon.server.cli import main
from canon.server.http_api import create_app
from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import ROOT, shared_demo

SPEND = ("SELECT o.customer_id, p.category, SUM(oi.quantity * oi.unit_price - oi.discount_amount) "
         "FROM order_items oi JOIN orders o ON o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
         "WHERE o.status = 'completed' {where} GROUP BY 1, 2")


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request):
    return str(shared_demo()) if request.param == "duckdb" else request.getfixturevalue("pg_demo_url")


@pytest.fixture(scope="module")
def hand(demo):
    warehouse = open_warehouse(demo)

    def rows(where: str = "") -> list:
        return [list(r) for r in warehouse.execute(SPEND.format(where=where))[1]]

    yield rows
    warehouse.close()


@pytest.fixture(scope="module")
def client(demo):
    with TestClient(create_app(ROOT, demo, reload_interval_s=0)) as client:
        yield client


def test_http_run_equals_hand_sql(client, hand):
    listed = client.get("/v1/saved-queries").json()
    assert [s["name"] for s in listed["saved_queries"]] == ["customer_category_spend"]
    assert client.get("/v1/saved-queries/customer_category_spend").json()["metrics"] == ["revenue"]
    body = client.post("/v1/saved-queries/customer_category_spend/run").json()
    assert [c["name"] for c in body["columns"]] == ["customer.customer_id", "product.category", "revenue"]
    assert_same(body["rows"], hand(), keys=2)
    narrowed = client.post("/v1/saved-queries/customer_category_spend/run", json={
        "where": "product.category = 'Coffee'", "start": "2025-06-01", "end": "2025-06-30"}).json()
    assert_same(narrowed["rows"], hand("AND p.category = 'Coffee' AND o.ordered_at >= '2025-06-01' "
                                       "AND o.ordered_at < '2025-07-01'"), keys=2)
    top = client.post("/v1/saved-queries/customer_category_spend/run", json={"order": "-revenue", "limit": 5}).json()
    assert [r[2] for r in top["rows"]] == pytest.approx(sorted((float(r[2]) for r in hand()), reverse=True)[:5])


def test_http_refusals(client):
    unknown = client.post("/v1/saved-queries/customer_spend/run")
    assert unknown.status_code == 404 and "customer_category_spend" in unknown.json()["hint"]
    own = client.post("/v1/saved-queries/customer_category_spend/run", json={"metrics": ["aov"]})
    assert own.status_code == 422 and "metrics" in own.json()["message"]


def test_cli_runs_a_saved_query(demo, hand):
    out = CliRunner().invoke(main, ["query", "--project", str(ROOT), "--warehouse", demo, "--saved-query",
                                    "customer_category_spend", "--where", "product.category = 'Coffee'",
                                    "--format", "json"])
    assert out.exit_code == 0, out.output
    import json

    assert_same(json.loads(out.output)["rows"], hand("AND p.category = 'Coffee'"), keys=2)
    both = CliRunner().invoke(main, ["query", "--project", str(ROOT), "--saved-query", "customer_category_spend",
                                     "-m", "revenue"])
    assert both.exit_code != 0 and "--saved-query" in both.output
    unknown = CliRunner().invoke(main, ["compile", "--project", str(ROOT), "--saved-query", "customer_spend"])
    assert unknown.exit_code != 0 and "customer_category_spend" in unknown.output
