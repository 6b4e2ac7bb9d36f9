"""On PostgreSQL, recommendation feedback reaches the warehouse at once (queries run read-only; the
feedback has its own read-write connection), and the recommendation metrics count it."""

from __future__ import annotations

import httpx
import pytest

from tests.support.servers import build_warehouse, copy_project, serve


@pytest.fixture(scope="module")
def site(tmp_path_factory, pg_server_url):
    """A database of its own: the feedback written here must not reach the shared demo database."""
    from canon.server.pg_load import load_demo_into_postgres
    from tests.support.pg_server import create_database

    root = tmp_path_factory.mktemp("pg_feedback")
    build_warehouse(root / "demo.duckdb", scale=0.1)
    database = create_database(pg_server_url, "canon_feedback_test")
    load_demo_into_postgres(root / "demo.duckdb", database)
    project = copy_project(root / "project")
    with serve(project, database, "--reload-interval", "0") as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


def test_feedback_is_written_and_counted(site):
    events = [("shown", 1001), ("shown", 1002), ("shown", 1003), ("shown", 1004), ("clicked", 1002), ("purchased", 1002)]
    for event, product in events:
        response = site.post("/v1/recommendations/feedback",
                             json={"customer_id": 1, "product_id": product, "event": event})
        assert response.status_code == 201, response.text
        assert response.json()["in_warehouse"] is True
    body = site.post("/v1/query", json={"metrics": ["recommendation_ctr", "recommendation_conversion_rate"],
                                       "where": ["customer.customer_id = 1"]}).json()
    assert body["rows"] == [[0.25, 0.25]], body

