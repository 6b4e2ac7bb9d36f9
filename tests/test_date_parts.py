"""Date parts (compiler/date_parts.py): metric_time.dow, .dom, .doy, .week_of_year, .month_of_year,
.quarter_of_year, .hour_of_day — on metric_time and on any time dimension, in the request's zone.

The oracle is hand-written SQL over the raw demo tables with EXTRACT's ISO fields (ISODOW: Monday = 1,
WEEK: ISO week), which DuckDB and PostgreSQL read alike; Canon's SQL is never read for the answers.
"""

from __future__ import annotations

import pytest

from canon.compiler.compile import compile_request
from canon.compiler.errors import QueryError, UnknownNameError
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows

REVENUE = "SUM(oi.quantity * oi.unit_price - oi.discount_amount)"
REVENUE_FROM = ("FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id "
                "WHERE o.status = 'completed'")
FIELDS = {"dow": "ISODOW", "dom": "DAY", "doy": "DOY", "week_of_year": "WEEK", "month_of_year": "MONTH",
          "quarter_of_year": "QUARTER", "hour_of_day": "HOUR"}
LA = "America/Los_Angeles"


def oracle(warehouse, field: str, column: str = "o.ordered_at", extra: str = "") -> list[tuple]:
    part = f"CAST(EXTRACT({field} FROM {column}) AS INTEGER)"
    return warehouse.execute(f"SELECT {part}, {REVENUE} {REVENUE_FROM} {extra} GROUP BY {part}")[1]


@pytest.mark.parametrize("part", list(FIELDS))
def test_revenue_by_each_date_part(catalog, warehouse, part):
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=(f"metric_time.{part}",)))
    want = oracle(warehouse, FIELDS[part])
    assert len(want) > 1
    assert all(isinstance(r[0], int) for r in got), "a date part is a whole number on every engine"
    assert_same(got, want, keys=1, rel=1e-9)


def test_day_of_week_is_iso_monday_one(catalog, warehouse):
    """2024-01-01 was a Monday, 2024-01-07 a Sunday: 1 and 7, whatever the engine's own numbering."""
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=("metric_time.dow",),
                                                      start="2024-01-01", end="2024-01-07"))
    want = oracle(warehouse, "ISODOW", extra="AND o.ordered_at >= DATE '2024-01-01' AND o.ordered_at < DATE '2024-01-08'")
    assert_same(got, want, keys=1)
    assert {r[0] for r in got} <= set(range(1, 8))


def test_part_of_a_model_time_dimension_and_alias(catalog, warehouse):
    """`day_of_week` (Looker's name) is `dow`; parts apply to any time dimension, not only metric_time."""
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=("order.ordered_at.day_of_week",)))
    assert_same(got, oracle(warehouse, "ISODOW"), keys=1)


def test_part_with_a_grain_and_a_filter_on_a_part(catalog, warehouse):
    """Weekend revenue by month: a filter names a part too."""
    got = canon_rows(catalog, warehouse, QueryRequest(
        metrics=("revenue",), dimensions=("metric_time.month", "metric_time.dow"), where=("metric_time.dow IN (6, 7)",)))
    month = "CAST(DATE_TRUNC('month', o.ordered_at) AS DATE)"
    dow = "CAST(EXTRACT(ISODOW FROM o.ordered_at) AS INTEGER)"
    want = warehouse.execute(f"SELECT {month}, {dow}, {REVENUE} {REVENUE_FROM} AND {dow} IN (6, 7) "
                             f"GROUP BY {month}, {dow}")[1]
    assert_same(got, want, keys=2)


def test_hour_of_day_respects_the_time_zone(catalog, warehouse):
    zoned = f"((o.ordered_at AT TIME ZONE 'UTC') AT TIME ZONE '{LA}')"
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=("metric_time.hour_of_day",),
                                                      timezone=LA))
    want = oracle(warehouse, "HOUR", zoned)
    assert_same(got, want, keys=1)
    assert sorted(r[0] for r in want) != sorted(r[0] for r in oracle(warehouse, "HOUR")) or len(want) == 24


@pytest.mark.parametrize("ref", ["metric_time.weekday", "order.ordered_at.weekday"])
def test_unknown_part_lists_the_valid_ones(catalog, ref):
    with pytest.raises(UnknownNameError) as caught:
        compile_request(catalog, QueryRequest(metrics=("revenue",), dimensions=(ref,)))
    hint = caught.value.hint
    for name in ("dow", "dom", "doy", "week_of_year", "month_of_year", "quarter_of_year", "hour_of_day", "month"):
        assert name in hint, hint
    assert "weekday" in caught.value.message


def test_part_of_a_non_time_dimension_is_refused(catalog):
    with pytest.raises(QueryError, match="only time dimensions have date parts"):
        compile_request(catalog, QueryRequest(metrics=("revenue",), dimensions=("order.sales_channel.dow",)))


# what each dialect must write for the ISO weekday, the ISO week and the hour (sqlglot alone writes
# PostgreSQL's as functions it does not have and Spark's weekday counted from Sunday)
DIALECT_SQL = {
    "duckdb": ("ISODOW(", "WEEKOFYEAR(", "HOUR("),
    "postgres": ("CAST(EXTRACT(ISODOW FROM", "CAST(EXTRACT(WEEK FROM", "CAST(EXTRACT(HOUR FROM"),
    "spark": ("(WEEKDAY(", "WEEKOFYEAR(", "HOUR("),
    "snowflake": ("DAYOFWEEKISO(", "WEEKISO(", "HOUR("),
    "bigquery": ("(MOD(EXTRACT(DAYOFWEEK FROM", "EXTRACT(ISOWEEK FROM", "EXTRACT(HOUR FROM"),
    "trino": ("DAY_OF_WEEK(", "WEEK_OF_YEAR(", "HOUR("),
    "clickhouse": ("toDayOfWeek(", "toISOWeek(", "HOUR("),
}


@pytest.mark.parametrize("dialect", list(DIALECT_SQL))
def test_each_dialect_writes_its_own_functions(catalog, dialect):
    sql = compile_request(catalog, QueryRequest(
        metrics=("revenue",), dimensions=("metric_time.dow", "metric_time.week_of_year", "metric_time.hour_of_day")),
        dialect).sql
    for piece in DIALECT_SQL[dialect]:
        assert piece in sql, f"{dialect}: {piece!r} not in {sql}"
    assert "DAYOFWEEK_ISO(" not in sql and "DAY_OF_MONTH(" not in sql or dialect == "trino"


def test_spark_weekday_formula_is_iso():
    """Spark's WEEKDAY counts 0 = Monday: WEEKDAY + 1 is ISO. Checked on DuckDB's ISODOW, day by day
    (DuckDB's DAYOFWEEK counts 0 = Sunday, so (DAYOFWEEK + 6) % 7 is Spark's WEEKDAY)."""
    import duckdb

    rows = duckdb.connect().execute("SELECT d, ISODOW(d), ((DAYOFWEEK(d) + 6) % 7) + 1 FROM "
                             "(SELECT CAST(range AS DATE) AS d FROM range(DATE '2024-01-01', DATE '2024-01-15', "
                             "INTERVAL 1 DAY))").fetchall()
    assert len(rows) == 14 and all(r[1] == r[2] for r in rows)


def test_cli_and_http(demo_path):
    import json

    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from canon.server.cli import main
    from canon.server.http_api import create_app
    from tests.conftest import REPO_ROOT

    out = CliRunner().invoke(main, ["query", "--project", str(REPO_ROOT), "--warehouse", str(demo_path),
                                    "-m", "revenue", "--by", "metric_time.dow", "-f", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert [r[0] for r in body["rows"]] == [1, 2, 3, 4, 5, 6, 7]
    bad = CliRunner().invoke(main, ["query", "--project", str(REPO_ROOT), "--warehouse", str(demo_path),
                                    "-m", "revenue", "--by", "metric_time.weekday"])
    assert bad.exit_code != 0 and "dow" in bad.output
    with TestClient(create_app(REPO_ROOT, str(demo_path))) as client:
        answer = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["metric_time.quarter_of_year"]})
        assert answer.status_code == 200, answer.text
        assert [r[0] for r in answer.json()["rows"]] == [1, 2, 3, 4]
        assert answer.json()["columns"][0] == {"name": "metric_time.quarter_of_year", "type": "number"}
        wrong = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["metric_time.weekday"]})
        assert wrong.status_code == 404 and "dow" in wrong.text  # an unknown name, like an unknown metric
