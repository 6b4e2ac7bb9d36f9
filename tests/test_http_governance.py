"""Governance over HTTP: lineage, source freshness in /v1/status, warnings on queries (body and header)."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.support.servers import build_warehouse, copy_project, serve


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("governance_http")
    project = copy_project(root / "project")
    # a deprecated metric, and a "now" long after the data so the marketing sources are stale
    sales = project / "metrics" / "sales.yml"
    doc = yaml.safe_load(sales.read_text())
    doc["metrics"].append({"name": "old_revenue", "type": "simple", "label": "Old revenue",
                           "description": "Replaced by revenue.", "owner": "sales-analytics",
                           "tier": "deprecated", "replaced_by": "revenue", "sunset": "2026-12-31",
                           "measure": "order_item.line_revenue", "filter": "order.status = 'completed'"})
    sales.write_text(yaml.safe_dump(doc, sort_keys=False))
    settings = yaml.safe_load((project / "canon.yml").read_text())
    settings["calendar"]["now"] = "2026-03-01"
    (project / "canon.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    warehouse = build_warehouse(root / "demo.duckdb")
    with serve(project, warehouse, "--reload-interval", "0") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


def test_lineage_reaches_tables_and_columns(site):
    body = site.get("/v1/metrics/cac/lineage").json()
    ids = {n["id"] for n in body["nodes"]}
    assert body["root"]["id"] == "metric:cac"
    assert {"metric:ad_spend", "metric:new_customers", "table:ad_spend", "table:customers"} <= ids
    assert "column:ad_spend._etl_loaded_at" in ids  # the reconciliation reads the load time


@pytest.mark.parametrize("fmt, marker", [("mermaid", "flowchart"), ("dot", "digraph")])
def test_lineage_renders_for_docs(site, fmt, marker):
    body = site.get("/v1/metrics/aov/lineage", params={"format": fmt}).json()
    assert body["text"].lstrip().startswith(marker) and "order_item" in body["text"]


def test_lineage_of_an_unknown_metric_is_404_with_choices(site):
    response = site.get("/v1/metrics/revenu/lineage")
    assert response.status_code == 404
    assert "revenue" in response.json()["hint"]


def test_status_reports_stale_sources(site):
    freshness = {s["model"]: s for s in site.get("/v1/status").json()["freshness"]}
    assert freshness["ad_spend"]["state"] == "error" and freshness["lead"]["state"] == "error"


def test_query_on_a_stale_source_warns_in_body_and_header(site):
    response = site.post("/v1/query", json={"metrics": ["cac"], "dimensions": ["campaign.channel"]})
    assert response.status_code == 200
    warnings = response.json()["warnings"]
    assert any("ad_spend" in w and "error" in w for w in warnings), warnings
    assert "ad_spend" in response.headers["warning"] and response.headers["warning"].startswith("299 canon")


def test_query_on_fresh_sources_has_no_warning(site):
    response = site.post("/v1/query", json={"metrics": ["revenue"]})
    assert "warnings" not in response.json() and "warning" not in response.headers


def test_deprecated_metric_warns_with_its_replacement(site):
    response = site.post("/v1/query", json={"metrics": ["old_revenue"]})
    text = response.headers["warning"]
    assert "deprecated" in text and "'revenue'" in text and "2026-12-31" in text
    assert response.json()["rows"] == site.post("/v1/query", json={"metrics": ["revenue"]}).json()["rows"]
