"""Deprecated metrics answer with a NoticeResponse over the PostgreSQL wire (psycopg 3 receives it)."""

from __future__ import annotations

import psycopg
import pytest
import yaml

from tests.support.servers import build_warehouse, copy_project, free_port, serve, serve_pg


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("pg_notices"))
    sales = root / "metrics" / "sales.yml"
    doc = yaml.safe_load(sales.read_text())
    doc["metrics"].append({"name": "old_revenue", "type": "simple", "label": "Old revenue",
                           "description": "Replaced by revenue.", "owner": "sales-analytics", "tier": "deprecated",
                           "replaced_by": "revenue", "sunset": "2026-12-31", "measure": "order_item.line_revenue",
                           "filter": "order.status = 'completed'"})
    doc["views"][0]["metrics"].append("old_revenue")
    sales.write_text(yaml.safe_dump(doc, sort_keys=False))
    warehouse = build_warehouse(root / "demo.duckdb", scale=0.1)
    with serve_pg(root, warehouse, user="canon", password="canon") as port:
        yield port


def _notices(port: int, sql: str, *, prepare: bool) -> tuple[list, list[str]]:
    seen: list[str] = []
    with psycopg.connect(host="127.0.0.1", port=port, user="canon", password="canon", dbname="canon") as conn:
        conn.add_notice_handler(lambda diag: seen.append(f"{diag.severity}|{diag.sqlstate}|{diag.message_primary}"))
        rows = conn.execute(sql, prepare=prepare).fetchall()
    return rows, seen


@pytest.mark.parametrize("prepare", [False, True], ids=["simple", "extended"])
def test_deprecated_metric_sends_a_notice(port, prepare):
    rows, seen = _notices(port, "SELECT MEASURE(old_revenue) FROM sales", prepare=prepare)
    assert rows and rows[0][0] > 0
    assert len(seen) == 1
    severity, sqlstate, message = seen[0].split("|", 2)
    assert (severity, sqlstate) == ("WARNING", "01000")
    assert "old_revenue" in message and "deprecated" in message and "'revenue'" in message


def test_current_metric_sends_no_notice(port):
    rows, seen = _notices(port, "SELECT MEASURE(revenue) FROM sales", prepare=False)
    assert rows and seen == []


@pytest.mark.slow  # a server of its own
def test_serve_with_pg_port_answers_http_and_sql_alike(tmp_path):
    """`canon serve --pg-port`: one process, one catalog, the same numbers over HTTP and SQL."""
    import httpx

    project = copy_project(tmp_path / "project")
    warehouse = build_warehouse(tmp_path / "demo.duckdb", scale=0.1)
    pg_port = free_port()
    with serve(project, warehouse, "--pg-port", str(pg_port), "--reload-interval", "0") as url:
        http_rows = httpx.post(url + "/v1/query", json={"metrics": ["revenue"], "dimensions": ["product.category"]},
                               timeout=30).json()["rows"]
        with psycopg.connect(host="127.0.0.1", port=pg_port, user="canon", password="canon", dbname="x") as conn:
            sql_rows = conn.execute("SELECT product_category, MEASURE(revenue) FROM sales GROUP BY 1 ORDER BY 1").fetchall()
    assert [[c, float(v)] for c, v in sql_rows] == http_rows
