"""Pure calendar rules: relative ranges, windows, shifting range bounds, period starts, time zones, and
how grains truncate in SQL (checked by running the generated expressions on DuckDB, no warehouse)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest
from sqlglot import exp

from canon.compiler.calendar import (TimeContext, Window, check_timezone, in_zone, parse_window, period_start, shift,
                               truncate)
from canon.compiler.errors import QueryError
from canon.compiler.timerange import RELATIVE_RANGES, is_relative, relative_range

D = date.fromisoformat


@pytest.mark.parametrize("phrase, today, first, last, kw", [
    ("today", "2024-02-29", "2024-02-29", "2024-02-29", {}),
    ("yesterday", "2024-01-01", "2023-12-31", "2023-12-31", {}),
    ("last 7 days", "2024-03-03", "2024-02-26", "2024-03-03", {}),
    ("Last 28 Days", "2024-03-28", "2024-03-01", "2024-03-28", {}),
    ("past 1 day", "2024-03-28", "2024-03-28", "2024-03-28", {}),
    ("last 2 weeks", "2024-03-14", "2024-03-01", "2024-03-14", {}),
    ("last 1 month", "2024-03-31", "2024-03-01", "2024-03-31", {}),  # Feb 29 + 1 day
    ("last 1 month", "2024-03-15", "2024-02-16", "2024-03-15", {}),
    ("this week", "2024-03-13", "2024-03-11", "2024-03-17", {}),
    ("this week", "2024-03-13", "2024-03-10", "2024-03-16", {"week_start": 6}),
    ("this week", "2024-03-10", "2024-03-10", "2024-03-16", {"week_start": 6}),
    ("last week", "2024-03-13", "2024-03-04", "2024-03-10", {}),
    ("this month", "2024-02-10", "2024-02-01", "2024-02-29", {}),
    ("this month", "2023-02-10", "2023-02-01", "2023-02-28", {}),
    ("last month", "2024-01-15", "2023-12-01", "2023-12-31", {}),
    ("this quarter", "2024-12-31", "2024-10-01", "2024-12-31", {}),
    ("last quarter", "2024-02-01", "2023-10-01", "2023-12-31", {}),
    ("this year", "2024-06-01", "2024-01-01", "2024-12-31", {}),
    ("last year", "2024-06-01", "2023-01-01", "2023-12-31", {}),
    ("month to date", "2024-06-17", "2024-06-01", "2024-06-17", {}),
    ("quarter to date", "2024-06-17", "2024-04-01", "2024-06-17", {}),
    ("year to date", "2024-06-17", "2024-01-01", "2024-06-17", {}),
    ("year-to-date", "2024-01-01", "2024-01-01", "2024-01-01", {}),
])
def test_relative_range(phrase, today, first, last, kw):
    assert relative_range(phrase, D(today), **kw) == (D(first), D(last))


def test_every_listed_phrase_parses():
    for phrase in RELATIVE_RANGES:
        first, last = relative_range(phrase.replace(" N ", " 3 "), D("2024-05-15"))
        assert first <= last


@pytest.mark.parametrize("phrase", ["last fortnight", "next week", "last 0 days", "", "this decade"])
def test_unknown_relative_range(phrase):
    with pytest.raises(QueryError):
        relative_range(phrase, D("2024-05-15"))


def test_is_relative():
    assert is_relative("last 7 days") and not is_relative("2024-01-01") and not is_relative("")


@pytest.mark.parametrize("text, window", [("28 days", Window(28, "day")), ("1 month", Window(1, "month")),
                                          ("1 year", Window(1, "year")), (" 2 weeks ", Window(2, "week"))])
def test_parse_window(text, window):
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["28", "days", "-1 day", "1 fortnight", "1.5 days"])
def test_bad_window(text):
    with pytest.raises(QueryError):
        parse_window(text)


@pytest.mark.parametrize("value, window, sign, want", [
    ("2024-03-31 00:00:00", "1 month", -1, "2024-02-29 00:00:00"),
    ("2023-03-31 00:00:00", "1 month", -1, "2023-02-28 00:00:00"),
    ("2024-02-29 00:00:00", "1 year", -1, "2023-02-28 00:00:00"),
    ("2024-02-29 00:00:00", "1 year", 1, "2025-02-28 00:00:00"),
    ("2024-01-31 12:30:00", "1 month", 1, "2024-02-29 12:30:00"),
    ("2024-03-01 00:00:00", "28 days", -1, "2024-02-02 00:00:00"),
    ("2024-01-01 00:00:00", "1 quarter", -1, "2023-10-01 00:00:00"),
    ("2024-05-31 00:00:00", "1 quarter", -1, "2024-02-29 00:00:00"),
])
def test_shift(value, window, sign, want):
    assert shift(value, parse_window(window), sign) == want


@pytest.mark.parametrize("value, grain, ctx, want", [
    ("2024-03-13 10:00:00", "day", TimeContext(), "2024-03-13"),
    ("2024-03-13 10:00:00", "week", TimeContext(), "2024-03-11"),
    ("2024-03-13 10:00:00", "week", TimeContext(week_start=6), "2024-03-10"),
    ("2024-03-10 10:00:00", "week", TimeContext(week_start=6), "2024-03-10"),
    ("2024-03-13 10:00:00", "month", TimeContext(), "2024-03-01"),
    ("2024-03-13 10:00:00", "quarter", TimeContext(), "2024-01-01"),
    ("2024-03-13 10:00:00", "year", TimeContext(), "2024-01-01"),
    ("2024-03-13 10:00:00", "fiscal_year", TimeContext(fiscal_start=4), "2023-04-01"),
    ("2024-04-01 00:00:00", "fiscal_year", TimeContext(fiscal_start=4), "2024-04-01"),
    ("2024-03-13 10:00:00", "fiscal_quarter", TimeContext(fiscal_start=2), "2024-02-01"),
    ("2024-01-13 10:00:00", "fiscal_quarter", TimeContext(fiscal_start=2), "2023-11-01"),
])
def test_period_start(value, grain, ctx, want):
    assert period_start(value, grain, ctx)[:10] == want


@pytest.mark.parametrize("zone", [None, "", "UTC", "Etc/UTC"])
def test_utc_means_as_stored(zone):
    assert check_timezone(zone) is None


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata", "Europe/Berlin"])
def test_known_zone(zone):
    assert check_timezone(zone) == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America/Los Angeles", "GMT+25"])
def test_unknown_zone(zone):
    with pytest.raises(QueryError) as info:
        check_timezone(zone)
    assert zone in str(info.value)


# --- the SQL side: truncation after shifting into the zone, run on an in-memory DuckDB -----------------


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    yield c
    c.close()


def run_expr(con, tree) -> object:
    return con.execute(exp.select(tree).sql(dialect="duckdb")).fetchone()[0]


def ts(value: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(value), exp.DataType.Type.TIMESTAMP)


@pytest.mark.parametrize("grain, ctx, want", [
    ("day", TimeContext(), "2024-03-13"),
    ("week", TimeContext(), "2024-03-11"),
    ("week", TimeContext(week_start=6), "2024-03-10"),
    ("week", TimeContext(week_start=2), "2024-03-13"),
    ("month", TimeContext(), "2024-03-01"),
    ("quarter", TimeContext(), "2024-01-01"),
    ("fiscal_quarter", TimeContext(fiscal_start=2), "2024-02-01"),
    ("fiscal_year", TimeContext(fiscal_start=4), "2023-04-01"),
    ("fiscal_year", TimeContext(fiscal_start=1), "2024-01-01"),
])
def test_truncate_sql(con, grain, ctx, want):
    assert str(run_expr(con, truncate(ts("2024-03-13 10:00:00"), grain, ctx))) == want


def test_truncate_every_weekday_start(con):
    """For each week_start, every day of two weeks falls into the week beginning on that weekday."""
    for start in range(7):
        ctx = TimeContext(week_start=start)
        for i in range(14):
            day = date(2024, 3, 1) + timedelta(days=i)
            got = run_expr(con, truncate(ts(f"{day} 12:00:00"), "week", ctx))
            assert got.weekday() == start and 0 <= (day - got).days < 7


@pytest.mark.parametrize("stored, zone, want", [
    ("2024-07-04 06:59:00", "America/Los_Angeles", "2024-07-03"),  # PDT, UTC-7
    ("2024-07-04 07:00:00", "America/Los_Angeles", "2024-07-04"),
    ("2024-01-04 07:59:00", "America/Los_Angeles", "2024-01-03"),  # PST, UTC-8
    ("2024-07-03 18:30:00", "Asia/Kolkata", "2024-07-04"),  # UTC+5:30
    ("2024-07-03 18:29:00", "Asia/Kolkata", "2024-07-03"),
    ("2024-07-04 06:59:00", None, "2024-07-04"),
])
def test_zone_moves_the_day(con, stored, zone, want):
    ctx = TimeContext(timezone=zone)
    assert str(run_expr(con, truncate(in_zone(ts(stored), "timestamp", ctx), "day", ctx))) == want


def test_zone_leaves_dates_alone():
    ctx = TimeContext(timezone="America/Los_Angeles")
    column = exp.column("spend_date")
    assert in_zone(column, "date", ctx) is column


def test_zone_month_boundary(con):
    """2024-03-01 03:00 UTC is still February in Los Angeles."""
    ctx = TimeContext(timezone="America/Los_Angeles")
    got = run_expr(con, truncate(in_zone(ts("2024-03-01 03:00:00"), "timestamp", ctx), "month", ctx))
    assert str(got) == "2024-02-01"
    assert datetime(2024, 3, 1, 3) > datetime(2024, 3, 1)
