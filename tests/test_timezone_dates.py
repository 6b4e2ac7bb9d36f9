"""DATE columns are never shifted by a request's time zone; TIMESTAMP columns (stored UTC) are.

A small warehouse unlike the demo: `shop_sales` has a DATE column (`sold_on`) and a TIMESTAMP column
(`settled_at`, UTC), with rows on the first day of a month and settled in the early UTC hours, where a
shift to New York would move them into the previous day and month. The model does NOT say
`stored_as: date`: the runtime learns the column types from the warehouse. Every answer, by day and
by month, with and without a time zone, equals hand-written SQL over the raw table.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from canon.compiler.column_types import with_column_types
from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.request import QueryRequest
from canon.server.runtime import Runtime

ZONE = "America/New_York"
ROWS = [  # sale_id, sold_on (DATE), settled_at (TIMESTAMP, UTC), amount
    (1, "1996-12-31", "1996-12-31 18:00:00", 10.25),
    (2, "1997-01-01", "1997-01-01 03:00:00", 20.50),  # New York: still Dec 31
    (3, "1997-01-01", "1997-01-01 15:00:00", 30.00),
    (4, "1997-01-31", "1997-02-01 02:30:00", 40.75),  # New York: Jan 31
    (5, "1997-02-01", "1997-02-01 04:59:00", 50.00),  # New York: Jan 31 (EST is UTC-5)
    (6, "1997-02-01", "1997-02-01 05:00:00", 60.00),  # New York: Feb 1, 00:00
    (7, "1997-03-01", "1997-03-01 12:00:00", 70.00),
]

MODELS = """\
semantic_models:
  - name: sale
    table: shop_sales
    entities:
      - {name: sale, type: primary, expr: sale_id}
    dimensions:
      - {name: sold_on, type: time}
      - {name: sold_day, type: time, expr: "CAST(settled_at AS DATE)"}
    measures:
      - {name: amount, agg: sum}
    default_time: sold_on
  - name: settlement
    table: shop_sales
    entities:
      - {name: settlement, type: primary, expr: sale_id}
    dimensions:
      - {name: settled_at, type: time}
    measures:
      - {name: settled_amount, agg: sum, expr: amount}
    default_time: settled_at
"""
METRICS = """\
metrics:
  - {name: sales, type: simple, measure: sale.amount}
  - {name: settled, type: simple, measure: settlement.settled_amount}
"""


def write_project(root: Path, warehouse: str) -> Path:
    (root / "semantic_models").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "semantic_models" / "sales.yml").write_text(MODELS)
    (root / "metrics" / "sales.yml").write_text(METRICS)
    (root / "canon.yml").write_text(f"warehouse: {warehouse}\n")
    return root


def _create_table(execute) -> None:
    execute("CREATE TABLE shop_sales (sale_id INTEGER, sold_on DATE, settled_at TIMESTAMP, amount DECIMAL(10, 2))")
    for row in ROWS:
        execute("INSERT INTO shop_sales VALUES ({}, DATE '{}', TIMESTAMP '{}', {})".format(*row))


@pytest.fixture(scope="module")
def duckdb_project(tmp_path_factory):
    import duckdb

    root = tmp_path_factory.mktemp("tzdates")
    path = root / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        _create_table(con.execute)
    return write_project(root / "project", str(path))


@pytest.fixture(scope="module")
def postgres_project(tmp_path_factory, pg_server_url):
    import psycopg

    from tests.support.pg_server import create_database

    url = create_database(pg_server_url, "canon_tz_dates")
    with psycopg.connect(url, autocommit=True) as con:
        _create_table(con.execute)
    return write_project(tmp_path_factory.mktemp("tzdates_pg"), url)


# hand-written SQL over the raw table (portable: DuckDB and PostgreSQL)
LOCAL_SETTLED = f"((settled_at AT TIME ZONE 'UTC') AT TIME ZONE '{ZONE}')"
HAND = {
    ("sales", "day", False): "SELECT sold_on, SUM(amount) FROM shop_sales GROUP BY 1",
    ("sales", "day", True): "SELECT sold_on, SUM(amount) FROM shop_sales GROUP BY 1",  # dates never move
    ("sales", "month", False): "SELECT CAST(DATE_TRUNC('month', sold_on) AS DATE), SUM(amount) FROM shop_sales GROUP BY 1",
    ("sales", "month", True): "SELECT CAST(DATE_TRUNC('month', sold_on) AS DATE), SUM(amount) FROM shop_sales GROUP BY 1",
    ("settled", "day", False): "SELECT CAST(settled_at AS DATE), SUM(amount) FROM shop_sales GROUP BY 1",
    ("settled", "day", True): f"SELECT CAST({LOCAL_SETTLED} AS DATE), SUM(amount) FROM shop_sales GROUP BY 1",
    ("settled", "month", False):
        "SELECT CAST(DATE_TRUNC('month', settled_at) AS DATE), SUM(amount) FROM shop_sales GROUP BY 1",
    ("settled", "month", True):
        f"SELECT CAST(DATE_TRUNC('month', {LOCAL_SETTLED}) AS DATE), SUM(amount) FROM shop_sales GROUP BY 1",
}


def _normal(rows) -> list[tuple]:
    return sorted((str(day)[:10], round(float(value), 2)) for day, value in rows)


def _check_all(project: Path) -> None:
    with Runtime.open(project) as runtime:
        for (metric, grain, zoned), sql in HAND.items():
            request = QueryRequest(metrics=(metric,), dimensions=(f"metric_time.{grain}",),
                                   timezone=ZONE if zoned else None)
            got = runtime.query(request).rows
            _, expected = runtime.run_sql(sql)
            assert _normal(got) == _normal(expected), (metric, grain, zoned)


def test_dates_never_shift_duckdb(duckdb_project):
    _check_all(duckdb_project)


@pytest.mark.postgres
def test_dates_never_shift_postgres(postgres_project):
    _check_all(postgres_project)


def test_the_case_of_the_issue(duckdb_project):
    """Without the warehouse's types a New York request moved Jan 1 purchases into December."""
    with Runtime.open(duckdb_project) as runtime:
        rows = runtime.query(QueryRequest(metrics=("sales",), dimensions=("metric_time.month",), timezone=ZONE)).rows
    by_month = {str(r[0])[:7]: float(r[1]) for r in rows}
    assert by_month == {"1996-12": 10.25, "1997-01": 91.25, "1997-02": 110.0, "1997-03": 70.0}


def test_learned_types_are_data_for_a_pure_compiler(duckdb_project):
    catalog = load_catalog(duckdb_project)
    columns = {"shop_sales": {"sale_id": "INTEGER", "sold_on": "DATE", "settled_at": "TIMESTAMP",
                              "amount": "DECIMAL(10,2)"}}
    typed = with_column_types(catalog, columns)
    # a bare DATE column, and an expression typed DATE by sqlglot; the TIMESTAMP column is not one
    assert typed.stored_dates == {"sale.sold_on", "sale.sold_day"}
    request = QueryRequest(metrics=("sales",), dimensions=("metric_time.day",), timezone=ZONE)
    assert ZONE in compile_request(catalog, request, "duckdb").sql  # untyped: shifted, as before
    assert ZONE not in compile_request(typed, request, "duckdb").sql
    settled = QueryRequest(metrics=("settled",), dimensions=("metric_time.day",), timezone=ZONE)
    assert ZONE in compile_request(typed, settled, "duckdb").sql  # timestamps still shift
    assert with_column_types(catalog, {}).stored_dates == frozenset()  # unknown table: nothing assumed


def test_sql_model_columns_are_typed_through_its_query(tmp_path):
    root = write_project(tmp_path, "unused.duckdb")
    (root / "semantic_models" / "sales.yml").write_text(MODELS.replace(
        "table: shop_sales\n    entities:\n      - {name: sale,",
        "sql: \"SELECT sale_id, sold_on, settled_at, amount FROM shop_sales WHERE amount > 0\"\n"
        "    entities:\n      - {name: sale,", 1))
    catalog = load_catalog(root)
    typed = with_column_types(catalog, {"shop_sales": {"sale_id": "INTEGER", "sold_on": "date",
                                                       "settled_at": "timestamp without time zone",
                                                       "amount": "numeric"}}, "postgres")
    assert {"sale.sold_on", "sale.sold_day"} <= typed.stored_dates
    assert "settlement.settled_at" not in typed.stored_dates


def test_a_time_range_on_a_date_column_in_a_zone(duckdb_project):
    with Runtime.open(duckdb_project) as runtime:
        rows = runtime.query(QueryRequest(metrics=("sales",), dimensions=("metric_time.day",), timezone=ZONE,
                                          start="1997-01-01", end="1997-01-31")).rows
    assert _normal(rows) == [(str(date(1997, 1, 1)), 50.5), (str(date(1997, 1, 31)), 40.75)]


def test_a_warehouse_that_is_down_leaves_the_declared_types_and_is_asked_again(duckdb_project, tmp_path):
    with Runtime.open(duckdb_project, str(tmp_path / "missing.duckdb")) as runtime:
        request = QueryRequest(metrics=("sales",), dimensions=("metric_time.day",), timezone=ZONE)
        assert ZONE in runtime.prepare(request).compiled.sql  # compiles; cannot know the column is a DATE
        assert runtime._typed is None  # nothing remembered: the next request asks again


def test_compile_shows_the_sql_query_runs(duckdb_project):
    from click.testing import CliRunner

    from canon.server.cli import main

    result = CliRunner().invoke(main, ["compile", "--project", str(duckdb_project), "-m", "sales", "-m", "settled",
                                       "--by", "metric_time.day", "--timezone", ZONE])
    assert result.exit_code == 0, result.stderr
    assert "DATE_TRUNC('DAY', \"sale\".sold_on)" in result.stdout  # the DATE is not shifted
    assert f"\"settlement\".settled_at AS TIMESTAMP) AT TIME ZONE 'UTC' AT TIME ZONE '{ZONE}'" in result.stdout
