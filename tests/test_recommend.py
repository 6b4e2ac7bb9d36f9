"""Cross-sell, cart additions, recommendations and upsell over HTTP, against the reference implementation
in test_recommend_reference.py (raw SQL + pandas on the same demo warehouse)."""

from __future__ import annotations

import math
import random
import warnings

import pytest

from tests.test_recommend_reference import Reference, make_project

warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "recommend", scale=0.5, seed=11)


@pytest.fixture(scope="module")
def ref(project):
    return Reference(project / ".canon" / "demo.duckdb")


@pytest.fixture(scope="module")
def client(project):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    app = create_app(project, reload_interval_s=0)
    with TestClient(app) as c:
        yield c


def _same(got: list[dict], want: list[tuple], *, antecedent: bool = True):
    assert [i["product_id"] for i in got] == [b for b, *_ in want]
    for item, (b, a, conf, lift) in zip(got, want):
        if antecedent:
            assert item["antecedent"]["product_id"] == a
        assert math.isclose(item["cross_sell_score"], conf, rel_tol=1e-9)
        assert math.isclose(item["cross_sell_lift"], lift, rel_tol=1e-9)


def test_window_defaults_to_last_365_days_of_data(client, ref):
    body = client.get("/v1/cross-sell", params={"product_id": 1001}).json()
    assert body["window"] == {"days": 365, "start": ref.start.isoformat(), "end": ref.last_day.isoformat()}


@pytest.mark.parametrize("product_id", [1001, 1013, 1031, 1065, 1100])
def test_cross_sell_matches_reference(client, ref, product_id):
    body = client.get("/v1/cross-sell", params={"product_id": product_id, "limit": 15}).json()
    _same(body["items"], ref.cross_sell(product_id, 15), antecedent=False)
    for item in body["items"]:
        conf, sup, lift, k = ref.rules[product_id][item["product_id"]]
        assert item["cross_sell_pair_orders"] == k
        assert math.isclose(item["cross_sell_support"], sup, rel_tol=1e-9)
        assert item["antecedent_orders"] == ref.count[product_id]
        assert item["consequent_orders"] == ref.count[item["product_id"]]
        assert item["baskets"] == ref.n


def test_cross_sell_min_support_and_name(client, ref):
    min_support = 0.002
    body = client.get("/v1/cross-sell", params={"product_id": "lumen smartphone go", "limit": 50,
                                                "min_support": min_support}).json()
    assert body["antecedent"]["product_id"] == 1001
    _same(body["items"], ref.cross_sell(1001, 50, min_support), antecedent=False)
    assert all(i["cross_sell_support"] >= min_support for i in body["items"])


def test_cross_sell_other_window(client, project):
    shorter = Reference(project / ".canon" / "demo.duckdb", days=120)
    body = client.get("/v1/cross-sell", params={"product_id": 1001, "days": 120, "limit": 10}).json()
    assert body["window"]["days"] == 120 and body["window"]["start"] == shorter.start.isoformat()
    _same(body["items"], shorter.cross_sell(1001, 10), antecedent=False)


def test_cross_sell_by_category(client, ref):
    lines = ref.baskets.merge(ref.products[["category"]], left_on="product_id", right_index=True)
    cats = lines[["order_id", "category"]].drop_duplicates()
    n_phones = cats[cats["category"] == "Phones"]["order_id"].nunique()
    both = cats[cats["category"] == "Phones"].merge(cats[cats["category"] == "Phone Accessories"], on="order_id")
    body = client.get("/v1/cross-sell", params={"level": "category", "value": "Phones", "limit": 20}).json()
    item = next(i for i in body["items"] if i["category"] == "Phone Accessories")
    assert item["cross_sell_pair_orders"] == len(both)
    assert math.isclose(item["cross_sell_score"], len(both) / n_phones)
    assert body["items"] == sorted(body["items"], key=lambda i: (-i["cross_sell_score"], -i["cross_sell_lift"],
                                                                 -i["product_purchase_frequency"], i["category"]))
    assert client.get("/v1/cross-sell", params={"level": "brand", "value": "Lumen"}).status_code == 200


@pytest.mark.parametrize("cart", [[1001], [1001, 1013], [1031, 1065, 1100], [1013, 1025, 1001, 1002]])
def test_cart_additions_match_reference(client, ref, cart):
    body = client.post("/v1/cross-sell/cart", json={"product_ids": cart, "limit": 12}).json()
    _same(body["items"], ref.cart(cart, 12))
    assert not {i["product_id"] for i in body["items"]} & set(cart)
    for item in body["items"]:
        assert item["antecedent"]["product_name"] in item["reason"]


def test_recommendations_match_reference(client, ref):
    rng = random.Random(5)
    customers = rng.sample(sorted(ref.history), 60)
    for cid in customers:
        body = client.get(f"/v1/recommendations/{cid}", params={"limit": 8}).json()
        assert body["strategy"] == "affinity"
        want = ref.recommend(cid, 8)
        _same(body["items"], want)
        for item, (b, a, *_rest) in zip(body["items"], want):
            assert a in ref.history[cid] and b not in ref.history[cid]
            assert ref.products.loc[a, "product_name"] in item["reason"]  # the explanation names the antecedent


def test_customer_without_history_gets_segment_country_favourites(client, ref):
    without = [c for c in ref.customers.index if int(c) not in ref.history][:5]
    assert without, "the demo has customers without completed orders"
    for cid in without:
        body = client.get(f"/v1/recommendations/{int(cid)}", params={"limit": 6}).json()
        assert body["strategy"] == "popular_in_segment"
        assert [i["product_id"] for i in body["items"]] == ref.popular_for(int(cid), 6)
        assert "no completed orders yet" in body["items"][0]["reason"]
        assert body["segment"] in body["items"][0]["reason"]


def test_upsell_matches_reference(client, ref):
    rng = random.Random(9)
    for cid in rng.sample(sorted(ref.history), 40):
        body = client.get(f"/v1/upsell/{cid}", params={"limit": 4}).json()
        want = ref.upsell(cid, 4)
        got = {c["category"]: [(i["product_id"], i["expected_uplift"]) for i in c["items"]] for c in body["categories"]}
        assert got == want
        for category in body["categories"]:
            for item in category["items"]:
                assert TIER_RANK[item["tier"]] > TIER_RANK[category["highest_tier_bought"]]


TIER_RANK = {"entry": 0, "mid": 1, "premium": 2}


@pytest.mark.parametrize("method, path, kwargs, where", [
    ("get", "/v1/recommendations/987654321", {}, "customer_id"),
    ("get", "/v1/upsell/987654321", {}, "customer_id"),
    ("get", "/v1/cross-sell", {"params": {"product_id": 42}}, "product_id"),
    ("get", "/v1/cross-sell", {"params": {"product_id": "No Such Thing"}}, "product_id"),
    ("get", "/v1/cross-sell", {"params": {"level": "category", "value": "Spaceships"}}, "value"),
    ("post", "/v1/cross-sell/cart", {"json": {"product_ids": [1001, 5, 6]}}, "product_ids"),
])
def test_unknown_ids_are_404(client, method, path, kwargs, where):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 404, response.text
    assert where in response.json()["message"]
    if "cart" in path:
        assert "5, 6" in response.json()["message"]


@pytest.mark.parametrize("method, path, kwargs, field", [
    ("get", "/v1/recommendations/abc", {}, "customer_id"),
    ("get", "/v1/recommendations/1", {"params": {"limit": 0}}, "limit"),
    ("get", "/v1/cross-sell", {"params": {"product_id": 1001, "min_support": 2}}, "min_support"),
    ("get", "/v1/cross-sell", {"params": {"product_id": 1001, "days": 0}}, "days"),
    ("get", "/v1/cross-sell", {"params": {"level": "planet", "value": "x"}}, "level"),
    ("get", "/v1/cross-sell", {}, "product_id"),
    ("post", "/v1/cross-sell/cart", {"json": {"product_ids": []}}, "product_ids"),
    ("post", "/v1/cross-sell/cart", {"json": {"product_ids": ["x"]}}, "product_ids"),
    ("post", "/v1/cross-sell/cart", {"json": {"products": [1001]}}, "product_ids"),
    ("post", "/v1/recommendations/feedback", {"json": {"customer_id": 1, "product_id": 1001, "event": "liked"}}, "event"),
])
def test_bad_parameters_are_4xx_naming_the_field(client, method, path, kwargs, field):
    response = getattr(client, method)(path, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["message"]


def test_refresh_swaps_atomically(client):
    """Readers during a refresh always get a complete answer from the old or the new snapshot."""
    import threading

    before = client.get("/v1/recommendations/snapshot").json()["refreshes"]
    errors, answers = [], []

    def read():
        for _ in range(40):
            r = client.get("/v1/cross-sell", params={"product_id": 1001, "limit": 5})
            (answers if r.status_code == 200 and len(r.json()["items"]) == 5 else errors).append(r.status_code)

    reader = threading.Thread(target=read)
    reader.start()
    assert client.post("/v1/recommendations/refresh").status_code == 200
    reader.join()
    assert not errors and answers
    assert client.get("/v1/recommendations/snapshot").json()["refreshes"] == before + 1


def test_a_restart_on_unchanged_data_serves_the_saved_snapshot_without_rebuilding(client, project):
    """Start-up (issue 14): the snapshot persisted from this catalog and DuckDB file is served at once,
    and nothing is rebuilt until the schedule or a refresh says so."""
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    first = client.get("/v1/cross-sell", params={"product_id": 1001, "limit": 5}).json()
    with TestClient(create_app(project, reload_interval_s=0)) as again:
        import threading

        building = [t for t in threading.enumerate() if t.name == "canon-recommend-build" and t.is_alive()]
        status = again.get("/v1/recommendations/snapshot").json()
        assert status["refreshes"] == 0 and not building, status  # published from disk, nothing being built
        assert again.get("/v1/cross-sell", params={"product_id": 1001, "limit": 5}).json()["items"] == first["items"]
