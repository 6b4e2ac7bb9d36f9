"""The real `canon` command, run as a user runs it (a subprocess), against a small demo warehouse."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest
import sqlglot

from canon.compiler.compile import load_catalog
from tests.support.cli import ROOT, assert_clean_failure, canon, demo_warehouse

pytestmark = pytest.mark.slow  # every test runs the canon CLI as a subprocess (about a second each)


@pytest.fixture(scope="module")
def warehouse() -> Path:
    return demo_warehouse()


def query_json(warehouse, *args) -> dict:
    result = canon("query", *args, "--format", "json", warehouse=warehouse)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_query_json_shape(warehouse):
    body = query_json(warehouse, "-m", "revenue", "-m", "order_count", "--by", "product.category",
                      "--by", "metric_time.month")
    assert set(body) == {"columns", "rows", "sql", "elapsed_ms"}
    assert body["columns"] == [
        {"name": "product.category", "type": "string"},
        {"name": "metric_time.month", "type": "time"},
        {"name": "revenue", "type": "number"},
        {"name": "order_count", "type": "number"},
    ]
    assert body["rows"], "the demo has orders"
    for category, month, revenue, orders in body["rows"]:
        assert isinstance(category, str) or category is None
        assert isinstance(month, str) and len(month) == 10  # ISO date
        assert isinstance(revenue, (int, float)) and not isinstance(revenue, bool) or revenue is None
        assert isinstance(orders, int) and not isinstance(orders, bool) or orders is None
    assert isinstance(body["sql"], str) and sqlglot.parse_one(body["sql"], read="duckdb") is not None
    assert isinstance(body["elapsed_ms"], (int, float)) and body["elapsed_ms"] >= 0


def test_query_json_numbers_are_json_numbers(warehouse):
    result = canon("query", "-m", "aov", "--by", "customer.segment", "--format", "json", warehouse=warehouse)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert all(isinstance(row[1], float) for row in rows if row[1] is not None)
    assert '"' + str(rows[0][1]) + '"' not in result.stdout  # never quoted


def test_query_matches_the_warehouse(warehouse):
    """The CLI's total is the hand-written SQL's total on the same file."""
    body = query_json(warehouse, "-m", "revenue")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        expected = con.execute(
            "SELECT SUM(i.quantity * i.unit_price - i.discount_amount) FROM order_items i "
            "JOIN orders o ON o.order_id = i.order_id WHERE o.status = 'completed'").fetchone()[0]
    finally:
        con.close()
    assert body["columns"] == [{"name": "revenue", "type": "number"}]
    assert body["rows"][0][0] == pytest.approx(float(expected))


def test_query_csv(warehouse):
    result = canon("query", "-m", "revenue", "--by", "product.category", "--format", "csv", warehouse=warehouse)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["product.category", "revenue"]
    assert len(rows) > 2
    float(rows[1][1])


def test_query_table(warehouse):
    result = canon("query", "-m", "revenue", "--by", "product.category", warehouse=warehouse)
    assert result.returncode == 0, result.stderr
    assert "product.category" in result.stdout and "revenue" in result.stdout
    assert "row(s) in" in result.stdout


def test_order_descending_and_limit(warehouse):
    body = query_json(warehouse, "-m", "revenue", "--by", "product.category", "--order", "-revenue",
                      "--limit", "3")
    values = [row[1] for row in body["rows"]]
    assert len(values) == 3
    assert values == sorted(values, reverse=True)
    everything = query_json(warehouse, "-m", "revenue", "--by", "product.category", "--order", "-revenue")
    assert everything["rows"][:3] == body["rows"]
    assert len(everything["rows"]) > 3


def test_order_ascending_by_dimension(warehouse):
    body = query_json(warehouse, "-m", "revenue", "--by", "product.category", "--order", "product.category")
    names = [row[0] for row in body["rows"]]
    assert names == sorted(names)


def test_metrics_from_different_facts(warehouse):
    body = query_json(warehouse, "-m", "revenue", "-m", "ad_spend", "-m", "lead_count", "--by", "metric_time.month",
                      "--start", "2024-01-01", "--end", "2024-12-31")
    assert [c["name"] for c in body["columns"]] == ["metric_time.month", "revenue", "ad_spend", "lead_count"]
    months = [row[0] for row in body["rows"]]
    assert len(months) == len(set(months)), "one row per month"
    assert all("2024-01-01" <= m <= "2024-12-01" for m in months)
    assert any(row[2] for row in body["rows"]) and any(row[1] for row in body["rows"])


def test_where_filter(warehouse):
    everything = query_json(warehouse, "-m", "revenue")["rows"][0][0]
    some = query_json(warehouse, "-m", "revenue", "--where", "customer.segment = 'enterprise'")["rows"][0][0]
    assert 0 < some < everything


def test_affinity_query(warehouse):
    body = query_json(warehouse, "-m", "cross_sell_score", "--by", "antecedent.category", "--by",
                      "consequent.category", "--order", "-cross_sell_score", "--limit", "5")
    assert [c["name"] for c in body["columns"]] == ["antecedent.category", "consequent.category", "cross_sell_score"]
    assert all(0 <= row[2] <= 1 and row[0] != row[1] for row in body["rows"])


def test_missing_warehouse_says_run_demo(tmp_path):
    result = canon("query", "-m", "revenue", warehouse=tmp_path / "missing.duckdb")
    [message] = assert_clean_failure(result)
    assert "does not exist" in message and "canon demo" in message


def test_default_warehouse_is_in_the_project(tmp_path):
    """With no CANON_WAREHOUSE, the demo file of the project is used (and its absence explained)."""
    project = tmp_path / "project"
    for folder in ("semantic_models", "metrics"):
        (project / folder).mkdir(parents=True)
        for path in (ROOT / folder).glob("*.yml"):
            (project / folder / path.name).write_text(path.read_text())
    if (ROOT / "canon.yml").is_file():  # project settings (time spine, calendar) travel with it
        (project / "canon.yml").write_text((ROOT / "canon.yml").read_text())
    result = canon("query", "-m", "revenue", "--project", str(project))
    [message] = assert_clean_failure(result)
    assert str(project / ".canon" / "demo.duckdb") in message and "canon demo" in message


def test_compile_postgres_prints_sql_that_parses():
    result = canon("compile", "-m", "revenue", "-m", "ad_spend", "--by", "metric_time.month", "--dialect", "postgres")
    assert result.returncode == 0, result.stderr
    statements = sqlglot.parse(result.stdout, read="postgres")
    assert len([s for s in statements if s is not None]) == 1
    assert "revenue" in result.stdout and "ad_spend" in result.stdout


def test_compile_needs_no_warehouse(tmp_path):
    result = canon("compile", "-m", "revenue", warehouse=tmp_path / "missing.duckdb")
    assert result.returncode == 0, result.stderr
    sqlglot.parse_one(result.stdout, read="duckdb")


def test_demo_writes_a_file_and_prints_counts(tmp_path):
    target = tmp_path / "small.duckdb"
    result = canon("demo", "--path", str(target), "--scale", "0.05")
    assert result.returncode == 0, result.stderr
    assert target.is_file()
    assert str(target) in result.stdout
    counts = {}
    for line in result.stdout.splitlines()[1:]:
        name, number, unit = line.split()
        assert unit == "rows"
        counts[name] = int(number.replace(",", ""))
    assert {"customers", "products", "orders", "order_items", "campaigns", "ad_spend", "leads"} <= set(counts)
    con = duckdb.connect(str(target), read_only=True)
    try:
        for table in ("orders", "order_items", "customers"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == counts[table] > 0
    finally:
        con.close()


def test_demo_rejects_bad_scale(tmp_path):
    result = canon("demo", "--path", str(tmp_path / "x.duckdb"), "--scale", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_metrics_json_lists_every_metric():
    result = canon("metrics", "--format", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    catalog = load_catalog(ROOT)
    assert [m["name"] for m in listed] == sorted(catalog.metrics)
    for entry in listed:
        assert {"name", "type", "tier", "owner", "label", "description"} <= set(entry)
        assert entry["tier"] in ("draft", "verified", "certified", "deprecated")
        assert entry["owner"], f"metric {entry['name']} has no owner"
    revenue = next(m for m in listed if m["name"] == "revenue")
    assert revenue["owner"] == "sales-analytics" and revenue["tier"] == "certified" and revenue["type"] == "simple"


def test_metrics_table():
    result = canon("metrics", env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    assert "revenue" in result.stdout and "cross_sell_score" in result.stdout


def test_version_and_help():
    assert canon("--version").returncode == 0
    result = canon("--help")
    assert result.returncode == 0
    for command in ("query", "compile", "validate", "demo", "metrics"):
        assert command in result.stdout
