"""`canon validate --warehouse`: the catalog checked against the live schema, each problem as file:line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from canon.server.cli import main
from canon.server.runtime import Runtime
from tests.support.cli import demo_warehouse
from tests.support.project import ROOT

BROKEN_MODELS = """\
semantic_models:
  - name: visit
    table: visits
    entities:
      - {name: visit, type: primary, expr: visit_id}
    dimensions:
      - {name: device, expr: devcie}
      - {name: visited_on, type: time}
    measures:
      - {name: pages_total, agg: sum, expr: "squareroot(pages)"}
      - {name: device_sum, agg: sum, expr: device}
      - {name: visits, agg: count}
    default_time: visited_on
  - name: account
    table: acounts
    entities:
      - {name: account, type: primary, expr: account_id}
    dimensions:
      - {name: plan}
  - name: big_visit
    sql: "SELECT visit_id, pages FROM visits WHERE pagez > 3"
    entities:
      - {name: big_visit, type: primary, expr: visit_id}
"""
METRICS = """\
metrics:
  - {name: visit_count, type: simple, measure: visit.visits}
"""


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> tuple[Path, str]:
    import duckdb

    root = tmp_path_factory.mktemp("broken")
    warehouse = str(root / "wh.duckdb")
    with duckdb.connect(warehouse) as con:
        con.execute("CREATE TABLE visits (visit_id INTEGER, visited_on DATE, pages INTEGER, device VARCHAR)")
        con.execute("CREATE TABLE accounts (account_id INTEGER, plan VARCHAR)")
    (root / "semantic_models").mkdir()
    (root / "metrics").mkdir()
    (root / "semantic_models" / "m.yml").write_text(BROKEN_MODELS)
    (root / "metrics" / "m.yml").write_text(METRICS)
    return root, warehouse


def _validate(*args: str):
    return CliRunner().invoke(main, ["validate", *args])


def test_every_problem_with_file_line_and_a_hint(broken):
    root, warehouse = broken
    result = _validate("--project", str(root), "--warehouse", warehouse)
    assert result.exit_code != 0
    lines = [line.removeprefix("error: ") for line in result.stderr.splitlines()]
    expected = [
        ("semantic_models/m.yml:7: dimension 'device' of model 'visit': column 'devcie' is not in visits",
         "did you mean 'device'?"),
        ("semantic_models/m.yml:10: measure 'pages_total' of model 'visit' fails on the warehouse", "squareroot"),
        ("semantic_models/m.yml:11: measure 'device_sum' of model 'visit' fails on the warehouse", "sum(VARCHAR)"),
        ("semantic_models/m.yml:15: semantic model 'account': table 'acounts' is not in the warehouse",
         "did you mean 'accounts'?"),
        ("semantic_models/m.yml:21: semantic model 'big_visit': its sql fails on the warehouse", "pagez"),
    ]
    assert len(lines) == len(expected), result.stderr
    for (start, detail), line in zip(expected, lines):
        assert line.startswith(start) and detail in line, line
    assert "Traceback" not in result.stderr


def test_without_the_flag_the_warehouse_is_not_read(broken):
    root, _ = broken
    result = _validate("--project", str(root))
    assert result.exit_code == 0, result.stderr
    assert "checked on" not in result.stdout


def test_the_flag_alone_uses_the_project_warehouse(broken, tmp_path):
    root, warehouse = broken
    project = tmp_path / "p"
    for part in ("semantic_models", "metrics"):
        (project / part).mkdir(parents=True)
        (project / part / "m.yml").write_text((root / part / "m.yml").read_text())
    (project / "canon.yml").write_text(f"warehouse: {warehouse}\n")
    result = _validate("--project", str(project), "--warehouse")
    assert result.exit_code != 0 and "table 'acounts' is not in the warehouse" in result.stderr


@pytest.mark.slow  # builds the CLI demo warehouse and probes its 47 metrics (about 5 s here)
def test_the_demo_catalog_passes():
    result = _validate("--project", str(ROOT), "--warehouse", str(demo_warehouse()))
    assert result.exit_code == 0, result.stderr
    assert "every table, column and expression checked on" in result.stdout


def test_a_missing_warehouse_is_a_clean_failure(broken, tmp_path):
    result = _validate("--project", str(broken[0]), "--warehouse", str(tmp_path / "nowhere.duckdb"))
    assert result.exit_code != 0
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_a_server_start_logs_the_problems_as_warnings(broken, caplog):
    root, warehouse = broken
    with caplog.at_level(logging.WARNING, logger="canon.runtime"):
        with Runtime.open(root, warehouse) as runtime:
            problems = runtime.check_schema()
    assert len(problems) == 5
    assert any("warehouse check: semantic_models/m.yml:15:" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
def test_the_demo_catalog_passes_on_postgres(pg_demo_url):
    from canon.compiler.compile import load_catalog
    from canon.server.runtime.state import CatalogState
    from canon.server.validate_warehouse import check_warehouse

    catalog = load_catalog(ROOT)
    with Runtime(CatalogState.fixed(catalog), pg_demo_url) as runtime:
        assert check_warehouse(catalog, runtime.run_sql, "postgres") == []
