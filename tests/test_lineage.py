"""Lineage: every demo KPI down to tables and columns; impact analysis upward; text, JSON, Mermaid, DOT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.compiler.errors import UnknownNameError
from canon.compiler.lineage import (build_lineage, impact, lineage_json, render_dot, render_mermaid, render_text,
                              resolve_node, sources, tree)
from canon.server.cli import main

ROOT = Path(__file__).resolve().parents[1]

# metric -> the warehouse tables it reads, written out by hand from the YAML
KPI_TABLES = {
    "revenue": {"order_items", "orders"},
    "order_count": {"orders"},
    "buyer_count": {"orders"},
    "aov": {"order_items", "orders"},
    "units_sold": {"order_items", "orders"},
    "shipping_total": {"orders"},
    "purchase_frequency": {"orders"},
    "product_purchase_frequency": {"order_items", "orders"},
    "cross_sell_score": {"order_items", "orders", "products"},
    "cross_sell_support": {"order_items", "orders", "products"},
    "cross_sell_lift": {"order_items", "orders", "products"},
    "cross_sell_pair_orders": {"order_items", "orders", "products"},
    "ad_spend": {"ad_spend"},
    "impressions": {"ad_spend"},
    "clicks": {"ad_spend"},
    "ctr": {"ad_spend"},
    "lead_count": {"leads"},
    "meeting_count": {"leads"},
    "lead_to_meeting_rate": {"leads"},
    "new_customers": {"customers", "orders"},
    "cac": {"ad_spend", "customers", "orders"},
    "cost_per_lead": {"ad_spend", "leads"},
    "attributed_order_count": {"orders"},
    "cost_per_order": {"ad_spend", "orders"},
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


@pytest.fixture(scope="module")
def graph(catalog):
    return build_lineage(catalog)


def edge_roles(graph, source, target):
    return {e.role for e in graph.uses(source) if e.target == target}


@pytest.mark.parametrize("metric", sorted(KPI_TABLES))
def test_every_demo_kpi_reaches_its_tables(graph, catalog, metric):
    assert metric in catalog.metrics, f"{metric} left the catalog: update KPI_TABLES"
    found = sources(graph, f"metric:{metric}")
    assert set(found["tables"]) == KPI_TABLES[metric]
    assert found["columns"], metric


def test_every_metric_in_the_catalog_has_lineage_to_a_table(graph, catalog):
    for name in catalog.metrics:
        assert sources(graph, f"metric:{name}")["tables"], name


def test_cac_down_to_the_reconciled_ad_spend_table(graph):
    assert edge_roles(graph, "metric:cac", "metric:ad_spend") == {"numerator"}
    assert edge_roles(graph, "metric:cac", "metric:new_customers") == {"denominator"}
    assert edge_roles(graph, "metric:ad_spend", "measure:ad_spend.spend") == {"measure"}
    assert edge_roles(graph, "measure:ad_spend.spend", "model:ad_spend") == {"model"}
    assert edge_roles(graph, "measure:ad_spend.spend", "column:ad_spend.spend") == {"expr"}
    assert edge_roles(graph, "model:ad_spend", "table:ad_spend") == {"source"}
    # the reconciliation: latest _etl_loaded_at per (campaign, day, country)
    assert edge_roles(graph, "model:ad_spend", "column:ad_spend._etl_loaded_at") == {"dedupe latest_by"}
    assert "dedupe key" in edge_roles(graph, "model:ad_spend", "column:ad_spend.country_code")
    columns = sources(graph, "metric:cac")["columns"]
    assert {"ad_spend.spend", "ad_spend._etl_loaded_at", "customers.customer_id", "customers.first_campaign_id",
            "orders.ordered_at", "orders.status", "orders.customer_id"} <= set(columns)


def test_new_customers_through_the_acquisition_sql_model(graph):
    assert edge_roles(graph, "metric:new_customers", "measure:acquisition.new_customers") == {"measure"}
    assert {"table:customers", "table:orders"} <= {e.target for e in graph.uses("model:acquisition")}
    # sqlglot traces the model's output columns to their source columns (through its subquery)
    assert edge_roles(graph, "dimension:acquisition.first_order_at", "column:orders.ordered_at") == {"expr"}
    assert edge_roles(graph, "measure:acquisition.new_customers", "column:orders.customer_id") == {"expr"}
    assert "sql" in edge_roles(graph, "model:acquisition", "column:orders.status")  # WHERE o.status = ...


def test_revenue_join_path_and_filter(graph):
    assert edge_roles(graph, "metric:revenue", "dimension:order.status") == {"filter"}
    assert edge_roles(graph, "metric:revenue", "dimension:order.ordered_at") == {"time"}
    assert edge_roles(graph, "metric:revenue", "column:order_items.order_id") == {"join order_item→order on order"}
    assert {"order_items.quantity", "order_items.unit_price", "order_items.discount_amount"} <= set(
        sources(graph, "metric:revenue")["columns"])


def test_impact_of_a_column(graph):
    found = impact(graph, "column:orders.status")
    assert {"revenue", "order_count", "aov", "buyer_count", "purchase_frequency", "units_sold",
            "new_customers", "cac", "cross_sell_score"} <= set(found["metrics"])
    assert "ad_spend" not in found["metrics"] and "lead_count" not in found["metrics"]
    assert found["views"] == ["marketing", "sales"]
    assert found["saved_queries"] == ["customer_category_spend"]


def test_impact_of_a_measure_and_of_the_ad_spend_table(graph):
    assert {"revenue", "aov"} <= set(impact(graph, "measure:order_item.line_revenue")["metrics"])
    spend = impact(graph, "table:ad_spend")["metrics"]
    assert {"ad_spend", "cac", "cost_per_lead", "cost_per_order", "ctr"} <= set(spend)
    assert "revenue" not in spend


def test_resolve_node_names(graph):
    assert resolve_node(graph, "cac") == "metric:cac"
    assert resolve_node(graph, "orders.status") == "column:orders.status"
    assert resolve_node(graph, "order.status") == "dimension:order.status"
    assert resolve_node(graph, "order_item.line_revenue") == "measure:order_item.line_revenue"
    assert resolve_node(graph, "acquisition") == "model:acquisition"
    with pytest.raises(UnknownNameError, match="did you mean 'cac'"):
        resolve_node(graph, "cacc")


def test_text_tree(graph):
    text = render_text(tree(graph, "metric:cac", "down"))
    lines = text.splitlines()
    assert lines[0].startswith("metric cac “Customer acquisition cost” (ratio, certified, marketing-analytics)")
    assert any("← [numerator] metric ad_spend" in line for line in lines)
    assert any("← [dedupe latest_by] column ad_spend._etl_loaded_at" in line for line in lines)
    assert any("← [source] table ad_spend" in line for line in lines)
    up = render_text(tree(graph, "column:orders.status", "up"), "up")
    assert "→ [filter] metric revenue" in up and "→ [numerator] metric aov" in up


def test_mermaid_and_dot(graph):
    mermaid = render_mermaid(graph, "metric:aov")
    assert mermaid.startswith("flowchart RL")
    assert '(["metric: aov"])' in mermaid and '[("table: orders")]' in mermaid
    assert '-->|"numerator"|' in mermaid
    dot = render_dot(graph, "metric:aov")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"metric:revenue" -> "metric:aov" [label="numerator"];' in dot
    assert '"table:order_items" [label="table: order_items", shape=cylinder];' in dot


def test_lineage_json(catalog):
    data = lineage_json(catalog, "aov")
    assert data["root"]["id"] == "metric:aov" and data["root"]["tier"] == "certified"
    assert data["tables"] == ["order_items", "orders"]
    assert data["impact"]["views"] == ["sales"]
    assert {(c["name"], c["role"]) for c in data["down"]["children"]} == {("revenue", "numerator"),
                                                                           ("order_count", "denominator")}
    assert "view:sales" in {c["id"] for c in data["up"]["children"]}
    assert {"from": "metric:aov", "to": "metric:revenue", "role": "numerator"} in data["edges"]
    json.dumps(data)  # plain JSON


@pytest.mark.slow  # five CLI runs, each loading the catalog
def test_cli_lineage():
    runner = CliRunner()
    out = runner.invoke(main, ["lineage", "cac", "--project", str(ROOT)])
    assert out.exit_code == 0, out.output
    assert "metric cac" in out.output and "table ad_spend" in out.output
    up = runner.invoke(main, ["lineage", "orders.status", "--direction", "up", "--project", str(ROOT)])
    assert up.exit_code == 0 and "impact: metrics:" in up.output and "aov" in up.output
    dot = runner.invoke(main, ["lineage", "revenue", "-f", "dot", "--project", str(ROOT)])
    assert dot.output.startswith("digraph lineage {")
    data = json.loads(runner.invoke(main, ["lineage", "new_customers", "-f", "json", "--project", str(ROOT)]).output)
    assert data["tables"] == ["customers", "orders"]
    bad = runner.invoke(main, ["lineage", "no_such_metric", "--project", str(ROOT)])
    assert bad.exit_code == 1 and "nothing named 'no_such_metric'" in bad.output
