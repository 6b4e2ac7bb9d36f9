"""The `recommendations:` block (issue 15): recommendations configured by the catalog, not assumed.

1. the demo's block answers exactly what the hard-wired service answered (fixtures/recommend_config/
   demo_answers.json, captured over HTTP from the code before the block existed, demo scale 0.2 seed 5);
2. a catalog with other names (a `price_band` tier low/medium/high cut from list_price, `title`,
   `department`, `account_type`, its own affinity and popularity metrics) answers cross-sell,
   recommendations and upsell as hand SQL on the raw tables says;
3. without the block: every recommendation endpoint is a 404 naming the block, the CLI exits
   non-zero with the same message, and `canon serve` starts without a warning or a build;
4. a misspelled name in the block fails `canon validate` with file:line and "did you mean".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from tests.support.project import copy_project, demo_copy

FIXTURE = Path(__file__).parent / "fixtures" / "recommend_config" / "demo_answers.json"
VOLATILE = ("snapshot_built_at", "built_at", "build_ms", "catalog_version")
BLOCK_START = "# What cross-sell, recommendations, upsell and audiences are built from"


def _canon(*args):
    from canon.server.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _client(project):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    return TestClient(create_app(project, reload_interval_s=0))


# --- 1. the demo's block reproduces the answers of the hard-wired service ------------------------


@pytest.mark.slow
def test_demo_block_reproduces_todays_answers(tmp_path):
    from canon.server.recommend.engine import audience_for_product, audience_for_segment

    want = json.loads(FIXTURE.read_text())
    project = copy_project(tmp_path / "demo")
    demo_copy(project / ".canon" / "demo.duckdb", scale=want["scale"], seed=want["seed"])
    with _client(project) as client:
        for case in want["answers"]:
            if case["method"] == "GET":
                response = client.get(case["path"], params=case["params"])
            else:
                response = client.post(case["path"], json=case["params"])
            assert response.status_code == 200, response.text
            assert _strip(response.json()) == _strip(case["body"]), (case["path"], case["params"])
        snapshot = client.app.state.recommend.store.snapshot
        window = snapshot.window
        got = {"product_1001": audience_for_product(snapshot, window, 1001, salt="fixture", limit=25),
               "segment_champions": audience_for_segment(snapshot, window, "champions", salt="fixture", limit=10),
               "segment_consumer": audience_for_segment(snapshot, window, "consumer", salt="fixture", limit=10)}
        assert got == want["audiences"]
        assert _strip(client.get("/v1/recommendations/snapshot").json()) == _strip(want["snapshot"])


# --- 2. a catalog unlike the demo ----------------------------------------------------------------

BANDS = ("low", "medium", "high")
OTHER_DIMENSIONS = """\
    - {name: title, expr: product_name}
    - {name: department, expr: category}
    - {name: price_band, expr: "CASE WHEN list_price < 80 THEN 'low' WHEN list_price < 400 THEN 'medium' ELSE 'high' END"}
"""
OTHER_METRICS = """\
metrics:
  - name: basket_affinity
    type: affinity
    basket: order
    item: product
    returns: confidence
    filter: "order.status = 'completed'"
  - name: item_orders
    type: simple
    measure: order_item.orders_with_item
    filter: "order.status = 'completed'"

recommendations:
  affinity: basket_affinity
  popularity: item_orders
  time: order.ordered_at
  items:
    id: product.product_id
    name: product.title
    show: [product.department, product.price_band, product.list_price]
    levels: [product.department]
  customers:
    id: customer.customer_id
    show: [customer.account_type]
    cold_start: [customer.account_type]
    audience_segments: [customer.account_type]
  upsell:
    group: product.department
    tier: product.price_band
    order: [low, medium, high]
    price: product.list_price
"""


def _without_block(project: Path) -> None:
    path = project / "metrics" / "recommendations.yml"
    text = path.read_text()
    assert BLOCK_START in text
    path.write_text(text[:text.index(BLOCK_START)])


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """The demo data under other names: only the new names appear in its block."""
    project = copy_project(tmp_path_factory.mktemp("other"))
    _without_block(project)
    products = project / "semantic_models" / "products.yml"
    products.write_text(products.read_text().replace("    - {name: unit_cost, type: number}\n",
                                                     "    - {name: unit_cost, type: number}\n" + OTHER_DIMENSIONS))
    customers = project / "semantic_models" / "customers.yml"
    customers.write_text(customers.read_text().replace(
        '    - {name: segment, description: "consumer, small_business or enterprise."}\n',
        '    - {name: segment, description: "consumer, small_business or enterprise."}\n'
        "    - {name: account_type, expr: \"upper(segment)\"}\n"))
    (project / "metrics" / "shop_recommendations.yml").write_text(OTHER_METRICS)
    demo_copy(project / ".canon" / "demo.duckdb", scale=0.2, seed=5)
    return project


class Hand:
    """The answers by hand: SQL on the raw tables of the warehouse."""

    def __init__(self, path: Path):
        self.con = duckdb.connect(str(path), read_only=True)
        last = self.con.execute("SELECT max(CAST(o.ordered_at AS DATE)) FROM orders o JOIN order_items i "
                                "USING (order_id) WHERE o.status = 'completed'").fetchone()[0]
        self.end, self.start = last, last - dt.timedelta(days=364)
        self.con.execute(f"""CREATE TEMP TABLE lines AS SELECT DISTINCT o.order_id, i.product_id
            FROM orders o JOIN order_items i USING (order_id) WHERE o.status = 'completed'
            AND CAST(o.ordered_at AS DATE) BETWEEN DATE '{self.start}' AND DATE '{self.end}'""")

    def rules_from(self, a: int) -> dict:
        """{B: (confidence, n(A and B))} for A → B over the window's completed orders."""
        rows = self.con.execute("""
            WITH a AS (SELECT order_id FROM lines WHERE product_id = ?)
            SELECT l.product_id, count(*) * 1.0 / (SELECT count(*) FROM a), count(*)
            FROM lines l JOIN a USING (order_id) WHERE l.product_id <> ? GROUP BY 1""", [a, a]).fetchall()
        return {b: (conf, n) for b, conf, n in rows}

    def history(self, customer: int) -> set:
        return {r[0] for r in self.con.execute("""SELECT DISTINCT i.product_id FROM orders o JOIN order_items i
            USING (order_id) WHERE o.status = 'completed' AND o.customer_id = ?""", [customer]).fetchall()}

    def products(self) -> dict:
        return {pid: (cat, float(price)) for pid, cat, price in
                self.con.execute("SELECT product_id, category, list_price FROM products").fetchall()}

    def popularity(self) -> dict:
        return dict(self.con.execute("SELECT product_id, count(*) FROM lines GROUP BY 1").fetchall())


def _band(price: float) -> str:
    return "low" if price < 80 else "medium" if price < 400 else "high"


@pytest.fixture(scope="module")
def other_client(other):
    with _client(other) as client:
        yield client


@pytest.fixture(scope="module")
def hand(other):
    return Hand(other / ".canon" / "demo.duckdb")


@pytest.mark.slow
def test_other_catalog_cross_sell_matches_hand_sql(other_client, hand):
    for product in (1001, 1013, 1031):
        body = other_client.get("/v1/cross-sell", params={"product_id": product, "limit": 15}).json()
        assert body["window"] == {"days": 365, "start": hand.start.isoformat(), "end": hand.end.isoformat()}
        want = hand.rules_from(product)
        assert body["items"], body
        scores = [i["cross_sell_score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        best = sorted(want.values(), reverse=True)[:len(scores)]
        assert all(math.isclose(s, w[0], rel_tol=1e-9) for s, w in zip(scores, best))
        for item in body["items"]:
            conf, n = want[item["product_id"]]
            assert math.isclose(item["cross_sell_score"], conf, rel_tol=1e-9)
            assert item["cross_sell_pair_orders"] == n
            assert {"department", "price_band", "list_price"} <= set(item) and "category" not in item
            assert item["price_band"] == _band(item["list_price"])
    level = other_client.get("/v1/cross-sell", params={"level": "department", "value": "Phones"})
    assert level.status_code == 200 and level.json()["items"], level.text
    bad = other_client.get("/v1/cross-sell", params={"level": "category", "value": "Phones"})
    assert bad.status_code == 400 and "department" in bad.json()["hint"]


@pytest.mark.slow
def test_other_catalog_recommend_and_cold_start(other_client, hand):
    snapshot = other_client.app.state.recommend.store.snapshot
    buyers = sorted(snapshot.history)[:5]
    for cid in buyers:
        body = other_client.get(f"/v1/recommendations/{cid}", params={"limit": 5}).json()
        history = hand.history(cid)
        assert body["strategy"] == "affinity" and body["purchased_products"] == len(history)
        assert body["account_type"] == body["account_type"].upper()
        for item in body["items"]:
            assert item["product_id"] not in history and item["antecedent"]["product_id"] in history
            best = max(hand.rules_from(a).get(item["product_id"], (0, 0))[0] for a in history)
            assert math.isclose(item["cross_sell_score"], best, rel_tol=1e-9)
    cold = sorted(set(snapshot.customers) - set(snapshot.history))[0]
    body = other_client.get(f"/v1/recommendations/{cold}").json()
    assert body["strategy"] == "popular_in_segment" and body["items"]
    assert f"of {body['account_type']} customers" in body["items"][0]["reason"]


@pytest.mark.slow
def test_other_catalog_upsell_follows_the_band_order(other_client, hand):
    snapshot = other_client.app.state.recommend.store.snapshot
    products, pop = hand.products(), hand.popularity()
    rank = {b: i for i, b in enumerate(BANDS)}
    checked = 0
    for cid in sorted(snapshot.history)[:30]:
        body = other_client.get(f"/v1/upsell/{cid}", params={"limit": 3}).json()
        history = hand.history(cid)
        departments = {products[p][0] for p in history}
        assert [g["department"] for g in body["categories"]] == sorted(departments)
        for group in body["categories"]:
            bought = [p for p in history if products[p][0] == group["department"]]
            top = max(rank[_band(products[p][1])] for p in bought)
            top_price = max(products[p][1] for p in bought)
            assert group["highest_tier_bought"] == BANDS[top]
            assert math.isclose(group["highest_list_price_bought"], top_price)
            want = sorted((p for p, (cat, price) in products.items() if cat == group["department"]
                           and rank[_band(price)] > top and p not in history), key=lambda p: (-pop.get(p, 0), p))[:3]
            assert [i["product_id"] for i in group["items"]] == want
            for item in group["items"]:
                assert rank[item["price_band"]] > top
                assert item["expected_uplift"] == round(products[item["product_id"]][1] - top_price, 2)
                checked += 1
    assert checked


@pytest.mark.slow  # a server or the CLI of its own
def test_other_catalog_validates_and_cli_answers(other):
    result = _canon("upsell", "--project", str(other), "--customer", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "highest_list_price_bought" in result.output
    result = _canon("cross-sell", "--project", str(other), "--level", "department", "Phones", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["level"] == "department"


# --- 3. no block: no endpoints, no build, no warning ---------------------------------------------


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("bare"))
    _without_block(project)
    demo_copy(project / ".canon" / "demo.duckdb", scale=0.2, seed=5)
    return project


NO_BLOCK_REQUESTS = [
    ("get", "/v1/cross-sell", {"params": {"product_id": 1001}}),
    ("post", "/v1/cross-sell/cart", {"json": {"product_ids": [1001]}}),
    ("get", "/v1/recommendations/1", {}),
    ("get", "/v1/upsell/1", {}),
    ("get", "/v1/recommendations/snapshot", {}),
    ("post", "/v1/recommendations/refresh", {}),
]


@pytest.mark.slow  # a server or the CLI of its own
def test_no_block_no_endpoints(bare, caplog):
    import threading

    earlier = set(threading.enumerate())  # an earlier test's server may still be winding its build down
    with caplog.at_level(logging.INFO, logger="canon.recommend"):
        with _client(bare) as client:
            building = [t for t in threading.enumerate() if t.name == "canon-recommend-build" and t not in earlier]
            for method, path, kwargs in NO_BLOCK_REQUESTS:
                response = getattr(client, method)(path, **kwargs)
                assert response.status_code == 404, (path, response.text)
                assert "`recommendations:` block" in response.json()["message"]
    assert not building
    assert not [r for r in caplog.records if r.name.startswith("canon.recommend") and r.levelno >= logging.WARNING]
    assert not (bare / ".canon" / "recommend").exists()


@pytest.mark.slow  # a server or the CLI of its own
def test_no_block_feedback_is_still_recorded(bare):
    """Feedback (about recommendations shown by anything) reads nothing the block names: it stays open."""
    with _client(bare) as client:
        response = client.post("/v1/recommendations/feedback",
                               json={"customer_id": 1, "product_id": 1001, "event": "shown"})
    assert response.status_code == 201, response.text
    assert (bare / ".canon" / "recommendation_feedback.jsonl").is_file()


@pytest.mark.slow  # a server or the CLI of its own
def test_no_block_cli_fails_naming_the_block(bare):
    for args in (("cross-sell", "--product", "1001"), ("recommend", "--customer", "1"), ("upsell", "--customer", "1"),
                 ("audience", "--segment", "champions"), ("recommendations", "refresh")):
        result = _canon(*args, "--project", str(bare))
        assert result.exit_code != 0, args
        assert "`recommendations:` block" in result.output, (args, result.output)


# --- 4. names checked at validate time ------------------------------------------------------------


@pytest.mark.parametrize("old, new, expected", [
    ("levels: [product.category, product.brand]", "levels: [product.categroy, product.brand]",
     "recommendations.items.levels: unknown dimension 'product.categroy'"),
    ("cold_start: [customer.segment, customer.country_code]", "cold_start: [customer.segmnt, customer.country_code]",
     "recommendations.customers.cold_start: unknown dimension 'customer.segmnt'"),
    ("affinity: cross_sell_score", "affinity: cross_sell_scor", "recommendations.affinity: 'cross_sell_scor' is not a metric"),
    ("affinity: cross_sell_score", "affinity: cross_sell_lift", "not an affinity metric with `returns: confidence`"),
    ("tier: product.tier", "tier: customer.segment", "is a dimension of 'customer', not of the items"),
    ("time: order.ordered_at", "time: customer.signup_at", "is not the default time of the baskets"),
    ("    price: product.list_price", "    pricee: product.list_price", "unknown field 'pricee' in recommendations.upsell"),
    ("    order: [entry, mid, premium]", "    order: [entry]", "list the tier values, lowest first"),
])
def test_misspelled_block_fails_validate_with_file_line(tmp_path, old, new, expected):
    project = copy_project(tmp_path / "p")
    path = project / "metrics" / "recommendations.yml"
    text = path.read_text()
    assert text.count(old) == 1
    line = text[:text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new))
    result = _canon("validate", "--project", str(project))
    assert result.exit_code != 0
    problem = next((x for x in result.output.splitlines() if expected in x), None)
    assert problem is not None, result.output
    assert problem.startswith("error: metrics/recommendations.yml:")
    assert int(problem.split(":")[2]) == line, (problem, line)
    if "unknown" in expected or "is not a metric" in expected:
        assert "did you mean" in problem


def test_demo_block_validates():
    from canon.compiler.compile import load_catalog

    catalog = load_catalog(Path(__file__).resolve().parents[1])
    block = catalog.recommendations
    assert block is not None and block.affinity == "cross_sell_score"
    assert block.upsell.order == ("entry", "mid", "premium")


# --- upsell by price alone, and no upsell at all (pure engine, a snapshot made by hand) -----------


def _tiny_snapshot(layout):
    from canon.server.recommend.snapshot import AffinitySnapshot, Customer, Product, Window

    prices = {1: 10.0, 2: 20.0, 3: 30.0, 4: 25.0}
    products = {pid: Product(pid, f"item {pid}", {"price": p}, {}, "g", None, p, p) for pid, p in prices.items()}
    window = Window(365, "2025-01-01", "2025-12-31", {"product": {}}, {"product": {3: 5, 4: 9}}, {})
    return AffinitySnapshot("now", 0.0, "v", "w", "2025-12-31", products, {7: Customer(7, {}, (), ())},
                            {7: frozenset({1, 2})}, window, layout=layout)


def test_upsell_by_price_when_no_tier_is_named():
    from canon.server.recommend import engine
    from canon.server.recommend.snapshot import Layout

    snapshot = _tiny_snapshot(Layout(("product",), "pop", group_key="shelf", price_key="price"))
    body = engine.upsell(snapshot, snapshot.window, 7)
    [group] = body["categories"]
    assert group["shelf"] == "g" and group["highest_price_bought"] == 20.0 and group["highest_tier_bought"] is None
    assert [(i["product_id"], i["expected_uplift"]) for i in group["items"]] == [(4, 5.0), (3, 10.0)]  # by popularity


def test_upsell_without_an_upsell_section_is_404():
    from canon.compiler.errors import UnknownNameError
    from canon.server.recommend import engine
    from canon.server.recommend.snapshot import Layout

    snapshot = _tiny_snapshot(Layout(("product",), "pop"))
    with pytest.raises(UnknownNameError, match="no `upsell:`"):
        engine.upsell(snapshot, snapshot.window, 7)
