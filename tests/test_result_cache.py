"""The result cache (issue 14): shared answers, keyed so that nobody sees another user's rows or old data."""

from __future__ import annotations

import os
import time

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from canon.server.http_api import create_app
from canon.server.runtime.result_cache import CacheSettings, ResultCache
from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo

SECRET = "result-cache-secret-result-cache-secret"
SPEND = "SELECT SUM(spend) FROM (SELECT spend, ROW_NUMBER() OVER (PARTITION BY campaign_id, spend_date, country_code " \
        "ORDER BY _etl_loaded_at DESC) AS n FROM ad_spend) t WHERE n = 1"


def test_lru_bytes_ttl_and_invalidation():
    cache = ResultCache(CacheSettings(True, ttl_s=0.3, max_bytes=1000))
    cache.put("a", 1, 90, {"orders"})
    cache.put("b", 2, 90, {"ad_spend"})
    cache.put("huge", 3, 101)  # over a tenth of max_bytes: not kept
    assert cache.get("a") == 1 and cache.get("b") == 2 and cache.get("huge") is None
    for i in range(12):  # 12 × 90 bytes: the least recently used go first
        cache.put(f"k{i}", i, 90)
    assert cache.get("a") is None and cache.stats()["bytes"] <= 1000
    cache.put("o", 4, 10, {"orders", "customers"})
    assert cache.invalidate({"customers"}) == 1 and cache.get("o") is None
    cache.put("t", 5, 10)
    time.sleep(0.35)
    assert cache.get("t") is None  # past its ttl
    assert ResultCache(CacheSettings(False)).enabled is False


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request, tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("cache") / "project")
    with (project / "canon.yml").open("a") as config:
        config.write("cache: {ttl_s: 30}\n"
                     "access: {default: deny, policies: [{name: managers, when: \"user.role = 'manager'\", "
                     "row_filter: 'customer.country_code = {{ user.country }}'}, "
                     "{name: everyone, when: \"user.role = 'analyst'\"}]}\n")
    url = str(shared_demo()) if request.param == "duckdb" else request.getfixturevalue("pg_demo_url")
    os.environ["CANON_API_SECRET"] = SECRET
    try:
        app = create_app(project, url, reload_interval_s=0)
        with TestClient(app) as client:
            yield {"client": client, "app": app, "url": url, "kind": request.param}
    finally:
        os.environ.pop("CANON_API_SECRET", None)


def ask(site, claims: dict, body: dict) -> dict:
    headers = {"Authorization": jwt.encode({"sub": claims.get("country", "a"), **claims}, SECRET, algorithm="HS256")}
    response = site["client"].post("/v1/query", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_repeated_query_is_answered_from_the_cache(site):
    body = {"metrics": ["revenue"], "dimensions": ["product.category"], "where": "order.sales_channel = 'web'"}
    first = ask(site, {"role": "analyst"}, body)
    again = ask(site, {"role": "analyst"}, body)
    assert "cached" not in first and again["cached"] is True and again["rows"] == first["rows"]
    other = ask(site, {"role": "analyst"}, {**body, "where": "order.sales_channel = 'app'"})
    assert "cached" not in other and other["rows"] != first["rows"]


def test_row_filters_never_share_answers(site):
    body = {"metrics": ["revenue"]}
    de = ask(site, {"role": "manager", "country": "DE"}, body)
    fr = ask(site, {"role": "manager", "country": "FR"}, body)
    assert "cached" not in fr and fr["rows"] != de["rows"]
    assert ask(site, {"role": "manager", "country": "DE"}, body)["rows"] == de["rows"]


# PostgreSQL only: its data can change under the server (a DuckDB file is held by the server)
@pytest.mark.parametrize("site", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_new_data_misses_the_cache(site):
    body = {"metrics": ["ad_spend"]}
    site["app"].state.runtime.freshness.refresh()  # the watermark the first answer is stored under
    before = ask(site, {"role": "analyst"}, body)
    assert ask(site, {"role": "analyst"}, body)["cached"] is True
    with psycopg.connect(site["url"], autocommit=True) as conn:
        conn.execute("INSERT INTO ad_spend SELECT campaign_id, spend_date + 1000, country_code, 1000, 0, 0, "
                     "_etl_loaded_at + INTERVAL '1000 days' FROM ad_spend LIMIT 1")
    try:
        site["app"].state.runtime.freshness.refresh()  # what the background monitor does every minute
        after = ask(site, {"role": "analyst"}, body)
        assert "cached" not in after and after["rows"][0][0] == pytest.approx(before["rows"][0][0] + 1000)
        warehouse = open_warehouse(site["url"])
        assert_same(after["rows"], [list(r) for r in warehouse.execute(SPEND)[1]], keys=0)
        warehouse.close()
    finally:
        with psycopg.connect(site["url"], autocommit=True) as conn:
            conn.execute("DELETE FROM ad_spend WHERE spend = 1000 AND impressions = 0 AND clicks = 0")
