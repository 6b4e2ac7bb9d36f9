"""Saved-query exports (issue 18): a saved query's answer written to Parquet, CSV or a warehouse table
(DuckDB and PostgreSQL), equal to hand-written SQL; replaced whole on each run; run on a schedule by the
server; each export's freshness in `/v1/status` and `canon exports status`, kept across restarts."""

from __future__ import annotations

import json
import shutil

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from canon.compiler.errors import CanonError
from canon.server.runtime import Runtime
from canon.server.runtime.exports import Exports
from canon.server.warehouses import open_warehouse
from tests.support.cli import canon
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo

SAVED = """saved_queries:
  - name: coffee_spend
    description: Revenue of completed coffee lines by country and month.
    metrics: [revenue]
    dimensions: [customer.country_code, metric_time.month]
    where: "product.category = 'Coffee'"
    exports:
      - {{name: coffee_spend_parquet, file: exports/coffee_spend.parquet, every: 1h}}
      - {{name: coffee_spend_csv, file: exports/coffee_spend.csv}}
      - {{name: coffee_spend_table, table: {schema}.coffee_spend}}
"""
HAND = ("SELECT c.country_code, CAST(DATE_TRUNC('month', o.ordered_at) AS DATE), "
        "SUM(oi.quantity * oi.unit_price - oi.discount_amount) FROM order_items oi "
        "JOIN orders o ON o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
        "JOIN customers c ON c.customer_id = o.customer_id WHERE o.status = 'completed' AND p.category = 'Coffee' "
        "GROUP BY 1, 2")


def project_with_exports(tmp_path, schema: str = "canon_exports"):
    project = copy_project(tmp_path / "project")
    (project / "metrics" / "exports.yml").write_text(SAVED.format(schema=schema))
    return project


def hand(url: str) -> list:
    warehouse = open_warehouse(url)
    try:
        return [[a, str(b), c] for a, b, c in warehouse.execute(HAND)[1]]
    finally:
        warehouse.close()


def as_rows(table) -> list:
    return [[r["customer.country_code"], str(r["metric_time.month"])[:10], r["revenue"]] for r in table.to_pylist()]


def test_file_exports_equal_hand_sql_and_are_remembered(tmp_path):
    project = project_with_exports(tmp_path)
    with Runtime.open(project, str(shared_demo())) as runtime:
        runs = {r.name: r for r in runtime.exports.run(("coffee_spend_parquet", "coffee_spend_csv"))}
        assert all(r.error is None for r in runs.values()), runs
        status = {e["name"]: e for e in runtime.exports.status()}
    want = hand(str(shared_demo()))
    parquet = pq.read_table(project / "exports" / "coffee_spend.parquet")
    assert_same(as_rows(parquet), want, keys=2)
    assert runs["coffee_spend_parquet"].rows == len(want)
    assert_same(as_rows(pa_csv.read_csv(project / "exports" / "coffee_spend.csv")), want, keys=2)
    assert status["coffee_spend_parquet"]["status"] == "fresh" and status["coffee_spend_parquet"]["every"] == "1h"
    assert status["coffee_spend_table"]["status"] == "never"
    # a new process knows what ran (the state is kept in .canon/exports.json)
    with Runtime.open(project, str(shared_demo())) as again:
        assert {e["name"]: e["rows"] for e in again.exports.status()}["coffee_spend_csv"] == len(want)
    assert not list((project / "exports").glob(".*partial"))  # written beside, renamed over


def test_table_export_on_duckdb_replaces_the_table(tmp_path):
    project = project_with_exports(tmp_path)
    warehouse = tmp_path / "own.duckdb"
    shutil.copy(shared_demo(), warehouse)
    for _ in range(2):  # the second run replaces the table whole (no doubled rows)
        with Runtime.open(project, str(warehouse)) as runtime:
            [run] = runtime.exports.run(("coffee_spend_table",))
        assert run.error is None, run.error
    reader = open_warehouse(str(warehouse))
    try:
        got = [[a, str(b)[:10], c] for a, b, c in reader.execute(
            'SELECT customer__country_code, metric_time__month, revenue FROM canon_exports.coffee_spend')[1]]
    finally:
        reader.close()
    assert_same(got, hand(str(warehouse)), keys=2)
    assert run.rows == len(got)


def test_table_export_on_postgres(tmp_path, pg_demo_url):
    project = project_with_exports(tmp_path, schema="canon_exports_test")
    with Runtime.open(project, pg_demo_url) as runtime:
        [run] = runtime.exports.run(("coffee_spend_table",))
    assert run.error is None, run.error
    reader = open_warehouse(pg_demo_url)
    try:
        got = [[a, str(b)[:10], float(c)] for a, b, c in reader.execute(
            'SELECT customer__country_code, metric_time__month, revenue FROM canon_exports_test.coffee_spend')[1]]
    finally:
        reader.close()
    assert_same(got, hand(pg_demo_url), keys=2)


def test_schedule_retry_and_failure_status(tmp_path):
    project = project_with_exports(tmp_path)
    (project / "exports").mkdir()
    (project / "exports" / "coffee_spend.csv").mkdir()  # a folder where the file should go: the run fails
    with Runtime.open(project, str(shared_demo())) as runtime:
        exports: Exports = runtime.exports
        assert exports.due() == ["coffee_spend_parquet"]  # the only one with `every`, never run
        [failed] = exports.run(("coffee_spend_csv",))
        assert failed.error and "coffee_spend.csv" in failed.error
        status = {e["name"]: e for e in exports.status()}
        assert status["coffee_spend_csv"]["status"] == "failed" and status["coffee_spend_csv"]["last_success_at"] is None
        [ok] = exports.run(("coffee_spend_parquet",))
        ran = json.loads((project / ".canon" / "exports.json").read_text())["coffee_spend_parquet"]["started_at"]
        from datetime import datetime

        at = datetime.fromisoformat(ran).timestamp()
        assert exports.due(now=at + 1800) == [] and exports.due(now=at + 3601) == ["coffee_spend_parquet"]
        assert {e["name"]: e for e in exports.status(now=at + 3 * 3600)}["coffee_spend_parquet"]["status"] == "stale"
        with pytest.raises(CanonError) as unknown:
            exports.run(("coffee_spend_parqet",))
        assert "coffee_spend_parquet" in unknown.value.hint


def test_server_runs_scheduled_exports_and_reports_them(tmp_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    project = project_with_exports(tmp_path)
    with TestClient(create_app(project, str(shared_demo()), reload_interval_s=0)) as client:
        target = project / "exports" / "coffee_spend.parquet"
        for _ in range(300):  # the schedule's first pass runs at start, in the background
            body = client.get("/v1/status").json()
            entry = {e["name"]: e for e in body["exports"]}["coffee_spend_parquet"]
            if entry["status"] == "fresh":
                break
            import time

            time.sleep(0.1)
        assert entry["status"] == "fresh" and target.exists(), entry
        assert entry["rows"] == pq.read_table(target).num_rows
        assert {e["name"]: e for e in body["exports"]}["coffee_spend_csv"]["status"] == "never"  # no `every`


@pytest.mark.slow  # four CLI processes
def test_cli_and_validation(tmp_path):
    project = project_with_exports(tmp_path)
    result = canon("exports", "run", "coffee_spend_csv", "--project", str(project), warehouse=shared_demo())
    assert result.returncode == 0 and "coffee_spend_csv" in result.stdout, result.stderr
    status = canon("exports", "status", "--format", "json", "--project", str(project), warehouse=shared_demo())
    assert {e["name"]: e["status"] for e in json.loads(status.stdout)}["coffee_spend_csv"] == "fresh"
    unknown = canon("exports", "run", "nope", "--project", str(project), warehouse=shared_demo())
    assert unknown.returncode != 0 and "unknown export 'nope'" in unknown.stderr
    (project / "metrics" / "exports.yml").write_text(SAVED.format(schema="x").replace(
        "file: exports/coffee_spend.csv", "file: exports/coffee_spend.csv, table: x.y"))
    invalid = canon("validate", "--project", str(project))
    assert invalid.returncode != 0 and "exactly one of `file`" in invalid.stdout + invalid.stderr
