"""Metric facts (what each metric is built from, resolved once in validate) and source locations
kept on the definitions themselves. Expectations are written by hand from metrics/*.yml and
semantic_models/*.yml."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from canon.compiler.facts import Input, MetricFacts
from canon.compiler.lineage import build_lineage, sources

REPO_ROOT = Path(__file__).resolve().parent.parent


def _facts(catalog, name) -> MetricFacts:
    facts = catalog.facts[name]
    assert facts.name == name and facts.type == catalog.metrics[name].type
    return facts


def test_simple(catalog):
    # measure order_item.line_revenue (sum), filter order.status, default_time order.ordered_at
    f = _facts(catalog, "revenue")
    assert f.inputs == () and f.metrics == ()
    assert f.measures == ("order_item.line_revenue",)
    assert f.models == ("order_item", "order")
    assert f.grouped == ("order_item",)
    assert f.tables == ("order_items", "orders")
    assert (f.agg, f.additive) == ("sum", True)


def test_simple_count_distinct_is_not_additive(catalog):
    f = _facts(catalog, "buyer_count")
    assert f.measures == ("order.buyers",) and f.models == ("order",)
    assert (f.agg, f.additive) == ("count_distinct", False)


def test_ratio(catalog):
    f = _facts(catalog, "aov")
    assert f.inputs == (Input("numerator", "revenue"), Input("denominator", "order_count"))
    assert set(f.metrics) == {"revenue", "order_count"}
    assert set(f.measures) == {"order_item.line_revenue", "order.orders"}
    assert f.models == ("order_item", "order")
    assert set(f.grouped) == {"order_item", "order"}
    assert (f.agg, f.additive) == (None, False)


def test_ratio_over_a_sql_model(catalog):
    # cac = ad_spend / new_customers; acquisition is a `sql:` model over customers and orders
    f = _facts(catalog, "cac")
    assert f.inputs == (Input("numerator", "ad_spend"), Input("denominator", "new_customers"))
    assert set(f.measures) == {"ad_spend.spend", "acquisition.new_customers"}
    assert f.models == ("ad_spend", "acquisition")
    assert f.tables == ("ad_spend", "customers", "orders")


def test_derived_with_offset(catalog):
    # metrics: [revenue, {name: revenue, alias: revenue_last_month, offset_window: 1 month}]
    f = _facts(catalog, "revenue_mom_growth")
    assert f.inputs == (Input("metrics", "revenue"), Input("metrics", "revenue", alias="revenue_last_month"))
    assert f.metrics == ("revenue",)
    assert f.measures == ("order_item.line_revenue",)
    assert f.models == ("order_item", "order")
    assert f.grouped == ("order_item",)
    assert (f.agg, f.additive) == (None, False)


def test_cumulative(catalog):
    # a trailing 28-day window over revenue: built from revenue's measure, grouped like revenue
    f = _facts(catalog, "revenue_rolling_28d")
    assert f.inputs == (Input("metric", "revenue"),)
    assert f.metrics == ("revenue",)
    assert f.measures == ("order_item.line_revenue",)
    assert f.models == ("order_item", "order")
    assert f.grouped == ("order_item",)
    assert (f.agg, f.additive) == (None, False)


def test_conversion(catalog):
    # base lead_count (lead.leads), conversion order_count (order.orders), entity customer
    f = _facts(catalog, "lead_to_order_28d")
    assert f.inputs == (Input("base", "lead_count"), Input("conversion", "order_count"))
    assert set(f.metrics) == {"lead_count", "order_count"}
    assert set(f.measures) == {"lead.leads", "order.orders"}
    assert f.models == ("lead", "order")
    assert f.grouped == ("lead",)  # grouped by the base events' dimensions only
    assert f.tables == ("leads", "orders")


def test_affinity(catalog):
    # baskets are orders, items products, lines in order_item; filter on order.status
    f = _facts(catalog, "cross_sell_score")
    assert f.inputs == () and f.metrics == () and f.measures == ()
    assert f.models == ("order_item", "order", "product")
    assert f.grouped == ("order",)
    assert f.tables == ("order_items", "orders", "products")
    assert (f.agg, f.additive) == (None, False)


@pytest.mark.parametrize("name, measure, agg", [
    ("avg_items_per_order", "order_item.order_units", "avg"),  # per order: sum(quantity); then avg
    ("median_order_value", "order_item.order_value", "median"),
    ("repeat_buyer_count", "order.repeat_buyers", "sum"),  # per customer: count; then sum of a flag
])
def test_per_entity_measure(catalog, name, measure, agg):
    f = _facts(catalog, name)
    assert f.measures == (measure,)
    assert f.grouped == (measure.partition(".")[0],)
    # per-entity values are computed within each group: a sum of them over months is not the quarter's
    assert (f.agg, f.additive) == (agg, False)


def test_facts_agree_with_lineage(catalog):
    """Models in the order lineage reaches them, and the same tables."""
    graph = build_lineage(catalog)
    for name, f in catalog.facts.items():
        closure = graph.closure(f"metric:{name}", "down")
        assert f.models == tuple(n[len("model:"):] for n in closure if n.startswith("model:")), name
        assert list(f.tables) == sources(graph, f"metric:{name}")["tables"], name
        assert set(f.metrics) == {n[len("metric:"):] for n in closure if n.startswith("metric:")}, name


# --- locations on the definitions ----------------------------------------------------------------


def _line(path: Path, pattern: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [i + 1 for i, text in enumerate(lines) if re.match(pattern, text)]
    assert len(found) == 1, (path, pattern, found)
    return found[0]


def test_every_metric_location_is_its_name_line(catalog):
    assert len(catalog.metrics) >= 40
    for name, metric in catalog.metrics.items():
        location = metric.location
        assert location is not None and catalog.facts[name].location == location
        expected = _line(REPO_ROOT / location.file, rf"\s*- {{?name: {name}\b")  # block or flow style
        assert location.line == expected, name
        assert str(location) == f"{location.file}:{expected}"


def test_models_views_and_fields_carry_locations(catalog):
    order = catalog.models["order"].definition
    assert order.location_of("name").file == "semantic_models/orders.yml"
    assert order.location_of("name").line == _line(REPO_ROOT / "semantic_models/orders.yml", r"\s*name: order\s*$")
    revenue = catalog.metrics["revenue"]
    assert revenue.location_of("filter").line == revenue.location.line + 9  # `filter:` in metrics/sales.yml
    assert revenue.location_of("no_such_field") == revenue.location
    assert catalog.views["sales"].location.file == "metrics/sales.yml"
    assert "location" not in revenue.model_dump() and "_source" not in revenue.model_dump()


# --- GET /v1/metrics/{name} ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory, demo_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    project = tmp_path_factory.mktemp("facts") / "project"
    project.mkdir()
    for folder in ("semantic_models", "metrics"):
        shutil.copytree(REPO_ROOT / folder, project / folder)
    shutil.copy(REPO_ROOT / "canon.yml", project / "canon.yml")
    with TestClient(create_app(project, str(demo_path), reload_interval_s=0)) as c:
        yield c


def test_http_metric_detail_has_its_source(client):
    body = client.get("/v1/metrics/revenue").json()
    line = _line(REPO_ROOT / "metrics/sales.yml", r"\s*- name: revenue\s*$")
    assert body["definition"]["source"] == f"metrics/sales.yml:{line}"
    assert body["definition"]["measure"] == "order_item.line_revenue"


def test_http_depends_on_follows_every_metric_type(client):
    body = client.get("/v1/metrics/revenue_rolling_28d").json()
    assert body["definition"]["source"].startswith("metrics/time.yml:")
    assert body["depends_on"] == {"metrics": ["revenue"], "measures": ["order_item.line_revenue"]}
