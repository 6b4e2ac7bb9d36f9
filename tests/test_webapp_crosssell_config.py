"""The cross-sell page builds itself from the catalog's `recommendations:` block (issue 15).

`GET /v1/recommendations/config` says what the block names (the affinity metric and a lift metric with
the same rules, the item and customer dimensions, the levels `/v1/cross-sell?level=` takes) and the fixed
keys the answers carry; server/webapp/static/pages/crosssell.js reads it once and assumes no demo name.
- the demo: the demo's names; a caller denied the lift metric gets none, one denied the affinity metric a 403;
- the bakery of tests/test_init_affinity.py (receipts of SKUs by family, no lift metric): its own names;
- without the block: a 404 naming it;
- the answer keys the config names are the ones the engine's answers carry;
- in Chromium (slow): the bakery's page (levels, heatmap by sku_confidence, tables) as the API answers, and
  the page of a catalog without the block, which says recommendations are not configured.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from canon.server.recommend.routes import ANSWER_KEYS
from canon.server.webapp.routes import STATIC
from tests.support.project import copy_project, shared_demo
from tests.test_init_affinity import METRICS, _build
from tests.test_recommend_config import _client
from tests.test_webapp_browser import browser  # noqa: F401 — the headless Chromium fixture, one per module

URL = "/v1/recommendations/config"
PAGE = STATIC / "pages" / "crosssell.js"
SECRET = "test-secret-for-the-cross-sell-config-0123456789"
POLICIES = """
access:
  default: deny
  policies:
    - name: analysts
      when: "user.role = 'analyst'"
    - name: interns
      when: "user.role = 'intern'"
      deny: [cross_sell_lift]
    - name: outsiders
      when: "user.role = 'outsider'"
      deny: [cross_sell_score]
"""
SKU_LIFT = "  - {name: sku_lift, type: affinity, basket: receipt, item: sku, returns: lift}\n"
BAKERY = METRICS.replace(SKU_LIFT, "")  # no lift metric: the page's heatmap falls back to sku_confidence
assert BAKERY != METRICS


def bearer(claims: dict) -> dict:
    return {"Authorization": "Bearer " + jwt.encode({**claims, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")}


def _bakery_copy(source: Path, root: Path, metrics: str) -> Path:
    """A copy of the bakery project and its warehouse under `root` (each app or server its own DuckDB
    file), with `metrics` as metrics/baskets.yml."""
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "bakery.duckdb"
    shutil.copy(source.parent / "bakery.duckdb", warehouse)
    project = root / "project"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns(".canon"))
    (project / "canon.yml").write_text(f"warehouse: {json.dumps(str(warehouse))}\n")
    (project / "metrics" / "baskets.yml").write_text(metrics)
    return project


@pytest.fixture(scope="module")
def bakery(tmp_path_factory) -> Path:
    """`canon init` over the bakery warehouse, plus its metrics and block (no lift metric)."""
    from canon.server.cli import main

    root = tmp_path_factory.mktemp("bakery_page")
    _build(root / "bakery.duckdb")
    project = root / "project"
    result = CliRunner().invoke(main, ["init", str(project), "--warehouse", str(root / "bakery.duckdb")])
    assert result.exit_code == 0, result.output
    (project / "metrics" / "baskets.yml").write_text(BAKERY)
    return project


@pytest.fixture(scope="module")
def bakery_http(bakery, tmp_path_factory):
    with _client(_bakery_copy(bakery, tmp_path_factory.mktemp("bakery_http"), BAKERY)) as client:
        yield client


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("crosssell_demo") / "analytics")
    with (project / "canon.yml").open("a") as config:
        config.write(POLICIES)
    from canon.server.http_api import create_app

    from fastapi.testclient import TestClient

    # the secret is read as the app starts: set only then, so the other apps of this module are open
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CANON_API_SECRET", SECRET)
        client = TestClient(create_app(project, str(shared_demo(0.2)), reload_interval_s=0)).__enter__()
    try:
        yield client
    finally:  # the snapshot build the app started: ended before the app is (no build left past the test)
        client.app.state.recommend.store.wait(60)
        client.__exit__(None, None, None)


def _ok(client, path, **kwargs) -> dict:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, (path, response.text)
    return response.json()


# --- the endpoint ---------------------------------------------------------------------------------------------


def test_the_demo_config_names_the_demos_block(demo):
    from canon.server.recommend.snapshot import Layout

    body = _ok(demo, URL, headers=bearer({"sub": "ann", "role": "analyst"}))
    assert (body["affinity"], body["lift"], body["popularity"], body["basket"], body["item_level"]) == (
        "cross_sell_score", "cross_sell_lift", "product_purchase_frequency", "order", "product")
    assert body["items"]["id"] == "product.product_id" and body["items"]["name"] == "product.product_name"
    assert body["items"]["levels"] == [{"name": "category", "ref": "product.category"},
                                       {"name": "brand", "ref": "product.brand"}]
    assert [d["name"] for d in body["items"]["show"]] == ["category", "subcategory", "brand", "tier", "list_price"]
    assert body["customers"] == {"id": "customer.customer_id", "show": [
        {"name": "segment", "ref": "customer.segment"}, {"name": "country_code", "ref": "customer.country_code"},
        {"name": "rfm_segment", "ref": "customer.rfm_segment"}]}
    assert body["answer_keys"] == ANSWER_KEYS
    # the level names are exactly the ones /v1/cross-sell?level= accepts (the snapshot's layout)
    layout = Layout.of(demo.app.state.runtime.catalog.recommendations)
    assert [body["item_level"], *(lvl["name"] for lvl in body["items"]["levels"])] == list(layout.levels)


def test_the_config_goes_through_the_recommendations_access_check(demo):
    assert demo.get(URL).status_code == 401  # a token is required, as on every recommendation endpoint
    assert _ok(demo, URL, headers=bearer({"sub": "ivy", "role": "intern"}))["lift"] is None  # denied the lift
    refused = demo.get(URL, headers=bearer({"sub": "otto", "role": "outsider"}))
    assert refused.status_code == 403 and "cross_sell_score" in refused.json()["message"], refused.text
    nobody = demo.get(URL, headers=bearer({"sub": "nina", "role": "none"}))
    assert nobody.status_code == 403, nobody.text


def test_the_config_is_in_the_openapi(demo):
    operation = demo.get("/openapi.json").json()["paths"][URL]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RecommendationsConfig")
    assert {"403", "404"} <= set(operation["responses"])


def test_the_bakery_config_names_the_bakerys_block(bakery_http):
    assert _ok(bakery_http, URL) == {
        "affinity": "sku_confidence", "lift": None, "popularity": "receipt_line_count", "basket": "receipt",
        "item_level": "product",
        "items": {"id": "sku.sku_id", "name": "sku.sku_name",
                  "show": [{"name": "family", "ref": "sku.family"}, {"name": "price_band", "ref": "sku.price_band"}],
                  "levels": [{"name": "family", "ref": "sku.family"}]},
        "customers": {"id": "shopper.shopper_id", "show": [{"name": "club", "ref": "shopper.club"}]},
        "answer_keys": ANSWER_KEYS}


def test_the_lift_is_the_one_over_the_same_baskets_items_and_filter(bakery, tmp_path):
    """A lift metric over other baskets (a filter) is not the block's lift, even first by name; a denied one
    is not named."""
    from canon.compiler.compile import load_catalog
    from canon.server.recommend.routes import lift_metric
    from canon.server.runtime.access import Grant

    other = ("  - {name: a_bread_lift, type: affinity, basket: receipt, item: sku, returns: lift,"
             " filter: \"sku.family = 'bread'\"}\n")
    project = _bakery_copy(bakery, tmp_path, METRICS.replace(SKU_LIFT, SKU_LIFT + other))
    catalog = load_catalog(project)
    assert "a_bread_lift" in catalog.metrics
    assert lift_metric(catalog, catalog.recommendations, Grant()) == "sku_lift"
    denied = Grant(open=False, policies=("p",), denies=(("sku_lift",),))
    assert lift_metric(catalog, catalog.recommendations, denied) is None


def test_without_the_block_the_config_is_a_404_naming_it(bakery, tmp_path):
    project = _bakery_copy(bakery, tmp_path, BAKERY[:BAKERY.index("recommendations:")])
    with _client(project) as client:
        response = client.get(URL)
    assert response.status_code == 404, response.text
    assert "`recommendations:` block" in response.json()["message"]


def test_the_answers_carry_the_keys_the_config_names(bakery_http):
    from canon.server.recommend.snapshot import Rule

    keys = _ok(bakery_http, URL)["answer_keys"]
    metrics = Rule("a", "b", 0.5, 0.25, 2.0, 3, 6, 7, 12).metrics()
    assert [metrics[keys[k]] for k in ("confidence", "support", "lift", "pair_count")] == [0.5, 0.25, 2.0, 3]
    assert bakery_http.post("/v1/recommendations/refresh").status_code == 200
    family = _ok(bakery_http, "/v1/cross-sell", params={"level": "family", "value": "bread"})
    assert keys["popularity"] in family["antecedent"] and family["items"]
    for item in family["items"]:
        assert {"family", keys["confidence"], keys["lift"], keys["support"], keys["pair_count"]} <= set(item)
    sku = _ok(bakery_http, "/v1/cross-sell", params={"level": "product", "value": "croissant"})
    assert sku["antecedent"][keys["item_name"]] == "croissant" and keys["item_id"] in sku["antecedent"]
    assert all({keys["item_id"], keys["item_name"], "family"} <= set(i) for i in sku["items"])
    cold = _ok(bakery_http, "/v1/recommendations/41")  # no receipt yet: popular in the club
    assert cold["items"] and all(keys["popularity_in_group"] in i and keys["item_name"] in i for i in cold["items"])
    warm = _ok(bakery_http, "/v1/recommendations/1")
    assert warm["items"] and all(keys["confidence"] in i for i in warm["items"])


def test_the_page_holds_no_demo_name():
    """A guard; the proof is the browser test on the bakery below."""
    text = PAGE.read_text()
    for demo_name in ("product.", "customer.", "category", "brand", "cross_sell_", "product_name", "product_id",
                      "country_code", "segment", "order"):
        assert not re.search(re.escape(demo_name), text, re.IGNORECASE), demo_name
    assert '"/v1/recommendations/config"' in text


# --- in Chromium ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sites(bakery, tmp_path_factory):
    """Two servers: the bakery with its block, and without it."""
    from tests.support.servers import serve

    root = tmp_path_factory.mktemp("bakery_sites")
    with_block = _bakery_copy(bakery, root / "with", BAKERY)
    without = _bakery_copy(bakery, root / "without", BAKERY[:BAKERY.index("recommendations:")])
    import httpx

    with serve(with_block, None, "--reload-interval", "0") as url, \
            serve(without, None, "--reload-interval", "0") as bare_url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield {"url": url, "client": client}, {"url": bare_url}


def _texts(browser, selector: str) -> list[str]:
    return browser.js(f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent)")


@pytest.mark.slow  # a browser and two servers of their own
def test_the_bakery_page_is_built_from_its_block(browser, sites):
    from tests.test_webapp_browser import SHOTS, visit

    site, _ = sites
    api = site["client"]
    start = len(browser.events)
    visit(browser, site, "cross-sell?value=bread&customer=1", "cross-sell", None)
    # the levels: the first level is the default, then the SKUs themselves
    assert browser.js("[...document.querySelectorAll('select[name=level] option')].map(o => [o.value, o.textContent])") \
        == [["family", "family"], ["product", "sku (id or name)"]]
    assert browser.js("document.querySelector('select[name=level]').value") == "family"
    assert browser.js("document.querySelector('label[for=' + document.querySelector('input[name=customer]').id + ']')"
                       ".textContent") == "Shopper id"
    # the heatmap: family pairs by sku_confidence (no lift metric), one cell per pair the API answers
    browser.wait("document.querySelector('#heatmap').dataset.question", "the heatmap")
    question = json.loads(browser.js("document.querySelector('#heatmap').dataset.question"))
    assert question == {"metrics": ["sku_confidence"], "dimensions": ["antecedent.family", "consequent.family"]}
    assert browser.js("document.getElementById('h-heat').textContent") == "Family pairs: confidence"
    cells = browser.js("[...document.querySelectorAll('#heatmap rect.cell')]"
                        ".map(r => [r.dataset.row, r.dataset.col, Number(r.dataset.value)])")
    rows = api.post("/v1/query", json=question).json()["rows"]
    assert rows and sorted(map(tuple, cells)) == sorted(map(tuple, rows))
    # bought with the bread family: the families the API answers, in its order
    assert _texts(browser, "#pairs thead th") == ["family", "confidence", "lift", "support", "receipts with both"]
    pairs = api.get("/v1/cross-sell", params={"level": "family", "value": "bread", "limit": 15}).json()
    assert pairs["items"]
    assert _texts(browser, "#pairs tbody tr td:first-child") == [i["family"] for i in pairs["items"]]
    assert "receipts hold it" in browser.js("document.querySelector('#pairs .meta').textContent")
    # shopper 1's recommendations: the SKU names and families the API answers
    assert _texts(browser, "#recs thead th") == ["sku", "family", "score", "why"]
    recs = api.get("/v1/recommendations/1", params={"limit": 10}).json()
    assert recs["items"]
    assert _texts(browser, "#recs tbody tr td:first-child") == [i["product_name"] for i in recs["items"]]
    assert _texts(browser, "#recs tbody tr td:nth-child(2)") == [i["family"] for i in recs["items"]]
    # suggestions: the level's values, then the SKU names once the level is the SKUs
    families = api.get("/v1/dimensions/sku.family/values").json()["values"]
    browser.wait(f"document.querySelectorAll('#cs-values option').length === {len(families)}", "family values")
    assert sorted(_texts_values(browser)) == sorted(families)
    browser.screenshot(SHOTS / "cross-sell-other-catalog.png")
    browser.js("(() => { const s = document.querySelector('select[name=level]'); s.value = 'product';"
                " s.dispatchEvent(new Event('change')); })()")
    browser.wait("[...document.querySelectorAll('#cs-values option')].some(o => o.value === 'croissant')", "SKU names")
    # a cell shows its row's pairs at the first level
    row = browser.js("document.querySelector('#heatmap rect.cell').dataset.row")
    browser.js("document.querySelector('#heatmap rect.cell').dispatchEvent(new MouseEvent('click'))")
    browser.wait(f"document.querySelector('#pairs h2') && document.querySelector('#pairs h2').textContent === "
                  f"{json.dumps('Bought with ' + row)}", "the cell's pairs")
    assert browser.js("document.querySelector('select[name=level]').value") == "family"
    assert not browser.problems(site["url"], since=start)


def _texts_values(browser) -> list[str]:
    return browser.js("[...document.querySelectorAll('#cs-values option')].map(o => o.value)")


@pytest.mark.slow  # a browser and two servers of their own
def test_without_the_block_the_page_says_recommendations_are_not_configured(browser, sites):
    from tests.test_webapp_browser import visit

    _, bare = sites
    visit(browser, bare, "cross-sell?level=family&value=bread", "cross-sell", refused=URL)
    note = browser.js("document.getElementById('not-configured').innerText")
    assert "not configured" in note and "`recommendations:` block" in note
    assert browser.js("document.getElementById('heatmap')") is None
