"""The entity join graph: shortest unambiguous paths, and fan-out only into declared bridges, so a new
model can never change the numbers of existing metrics by opening a new path."""

from __future__ import annotations

from pathlib import Path

import pytest

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.errors import CatalogErrors, QueryError
from canon.compiler.request import QueryRequest
from tests.support.project import copy_project

ROOT = Path(__file__).resolve().parents[1]

EVENTS = """\
semantic_model:
  name: page_view
  table: page_views
  description: A click stream with customer and product keys, like many event tables.
  entities:
    - {name: page_view, type: primary, expr: page_view_id}
    - {name: customer, type: foreign, expr: customer_id}
    - {name: product, type: foreign, expr: product_id}
  measures:
    - {name: views, agg: count, expr: page_view_id}
"""


def project(tmp_path: Path, extra: dict[str, str]) -> Path:
    copy_project(tmp_path)
    for relative, text in extra.items():
        (tmp_path / relative).write_text(text)
    return tmp_path


def sql(catalog, metrics, dims=(), where=()):
    return compile_request(catalog, QueryRequest(metrics=metrics, dimensions=dims, where=where)).sql


@pytest.fixture(scope="module")
def base():
    return load_catalog(ROOT)


def test_an_event_model_does_not_reroute_existing_metrics(tmp_path, base):
    """page_view links customer and product; without `bridge: true` no path goes through it."""
    with_events = load_catalog(project(tmp_path, {"semantic_models/page_views.yml": EVENTS}))
    for metrics, dims in [(("order_count",), ("product.category",)), (("shipping_total",), ("product.brand",)),
                          (("revenue", "buyer_count"), ("customer.segment", "product.category"))]:
        assert sql(with_events, metrics, dims) == sql(base, metrics, dims)
    with pytest.raises(QueryError, match="product cannot be reached from lead.*bridge: true"):
        sql(with_events, ("lead_count",), ("product.category",))


def test_a_bridge_lets_parents_group_by_line_dimensions(base):
    text = sql(base, ("order_count",), ("product.category",))
    assert "order_items" in text and "DISTINCT" in text  # orders counted once per category, via their lines


def test_fan_out_without_a_bridge_is_refused(tmp_path):
    """Without the bridge, orders cannot reach products: the sales view (which pairs order_count
    with product.category) fails validation, naming the fix."""
    root = project(tmp_path, {})
    lines = root / "semantic_models" / "order_items.yml"
    lines.write_text(lines.read_text().replace("  bridge: true\n", ""))
    with pytest.raises(CatalogErrors) as error:
        load_catalog(root)
    text = str(error.value)
    assert "view 'sales'" in text and "product cannot be reached from order" in text and "bridge: true" in text


def test_ambiguous_paths_are_named_as_chains(tmp_path):
    """Two bridges from customer to product of the same length: an error naming both chains."""
    bridge = EVENTS.replace("  measures:", "  bridge: true\n  measures:")
    wishlist = bridge.replace("page_view", "wishlist_item").replace("page_views", "wishlist_items")
    metric = ("metrics:\n  - {name: customer_total, type: simple, label: Customers, description: Accounts.,"
              " owner: sales-analytics, tier: draft, measure: customer.customers}\n")
    catalog = load_catalog(project(tmp_path, {"semantic_models/page_views.yml": bridge,
                                              "semantic_models/wishlist_items.yml": wishlist,
                                              "metrics/customers.yml": metric}))
    with pytest.raises(QueryError) as error:
        sql(catalog, ("customer_total",), ("product.category",))
    text = str(error.value)
    assert "ambiguous join path from customer to product" in text
    assert "customer ← page_view → product" in text and "customer ← wishlist_item → product" in text
    # orders still reach products by their own lines, the shorter path
    assert "order_items" in sql(catalog, ("order_count",), ("product.category",))
