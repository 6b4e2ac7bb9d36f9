"""Time edges that surprised a new user (issue 18), each against hand SQL on DuckDB and PostgreSQL:

a. period over period ends with the data: no rows after the last period of the unshifted metric;
b. `last N complete weeks|days|months|quarters|years` and `partial_periods` in the answer;
c. at week grain an offset of a month compares with the same days one month earlier
   (a day counts for the week holding the same date one month later);
d. a range without data: no rows (not one row of NULLs) and a warning;
e. the CLI table: ids without thousands separators, a million rows drawn in bounded time.
"""

from __future__ import annotations

import time
from datetime import date

import pytest

from canon.compiler.request import QueryRequest
from canon.compiler.timerange import relative_range
from canon.server.results import QueryResult
from tests.support.oracle import assert_same, canon_result, canon_rows, normalize

REVENUE = "SUM(oi.quantity * oi.unit_price - oi.discount_amount)"
REVENUE_FROM = ("FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id "
                "WHERE o.status = 'completed'")


def trunc(grain: str, column: str) -> str:
    return f"CAST(DATE_TRUNC('{grain}', {column}) AS DATE)"


# --- a. period over period ends with the data ---------------------------------------------------------------


@pytest.mark.parametrize("metric, grain", [("revenue_yoy_growth", "month"), ("revenue_mom_growth", "quarter"),
                                           ("revenue_mom_growth", "day")])
def test_period_over_period_stops_at_the_last_period_of_data(catalog, warehouse, metric, grain):
    last = warehouse.execute(f"SELECT MAX({trunc(grain, 'o.ordered_at')}) {REVENUE_FROM}")[1][0][0]
    rows = canon_rows(catalog, warehouse, QueryRequest(metrics=(metric,), dimensions=(f"metric_time.{grain}",)))
    assert max(normalize(r[0]) for r in rows) == normalize(last)


def test_shifted_values_alone_still_list_the_period_after_the_data(catalog, warehouse):
    """revenue_prev_month by month: January after a December of data *is* its answer."""
    last = warehouse.execute(f"SELECT MAX({trunc('month', 'o.ordered_at')}) {REVENUE_FROM}")[1][0][0]
    rows = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue_prev_month",), dimensions=("metric_time.month",)))
    assert max(normalize(r[0]) for r in rows) > normalize(last)


# --- b. complete periods and partial ones ---------------------------------------------------------------------


@pytest.mark.parametrize("phrase, first, last", [
    ("last 12 complete weeks", "2025-10-06", "2025-12-28"),  # 2025-12-31 is a Wednesday
    ("last 7 complete days", "2025-12-24", "2025-12-30"),
    ("last 3 complete months", "2025-09-01", "2025-11-30"),
    ("last 2 complete quarters", "2025-04-01", "2025-09-30"),
    ("past 1 complete year", "2024-01-01", "2024-12-31"),
])
def test_complete_ranges_end_at_the_last_complete_period(phrase, first, last):
    assert relative_range(phrase, date(2025, 12, 31)) == (date.fromisoformat(first), date.fromisoformat(last))


def test_complete_weeks_follow_the_week_start():
    assert relative_range("last 1 complete week", date(2025, 12, 31), week_start=6) == (date(2025, 12, 21), date(2025, 12, 27))


def test_complete_weeks_are_whole_weeks_and_not_partial(catalog, warehouse):
    week = trunc("week", "o.ordered_at")
    want = warehouse.execute(f"SELECT {week}, {REVENUE} {REVENUE_FROM} AND o.ordered_at >= DATE '2025-10-06' "
                             f"AND o.ordered_at < DATE '2025-12-29' GROUP BY {week}")[1]
    request = QueryRequest(metrics=("revenue",), dimensions=("metric_time.week",), time_range="last 12 complete weeks",
                           today="2025-12-31")
    result = canon_result(catalog, warehouse, request)
    assert len(result.rows) == 12
    assert_same(result.rows, want, keys=1)
    assert result.partial_periods is None and "partial_periods" not in result.to_dict()


def test_a_range_cutting_weeks_marks_them_partial(catalog, warehouse):
    """last 12 weeks on Wednesday 2025-12-31 starts on a Thursday (2025-10-09): the first week holds 4 of
    its days, the last one 3 (Dec 29–31; the week is still running)."""
    request = QueryRequest(metrics=("revenue",), dimensions=("metric_time.week",), time_range="last 12 weeks",
                           today="2025-12-31")
    result = canon_result(catalog, warehouse, request)
    assert result.partial_periods == {"metric_time.week": ["2025-10-06", "2025-12-29"]}
    assert result.to_dict()["partial_periods"] == {"metric_time.week": ["2025-10-06", "2025-12-29"]}
    whole = canon_result(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=("metric_time.month",),
                                                          start="2025-01-01", end="2025-06-30", today="2025-12-31"))
    assert whole.partial_periods is None


def test_cli_notes_partial_periods(demo_path):
    from click.testing import CliRunner

    from canon.server.cli import main
    from tests.conftest import REPO_ROOT

    out = CliRunner().invoke(main, ["query", "--project", str(REPO_ROOT), "--warehouse", str(demo_path), "-m", "revenue",
                                    "--by", "metric_time.month", "--time-range", "last 2 months", "--today", "2025-12-15"])
    assert out.exit_code == 0, out.output
    assert "partial: metric_time.month 2025-10-01, 2025-12-01" in " ".join(out.output.split())


# --- c. month over month at week grain: the same days one month earlier ----------------------------------------


def test_week_compares_with_the_same_days_one_month_earlier(catalog, warehouse):
    """The week of Monday 2025-05-05 compares with 2025-04-05 .. 2025-04-11 (not with the week holding
    2025-04-05, which starts 2025-03-31); the next week with 2025-04-12 .. 2025-04-18."""
    def days(first, until):
        return warehouse.execute(f"SELECT {REVENUE} {REVENUE_FROM} AND o.ordered_at >= DATE '{first}' "
                                 f"AND o.ordered_at < DATE '{until}'")[1][0][0]

    rows = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue_prev_month",), dimensions=("metric_time.week",),
                                                       start="2025-05-05", end="2025-05-18"))
    got = {normalize(r[0]): r[1] for r in rows}
    assert got["2025-05-05"] == pytest.approx(float(days("2025-04-05", "2025-04-12")))
    assert got["2025-05-12"] == pytest.approx(float(days("2025-04-12", "2025-04-19")))


def test_week_over_month_growth_oracle(catalog, warehouse):
    """Every week of a range: revenue ÷ revenue of the days one month earlier − 1, the earlier days taken
    as 'the days whose date one month later lies in the week' (month ends clamp: Jan 31 → Feb 28)."""
    week, moved = trunc("week", "o.ordered_at"), trunc("week", "o.ordered_at + INTERVAL '1 month'")
    bounds = "BETWEEN DATE '2025-03-03' AND DATE '2025-06-23'"
    current = dict(warehouse.execute(f"SELECT {week}, {REVENUE} {REVENUE_FROM} AND {week} {bounds} GROUP BY {week}")[1])
    earlier = dict(warehouse.execute(f"SELECT {moved}, {REVENUE} {REVENUE_FROM} AND {moved} {bounds} GROUP BY {moved}")[1])
    want = [(p, float(current[p]) / float(earlier[p]) - 1) for p in current if earlier.get(p)]
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue_mom_growth",), dimensions=("metric_time.week",),
                                                      start="2025-03-03", end="2025-06-29"))
    assert len(want) == 17
    assert_same(got, want, keys=1, rel=1e-7)


# --- d. a range without data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(), ("metric_time.month",)])
def test_a_range_without_data_has_no_rows_and_a_warning(catalog, warehouse, dims):
    result = canon_result(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=dims,
                                                           time_range="last 3 months", today="2029-06-01"))
    assert result.rows == []
    assert any("no data in the time range 'last 3 months'" in w for w in result.warnings or ()), result.warnings


def test_a_range_with_data_has_no_such_warning(catalog, warehouse):
    result = canon_result(catalog, warehouse, QueryRequest(metrics=("revenue",), time_range="last 3 months",
                                                           today="2025-12-31"))
    assert len(result.rows) == 1 and result.rows[0][0] is not None and not result.warnings


# --- e. the CLI table -------------------------------------------------------------------------------------------


def test_table_prints_ids_plainly_and_a_million_rows_quickly(capsys):
    from canon.server.cli_table import TABLE_ROWS, print_table

    rows = [[24852 + i, 1234.5] for i in range(1_000_000)]
    result = QueryResult(columns=[{"name": "product.product_id", "type": "number"}, {"name": "revenue", "type": "number"}],
                         rows=rows, sql="", elapsed_ms=1.0)
    started = time.perf_counter()
    print_table(result)
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert "24852" in out and "24,852" not in out
    assert "1,234.50" in out  # metric values keep their separators
    assert f"showing the first {TABLE_ROWS:,} of 1,000,000 rows" in out and "--format csv" in out
    assert elapsed < 5, f"{elapsed:.1f} s to draw the table"


def test_the_warning_says_when_the_sources_were_last_loaded(catalog, warehouse):
    """lead_count's model has `freshness:` (loaded_at: created_at): the warning names its newest load."""
    from canon.server.runtime import Runtime

    newest = warehouse.execute("SELECT MAX(created_at) FROM leads")[1][0][0]
    runtime = Runtime.over(catalog, warehouse)
    runtime.freshness.refresh()
    result = runtime.query(QueryRequest(metrics=("lead_count",), time_range="last 3 months", today="2029-06-01"),
                           capped=False)
    assert result.rows == [[0]]  # a count over no rows is 0; the warning says why
    assert any(f"last loaded at {normalize(newest).replace('T', ' ')[:16]}" in w for w in result.warnings), result.warnings


def test_http_answer_carries_partial_periods_and_the_empty_range_warning(demo_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app
    from tests.conftest import REPO_ROOT

    with TestClient(create_app(REPO_ROOT, str(demo_path))) as client:
        body = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["metric_time.week"],
                                              "time_range": "last 12 weeks", "today": "2025-12-31"}).json()
        assert body["partial_periods"] == {"metric_time.week": ["2025-10-06", "2025-12-29"]}
        whole = client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": ["metric_time.week"],
                                               "time_range": "last 12 complete weeks", "today": "2025-12-31"})
        assert "partial_periods" not in whole.json() and len(whole.json()["rows"]) == 12
        empty = client.post("/v1/query", json={"metrics": ["revenue"], "time_range": "last 3 months",
                                               "today": "2029-06-01"})
        assert empty.json()["rows"] == [] and "no data in the time range" in empty.headers.get("warning", "")
