"""Oracle tests for the time metrics of metrics/time.yml, gap filling, time zones, calendars, HAVING.

The oracle: hand-written, portable SQL (DuckDB and PostgreSQL 15) aggregates the raw demo tables
per *day* (in the requested time zone: ``(ts AT TIME ZONE 'UTC') AT TIME ZONE zone``), and plain
Python does the calendar work from the definitions — periods, the last day of each period in scope,
trailing 28-day and to-date windows, one month / one year earlier with month ends clamped (Mar 31 →
Feb 29), growth ratios, empty periods. Nothing here reads Canon's SQL.

Definitions checked (see metrics/time.yml and the issue):
* cumulative: for each period P, the days in (E − 28 days, E] (rolling), [start of E's month/year, E]
  (to date) or [the data's first day, E] (all time), E = P's last day within the range (or within the data's first..last day); a range widens
  the scan, the output keeps only periods in range; a period whose window holds no data is absent.
* offsets: prev(P) = the value of the period holding P − 1 month (1 year); at week grain the days whose
  date one month (year) later lies in P (the same days one offset earlier); growth = cur / prev − 1,
  NULL when either is missing or prev = 0.
* fill: order_count / lead_count / meeting_count list every period of the range (or data span), 0 when
  empty; revenue stays NULL.
"""

from __future__ import annotations

import calendar as pycal
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from canon.compiler.compile import load_catalog
from canon.compiler.errors import CanonError, CatalogErrors, QueryError
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, normalize
from tests.support.project import copy_project

REPO = Path(__file__).resolve().parent.parent
LA = "America/Los_Angeles"

# --- the oracle: daily aggregates in SQL ------------------------------------------------------------------

REVENUE = "SUM(oi.quantity * oi.unit_price - oi.discount_amount)"
FACTS = {
    # metric -> (FROM ..., WHERE ..., time column, aggregate)
    "revenue": ("FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id\n"
                "JOIN customers AS c ON c.customer_id = o.customer_id",
                ["o.status = 'completed'"], "o.ordered_at", REVENUE),
    "order_count": ("FROM orders AS o JOIN customers AS c ON c.customer_id = o.customer_id",
                    ["o.status = 'completed'"], "o.ordered_at", "COUNT(*)"),
    "lead_count": ("FROM leads AS l LEFT JOIN campaigns AS cp ON cp.campaign_id = l.campaign_id",
                   [], "l.created_at", "COUNT(*)"),
    "meeting_count": ("FROM leads AS l LEFT JOIN campaigns AS cp ON cp.campaign_id = l.campaign_id",
                      [], "l.created_at", "COUNT(l.meeting_at)"),
    "ad_spend": ("FROM (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY a.campaign_id, a.spend_date, a.country_code "
                 "ORDER BY a._etl_loaded_at DESC) AS rn FROM ad_spend AS a) AS s",
                 ["s.rn = 1"], "s.spend_date", "SUM(s.spend)"),
}
DIMS = {"customer.segment": "c.segment", "order.sales_channel": "o.sales_channel", "lead.source": "l.source",
        "campaign.channel": "cp.channel"}


def local(column: str, tz: str | None) -> str:
    return column if not tz else f"(({column} AT TIME ZONE 'UTC') AT TIME ZONE '{tz}')"


_CACHE: dict = {}


def daily(warehouse, metric: str, dims=(), where=(), tz: str | None = None) -> dict[tuple, object]:
    """{(day, *dimension values): value} over all the data (ranges are applied in Python)."""
    key = (id(warehouse), metric, tuple(dims), tuple(where), tz)
    if key not in _CACHE:
        from_sql, conditions, column, agg = FACTS[metric]
        # DATE columns (ad_spend.spend_date) are days already: a zone does not move them
        day = f"CAST({local(column, None if metric == 'ad_spend' else tz)} AS DATE)"
        exprs = [day] + [DIMS[d] for d in dims]
        conds = conditions + list(where)
        sql = (f"SELECT {', '.join(exprs)}, {agg}\n{from_sql}\n"
               + (f"WHERE {' AND '.join(f'({c})' for c in conds)}\n" if conds else "")
               + f"GROUP BY {', '.join(exprs)}")
        rows = warehouse.execute(sql)[1]
        _CACHE[key] = {(_day(r[0]),) + tuple(r[1:-1]): r[-1] for r in rows}
    return _CACHE[key]


def _day(value) -> date:
    return value if isinstance(value, date) and not hasattr(value, "hour") else date.fromisoformat(str(value)[:10])


# --- the oracle: calendar arithmetic in Python --------------------------------------------------------------


def pstart(day: date, grain: str, week_start: int = 0, fiscal: int = 1) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if grain == "month":
        return day.replace(day=1)
    if grain in ("quarter", "fiscal_quarter", "year", "fiscal_year"):
        first = fiscal if grain.startswith("fiscal") else 1
        span = 3 if grain.endswith("quarter") else 12
        back = (day.month - first) % span
        return add_months(day.replace(day=1), -back)
    raise AssertionError(grain)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, pycal.monthrange(year, month)[1]))


def days(first: date, last: date):
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def as_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def num(value):
    return None if value is None else Decimal(str(value)) if not isinstance(value, Decimal) else value


def periods(data: dict, grain: str, start=None, end=None, **cal) -> dict[tuple, Decimal]:
    """Sum of the daily values per (period, dims), rows restricted to [start, end]."""
    out: dict[tuple, Decimal] = {}
    for (day, *dims), value in data.items():
        if (start and day < start) or (end and day > end):
            continue
        k = (pstart(day, grain, **cal), *dims)
        out[k] = out.get(k, 0) + num(value)
    return out


def span(data: dict, start=None, end=None) -> tuple[date, date]:
    all_days = sorted({k[0] for k in data})
    return start or all_days[0], end or all_days[-1]


def cumulative_oracle(data, grain, kind, start=None, end=None):
    first, last = span(data, start, end)
    ends: dict[date, date] = {}
    for d in days(first, last):
        ends[pstart(d, grain)] = d  # the period's last day in scope
    dim_keys = sorted({k[1:] for k in data}, key=str)
    rows = []
    for period, e in ends.items():
        lo = {"rolling": e - timedelta(days=27), "mtd": e.replace(day=1), "ytd": date(e.year, 1, 1),
              "all": min(k[0] for k in data)}[kind]  # all time: from the data's first day, whatever the range
        for dk in dim_keys:
            values = [num(data[(d, *dk)]) for d in days(lo, e) if (d, *dk) in data]
            if values:
                rows.append([period, *dk, sum(values)])
    return rows


def offset_oracle(data, grain, months, output, start=None, end=None):
    """output: 'prev' (the earlier period's value) or 'growth' (cur / prev - 1). Without a range, the
    periods from the data's first to one month (year) after its last day."""
    current = periods(data, grain, start, end)
    full = periods(data, grain)  # the earlier period is read whole, wherever the range starts
    if grain == "week":  # the same days one offset earlier: a day counts for the week holding it moved forward
        full = {}
        for (day, *dims), value in data.items():
            key = (pstart(add_months(day, months), grain), *dims)
            full[key] = full.get(key, 0) + num(value)
    first, last = span(data)
    dim_keys = sorted({k[1:] for k in data}, key=str)
    lo = pstart(start, grain) if start else pstart(first, grain)
    hi = end if end else add_months(last, months) + timedelta(days=31)
    candidates = sorted({pstart(d, grain) for d in days(lo, hi)})
    rows = []
    for p in candidates:
        for dk in dim_keys:
            prev = full.get((p if grain == "week" else pstart(add_months(p, -months), grain), *dk))
            cur = current.get((p, *dk))
            if output == "prev":
                if prev is not None:
                    rows.append([p, *dk, prev])
            elif cur is not None or prev is not None:
                growth = None if cur is None or prev is None or prev == 0 else float(cur) / float(prev) - 1
                rows.append([p, *dk, growth])
    return rows


def ask(metrics, dims, **kw) -> QueryRequest:
    return QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims), **kw)


def compare(catalog, warehouse, req: QueryRequest, want, rel=1e-9):
    got = canon_rows(catalog, warehouse, req)
    assert want, "the oracle found no rows"
    assert_same(got, want, keys=len(req.dimensions), rel=rel, abs_tol=1e-6, label=str(req))
    return got


# --- cumulative ------------------------------------------------------------------------------------------

CUMULATIVE = {"revenue_rolling_28d": "rolling", "revenue_mtd": "mtd", "revenue_ytd": "ytd", "revenue_to_date": "all"}
RANGES = [(None, None), ("2024-03-10", "2024-06-20"), ("2025-01-01", "2025-12-31")]
ENTERPRISE = ("customer.segment = 'enterprise'", "c.segment = 'enterprise'")


@pytest.mark.parametrize("start, end", RANGES, ids=lambda v: str(v))
@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("metric", list(CUMULATIVE))
def test_cumulative(catalog, warehouse, metric, grain, start, end):
    data = daily(warehouse, "revenue")
    want = cumulative_oracle(data, grain, CUMULATIVE[metric], as_date(start), as_date(end))
    compare(catalog, warehouse, ask([metric], [f"metric_time.{grain}"], start=start, end=end), want)


@pytest.mark.parametrize("grain", ["week", "month"])
@pytest.mark.parametrize("metric", list(CUMULATIVE))
def test_cumulative_with_filter_and_dimension(catalog, warehouse, metric, grain):
    data = daily(warehouse, "revenue", dims=("order.sales_channel",), where=(ENTERPRISE[1],))
    start, end = "2024-05-15", "2024-11-30"
    want = cumulative_oracle(data, grain, CUMULATIVE[metric], as_date(start), as_date(end))
    req = ask([metric], [f"metric_time.{grain}", "order.sales_channel"], where=(ENTERPRISE[0],),
                  start=start, end=end)
    compare(catalog, warehouse, req, want)


def test_cumulative_with_filter_no_range(catalog, warehouse):
    data = daily(warehouse, "revenue", where=(ENTERPRISE[1],))
    want = cumulative_oracle(data, "week", "rolling")
    compare(catalog, warehouse, ask(["revenue_rolling_28d"], ["metric_time.week"], where=(ENTERPRISE[0],)), want)


def test_rolling_window_is_28_days_inclusive(catalog, warehouse):
    """A hand check of one value: the 28 days ending 2024-06-30 inclusive (2024-06-03 .. 2024-06-30)."""
    sql = (f"SELECT {REVENUE} FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id "
           "WHERE o.status = 'completed' AND o.ordered_at >= TIMESTAMP '2024-06-03 00:00:00' "
           "AND o.ordered_at < TIMESTAMP '2024-07-01 00:00:00'")
    want = warehouse.execute(sql)[1][0][0]
    rows = canon_rows(catalog, warehouse, ask(["revenue_rolling_28d", "revenue_mtd"], ["metric_time.month"],
                                                  start="2024-06-01", end="2024-06-30"))
    assert len(rows) == 1 and normalize(rows[0][0]) == "2024-06-01"
    assert rows[0][1] == pytest.approx(float(want))
    # MTD at month grain is the month's revenue
    month = warehouse.execute(sql.replace("2024-06-03", "2024-06-01"))[1][0][0]
    assert rows[0][2] == pytest.approx(float(month))


# --- offsets ---------------------------------------------------------------------------------------------

OFFSETS = {"revenue_prev_month": (1, "prev"), "revenue_mom_growth": (1, "growth"), "revenue_yoy_growth": (12, "growth")}
# whole periods at every grain: weeks Monday..Sunday, months first..last day
OFFSET_RANGES = {"day": ("2024-03-01", "2024-05-31"), "week": ("2025-03-03", "2025-06-29"),
                 "month": ("2024-11-01", "2025-10-31")}

@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("metric", list(OFFSETS))
def test_offset_with_range(request, catalog, warehouse, metric, grain):
    months, output = OFFSETS[metric]
    start, end = OFFSET_RANGES[grain]
    want = offset_oracle(daily(warehouse, "revenue"), grain, months, output, as_date(start), as_date(end))
    compare(catalog, warehouse, ask([metric], [f"metric_time.{grain}"], start=start, end=end), want, rel=1e-7)


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_prev_month_no_range(catalog, warehouse, grain):
    data = daily(warehouse, "revenue")
    last = pstart(span(data)[1], grain)
    want = [r for r in offset_oracle(data, grain, 1, "prev") if r[0] <= last]
    got = canon_rows(catalog, warehouse, ask(["revenue_prev_month"], [f"metric_time.{grain}"]))
    # periods after the data's last one are an edge (see test_offset_rows_after_the_data); a NULL row is
    # an earlier period without data, as the outer join defines it
    got = [r for r in got if date.fromisoformat(normalize(r[0])) <= last and r[1] is not None]
    assert_same(got, want, keys=1, rel=1e-9)


@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("metric", ["revenue_mom_growth", "revenue_yoy_growth"])
def test_growth_no_range(catalog, warehouse, metric, grain):
    months, output = OFFSETS[metric]
    data = daily(warehouse, "revenue")
    last = pstart(span(data)[1], grain)
    want = [r for r in offset_oracle(data, grain, months, output) if r[0] <= last]
    got = canon_rows(catalog, warehouse, ask([metric], [f"metric_time.{grain}"]))
    got = [r for r in got if date.fromisoformat(normalize(r[0])) <= last]
    assert_same(got, want, keys=1, rel=1e-7)


@pytest.mark.parametrize("grain, metric, period", [
    ("month", "revenue_prev_month", "2026-01-01"),
    ("day", "revenue_prev_month", "2026-01-31"),
    ("week", "revenue_prev_month", "2026-01-26"),  # 2025-12-31 + 1 month = 2026-01-31, in the week of 2026-01-26
])
def test_offset_rows_after_the_data(catalog, warehouse, grain, metric, period):
    """Without a range, the periods after the data whose earlier period has data are listed."""
    want = {normalize(r[0]): r[1] for r in offset_oracle(daily(warehouse, "revenue"), grain, 1, "prev")}
    got = {normalize(r[0]): r[1] for r in canon_rows(catalog, warehouse, ask([metric], [f"metric_time.{grain}"]))}
    assert want[period] is not None
    assert got.get(period) == pytest.approx(float(want[period]))


@pytest.mark.parametrize("metric", list(OFFSETS))
def test_offset_with_filter_and_dimension(catalog, warehouse, metric):
    months, output = OFFSETS[metric]
    data = daily(warehouse, "revenue", dims=("order.sales_channel",), where=(ENTERPRISE[1],))
    start, end = "2025-01-01", "2025-12-31"
    want = offset_oracle(data, "month", months, output, as_date(start), as_date(end))
    req = ask([metric], ["metric_time.month", "order.sales_channel"], where=(ENTERPRISE[0],), start=start, end=end)
    compare(catalog, warehouse, req, want, rel=1e-7)


def _revenue_on(warehouse, day: str) -> float:
    return float(daily(warehouse, "revenue")[(date.fromisoformat(day),)])


def test_prev_month_across_month_ends_and_leap_day(catalog, warehouse):
    """Mar 29, 30 and 31 2024 all read Feb 29 2024; May 31 reads Apr 30; Mar 1 reads Feb 1."""
    rows = canon_rows(catalog, warehouse, ask(["revenue", "revenue_prev_month", "revenue_mom_growth"],
                                                  ["metric_time.day"], start="2024-03-01", end="2024-05-31"))
    by_day = {normalize(r[0]): r for r in rows}
    for day, earlier in [("2024-03-29", "2024-02-29"), ("2024-03-30", "2024-02-29"), ("2024-03-31", "2024-02-29"),
                         ("2024-05-31", "2024-04-30"), ("2024-03-01", "2024-02-01"), ("2024-04-30", "2024-03-30")]:
        prev = _revenue_on(warehouse, earlier)
        assert by_day[day][2] == pytest.approx(prev), f"{day} should read {earlier}"
        assert by_day[day][3] == pytest.approx(_revenue_on(warehouse, day) / prev - 1)


def test_prev_month_range_ending_before_a_clamped_day(catalog, warehouse):
    rows = canon_rows(catalog, warehouse, ask(["revenue_prev_month"], ["metric_time.day"],
                                                  start="2024-03-28", end="2024-03-30"))
    feb29 = _revenue_on(warehouse, "2024-02-29")
    want = [["2024-03-28", _revenue_on(warehouse, "2024-02-28")], ["2024-03-29", feb29], ["2024-03-30", feb29]]
    assert_same(rows, want, keys=1, rel=1e-9)


def test_yoy_leap_day(catalog, warehouse):
    """Feb 29 2024 compares with Feb 28 2023 (no data: NULL); 2025-02-28 compares with 2024-02-28;
    at month grain Feb 2025 compares with the whole of Feb 2024 (29 days)."""
    rows = canon_rows(catalog, warehouse, ask(["revenue", "revenue_yoy_growth"], ["metric_time.day"],
                                                  start="2024-02-27", end="2024-03-01"))
    assert {normalize(r[0]): r[2] for r in rows}["2024-02-29"] is None
    rows = canon_rows(catalog, warehouse, ask(["revenue_yoy_growth"], ["metric_time.day"],
                                                  start="2025-02-27", end="2025-03-01"))
    got = {normalize(r[0]): r[1] for r in rows}
    assert got["2025-02-28"] == pytest.approx(_revenue_on(warehouse, "2025-02-28") / _revenue_on(warehouse, "2024-02-28") - 1)
    assert got["2025-03-01"] == pytest.approx(_revenue_on(warehouse, "2025-03-01") / _revenue_on(warehouse, "2024-03-01") - 1)
    rows = canon_rows(catalog, warehouse, ask(["revenue_yoy_growth"], ["metric_time.month"],
                                                  start="2025-02-01", end="2025-02-28"))
    feb = periods(daily(warehouse, "revenue"), "month")
    assert len(rows) == 1
    assert rows[0][1] == pytest.approx(float(feb[(date(2025, 2, 1),)]) / float(feb[(date(2024, 2, 1),)]) - 1)


def test_yoy_at_day_grain_clamps_feb_29(catalog, warehouse):
    """2025-02-28's row exists once; 2024-02-29 + 1 year lands on 2025-02-28 too and must not duplicate it."""
    rows = canon_rows(catalog, warehouse, ask(["revenue_yoy_growth"], ["metric_time.day"]))
    keys = [normalize(r[0]) for r in rows]
    assert len(keys) == len(set(keys))


# --- gap filling ------------------------------------------------------------------------------------------

FILLED = ("order_count", "lead_count", "meeting_count")


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_gap_filling_before_the_data(catalog, warehouse, grain):
    start, end = "2023-11-01", "2024-02-29"
    revenue = periods(daily(warehouse, "revenue"), grain, as_date(start), as_date(end))
    counts = {m: periods(daily(warehouse, m), grain, as_date(start), as_date(end)) for m in FILLED}
    want = []
    for p in sorted({pstart(d, grain) for d in days(as_date(start), as_date(end))}):
        want.append([p] + [counts[m].get((p,), 0) for m in FILLED] + [revenue.get((p,))])
    got = compare(catalog, warehouse, ask(list(FILLED) + ["revenue"], [f"metric_time.{grain}"],
                                              start=start, end=end), want)
    if grain == "month":
        assert [r[1:] for r in got[:2]] == [[0, 0, 0, None], [0, 0, 0, None]]
    assert all(isinstance(v, int) for r in got for v in r[1:4]), "counts stay whole numbers"


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_fill_every_period_of_the_data(catalog, warehouse, grain):
    """No range: every period between the first and the last day of the data, 0 where a filter empties it."""
    data = daily(warehouse, "order_count", where=(ENTERPRISE[1],))
    first, last = span(daily(warehouse, "order_count", where=(ENTERPRISE[1],)))
    counts = periods(data, grain)
    want = [[p, counts.get((p,), 0)] for p in sorted({pstart(d, grain) for d in days(first, last)})]
    got = compare(catalog, warehouse, ask(["order_count"], [f"metric_time.{grain}"], where=(ENTERPRISE[0],)), want)
    if grain == "day":
        assert any(r[1] == 0 for r in got), "enterprise orders should leave some empty days"


def test_fill_with_a_second_dimension(catalog, warehouse):
    """Asked for, every (period, channel) pair is listed: the spine crosses the periods with the groups found."""
    start, end = "2023-12-01", "2024-03-31"
    data = daily(warehouse, "order_count", dims=("order.sales_channel",))
    counts = periods(data, "month", as_date(start), as_date(end))
    channels = sorted({k[1] for k in counts})
    want = [[p, ch, counts.get((p, ch), 0)] for p in sorted({pstart(d, "month") for d in days(as_date(start), as_date(end))})
            for ch in channels]
    compare(catalog, warehouse, ask(["order_count"], ["metric_time.month", "order.sales_channel"],
                                        start=start, end=end, fill_gaps=True), want)


def test_unfilled_metric_is_not_gap_filled(catalog, warehouse):
    rows = canon_rows(catalog, warehouse, ask(["revenue"], ["metric_time.month"], start="2023-11-01", end="2024-02-29"))
    assert [normalize(r[0]) for r in rows] == ["2024-01-01", "2024-02-01"]


# --- time zones -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_timezone_shifts_days(catalog, warehouse, grain):
    start, end = "2024-03-01", "2024-04-30"  # across the US DST change (2024-03-10)
    want = {}
    for tz in (None, LA):
        counts = periods(daily(warehouse, "order_count", tz=tz), grain, as_date(start), as_date(end))
        want[tz] = [[p, counts.get((p,), 0)] for p in sorted({pstart(d, grain) for d in days(as_date(start), as_date(end))})]
    assert want[None] != want[LA], "the zone should move some orders to another period"
    for tz in (None, "UTC", LA):
        compare(catalog, warehouse, ask(["order_count"], [f"metric_time.{grain}"], start=start, end=end, timezone=tz),
                want[None if tz == "UTC" else tz])


def test_timezone_daily_difference_is_exactly_the_shifted_orders(catalog, warehouse):
    """A day in LA is 2024-07-04 07:00 UTC .. 2024-07-05 07:00 UTC (PDT, UTC-7)."""
    utc = canon_rows(catalog, warehouse, ask(["order_count"], ["metric_time.day"], start="2024-07-04", end="2024-07-04"))
    la = canon_rows(catalog, warehouse, ask(["order_count"], ["metric_time.day"], start="2024-07-04", end="2024-07-04",
                                                timezone=LA))
    count = lambda lo, hi: warehouse.execute(  # noqa: E731
        "SELECT COUNT(*) FROM orders WHERE status = 'completed' "
        f"AND ordered_at >= TIMESTAMP '{lo}' AND ordered_at < TIMESTAMP '{hi}'")[1][0][0]
    assert utc == [["2024-07-04", count("2024-07-04 00:00:00", "2024-07-05 00:00:00")]]
    assert la == [["2024-07-04", count("2024-07-04 07:00:00", "2024-07-05 07:00:00")]]
    assert la != utc


@pytest.mark.parametrize("metric", ["revenue", "revenue_rolling_28d", "revenue_mom_growth"])
def test_timezone_for_time_metrics(catalog, warehouse, metric):
    data = daily(warehouse, "revenue", tz=LA)
    start, end = "2024-06-01", "2024-09-30"
    if metric == "revenue":
        want = [[k[0], v] for k, v in periods(data, "month", as_date(start), as_date(end)).items()]
    elif metric == "revenue_rolling_28d":
        want = cumulative_oracle(data, "month", "rolling", as_date(start), as_date(end))
    else:
        want = offset_oracle(data, "month", 1, "growth", as_date(start), as_date(end))
    compare(catalog, warehouse, ask([metric], ["metric_time.month"], start=start, end=end, timezone=LA), want, rel=1e-7)


def test_timezone_leaves_date_columns_alone(catalog, warehouse):
    """ad_spend.spend_date is a DATE: no zone moves it."""
    start, end = "2024-03-01", "2024-03-31"
    spend = periods(daily(warehouse, "ad_spend"), "day", as_date(start), as_date(end))
    want = [[k[0], v] for k, v in spend.items()]
    for tz in (None, LA, "Asia/Tokyo"):
        compare(catalog, warehouse, ask(["ad_spend"], ["metric_time.day"], start=start, end=end, timezone=tz), want)


def test_timezone_moves_the_range_too(catalog, warehouse):
    """start/end are read in the zone: Tokyo's 2024-05-01 starts at 2024-04-30 15:00 UTC."""
    rows = canon_rows(catalog, warehouse, ask(["order_count"], [], start="2024-05-01", end="2024-05-31",
                                                  timezone="Asia/Tokyo"))
    want = warehouse.execute("SELECT COUNT(*) FROM orders WHERE status = 'completed' "
                             "AND ordered_at >= TIMESTAMP '2024-04-30 15:00:00' "
                             "AND ordered_at < TIMESTAMP '2024-05-31 15:00:00'")[1][0][0]
    assert rows == [[want]]


# --- calendar settings (canon.yml in a project copy) ------------------------------------------------------


def project_copy(tmp_path: Path, calendar: dict, time_spine: bool = True) -> Path:
    """The repo's models and metrics with a canon.yml whose `calendar` is exactly `calendar`."""
    root = copy_project(tmp_path / "project")
    settings = yaml.safe_load((REPO / "canon.yml").read_text())
    settings["calendar"] = calendar
    if not time_spine:
        settings.pop("time_spine", None)
    (root / "canon.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return root


def test_week_start_sunday(tmp_path, warehouse):
    cat = load_catalog(project_copy(tmp_path, {"week_start": "sunday"}))
    start, end = "2024-03-03", "2024-04-27"  # Sunday .. Saturday
    counts = periods(daily(warehouse, "order_count"), "week", as_date(start), as_date(end), week_start=6)
    want = [[k[0], v] for k, v in counts.items()]
    got = compare(cat, warehouse, ask(["order_count"], ["metric_time.week"], start=start, end=end), want)
    assert all(date.fromisoformat(normalize(r[0])).weekday() == 6 for r in got)
    # "this week" follows week_start too: Wed 2024-03-13 -> Sun 03-10 .. Sat 03-16
    rows = canon_rows(cat, warehouse, ask(["order_count"], ["metric_time.day"], time_range="this week",
                                              today="2024-03-13"))
    assert [normalize(r[0]) for r in rows] == [str(date(2024, 3, 10) + timedelta(days=i)) for i in range(7)]


def test_week_start_sunday_with_mtd_by_week(tmp_path, warehouse):
    cat = load_catalog(project_copy(tmp_path, {"week_start": "sunday"}))
    data = daily(warehouse, "revenue")
    start, end = as_date("2024-03-03"), as_date("2024-05-04")
    ends: dict = {}
    for d in days(start, end):
        ends[pstart(d, "week", week_start=6)] = d
    want = [[p, sum(num(data[(d,)]) for d in days(e.replace(day=1), e) if (d,) in data)] for p, e in ends.items()]
    compare(cat, warehouse, ask(["revenue_mtd"], ["metric_time.week"], start=str(start), end=str(end)), want)


@pytest.mark.parametrize("fiscal, grain", [(4, "fiscal_year"), (4, "fiscal_quarter"), (2, "fiscal_quarter"),
                                           (1, "fiscal_year")])
def test_fiscal_grains(tmp_path, warehouse, fiscal, grain):
    cat = load_catalog(project_copy(tmp_path, {"fiscal_year_start_month": fiscal}))
    counts = periods(daily(warehouse, "revenue"), grain, fiscal=fiscal)
    want = [[k[0], v] for k, v in counts.items()]
    got = compare(cat, warehouse, ask(["revenue"], [f"metric_time.{grain}"]), want)
    assert all(date.fromisoformat(normalize(r[0])).month % (3 if grain == "fiscal_quarter" else 12)
               == fiscal % (3 if grain == "fiscal_quarter" else 12) for r in got)


def test_fiscal_year_range(tmp_path, warehouse):
    """fiscal_year_start_month 4: FY starting 2024-04-01 runs to 2025-03-31; 'this year' stays the calendar year."""
    cat = load_catalog(project_copy(tmp_path, {"fiscal_year_start_month": 4}))
    got = canon_rows(cat, warehouse, ask(["order_count"], ["metric_time.fiscal_year"], start="2024-04-01",
                                             end="2025-03-31"))
    counts = periods(daily(warehouse, "order_count"), "day", as_date("2024-04-01"), as_date("2025-03-31"))
    assert got == [["2024-04-01", sum(counts.values())]]


# --- relative ranges -------------------------------------------------------------------------------------

RELATIVE = [  # (phrase, today, first, last)
    ("today", "2024-06-15", "2024-06-15", "2024-06-15"),
    ("yesterday", "2024-03-01", "2024-02-29", "2024-02-29"),
    ("last 7 days", "2024-03-03", "2024-02-26", "2024-03-03"),
    ("last 28 days", "2024-03-28", "2024-03-01", "2024-03-28"),
    ("this month", "2024-02-10", "2024-02-01", "2024-02-29"),
    ("last month", "2024-03-31", "2024-02-01", "2024-02-29"),
    ("this quarter", "2024-05-20", "2024-04-01", "2024-06-30"),
    ("year to date", "2025-02-14", "2025-01-01", "2025-02-14"),
    ("this week", "2024-03-13", "2024-03-11", "2024-03-17"),
]


@pytest.mark.parametrize("phrase, today, first, last", RELATIVE, ids=[r[0] for r in RELATIVE])
def test_relative_range(catalog, warehouse, phrase, today, first, last):
    counts = periods(daily(warehouse, "order_count"), "day", as_date(first), as_date(last))
    want = [[d, counts.get((d,), 0)] for d in days(as_date(first), as_date(last))]
    got = compare(catalog, warehouse, ask(["order_count"], ["metric_time.day"], time_range=phrase, today=today), want)
    explicit = canon_rows(catalog, warehouse, ask(["order_count"], ["metric_time.day"], start=first, end=last))
    assert got == explicit


def test_relative_range_with_cumulative_and_offset(catalog, warehouse):
    data = daily(warehouse, "revenue")
    want = cumulative_oracle(data, "week", "rolling", date(2024, 4, 1), date(2024, 6, 30))
    compare(catalog, warehouse, ask(["revenue_rolling_28d"], ["metric_time.week"], time_range="this quarter",
                                        today="2024-05-20"), want)
    want = offset_oracle(data, "month", 1, "growth", date(2024, 4, 1), date(2024, 6, 30))
    compare(catalog, warehouse, ask(["revenue_mom_growth"], ["metric_time.month"], time_range="last quarter",
                                        today="2024-08-02"), want, rel=1e-7)


def test_calendar_now_pins_today(tmp_path, warehouse):
    cat = load_catalog(project_copy(tmp_path, {"now": "2024-02-29"}))
    got = canon_rows(cat, warehouse, ask(["order_count"], ["metric_time.month"], time_range="last month"))
    counts = periods(daily(warehouse, "order_count"), "month", date(2024, 1, 1), date(2024, 1, 31))
    assert got == [["2024-01-01", counts[(date(2024, 1, 1),)]]]


def test_relative_range_in_a_time_zone(catalog, warehouse):
    counts = periods(daily(warehouse, "order_count", tz=LA), "day", date(2024, 11, 1), date(2024, 11, 7))
    want = [[d, counts.get((d,), 0)] for d in days(date(2024, 11, 1), date(2024, 11, 7))]
    compare(catalog, warehouse, ask(["order_count"], ["metric_time.day"], time_range="last 7 days",
                                        today="2024-11-07", timezone=LA), want)


# --- HAVING -----------------------------------------------------------------------------------------------


def test_having_on_a_dimension_total(catalog, warehouse):
    sql = (f"SELECT p.category, {REVENUE} FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id "
           "JOIN products AS p ON p.product_id = oi.product_id WHERE o.status = 'completed' GROUP BY p.category "
           f"HAVING {REVENUE} > 1000000")
    want = warehouse.execute(sql)[1]
    assert 0 < len(want) < len(warehouse.execute("SELECT DISTINCT category FROM products")[1])
    compare(catalog, warehouse, ask(["revenue"], ["product.category"], having=("revenue > 1000000",)), want)


def test_having_on_time_metrics(catalog, warehouse):
    data = daily(warehouse, "revenue")
    want = [r for r in cumulative_oracle(data, "month", "rolling", date(2024, 1, 1), date(2025, 12, 31))
            if r[1] > 400000]
    growth = {r[0]: r[1] for r in offset_oracle(data, "month", 1, "growth", date(2024, 1, 1), date(2025, 12, 31))}
    want = [[p, v, growth.get(p)] for p, v in want if growth.get(p) is not None and growth[p] > 0]
    assert want
    compare(catalog, warehouse, ask(["revenue_rolling_28d", "revenue_mom_growth"], ["metric_time.month"],
                                        start="2024-01-01", end="2025-12-31",
                                        having=("revenue_rolling_28d > 400000", "revenue_mom_growth > 0")), want, rel=1e-7)


def test_having_with_gap_filled_counts_and_limit(catalog, warehouse):
    counts = periods(daily(warehouse, "order_count"), "month", date(2023, 11, 1), date(2024, 6, 30))
    months = sorted({pstart(d, "month") for d in days(date(2023, 11, 1), date(2024, 6, 30))})
    want = [[p, counts.get((p,), 0)] for p in months if counts.get((p,), 0) == 0]
    got = canon_rows(catalog, warehouse, ask(["order_count"], ["metric_time.month"], start="2023-11-01",
                                                 end="2024-06-30", having=("order_count = 0",)))
    assert_same(got, want, keys=1)
    got = canon_rows(catalog, warehouse, ask(["order_count"], ["metric_time.month"], start="2023-11-01",
                                                 end="2024-06-30", having=("order_count > 0",),
                                                 order=("-order_count",), limit=2))
    top = sorted(([p, counts[(p,)]] for p in months if counts.get((p,))), key=lambda r: -r[1])[:2]
    assert_same(got, top, ordered=True)


# --- errors -----------------------------------------------------------------------------------------------


def error_of(cat, **kw) -> CanonError:
    from canon.compiler.compile import compile_request

    with pytest.raises(CanonError) as info:
        compile_request(cat, QueryRequest(**kw))
    return info.value


@pytest.mark.parametrize("metric, dims", [
    ("revenue_mtd", ("metric_time.year",)),
    ("revenue_mtd", ("metric_time.quarter",)),
    ("revenue_mtd", ("metric_time.fiscal_quarter",)),
])
def test_error_window_grain(catalog, metric, dims):
    error = error_of(catalog, metrics=(metric,), dimensions=dims)
    assert isinstance(error, QueryError)
    assert metric in str(error) and dims[0].split(".")[1] in str(error)


@pytest.mark.parametrize("metric", ["revenue_rolling_28d", "revenue_mtd", "revenue_prev_month",
                                    "revenue_mom_growth", "revenue_yoy_growth"])
@pytest.mark.parametrize("dims", [(), ("customer.segment",), ("order.ordered_at.month",)])
def test_error_time_metric_without_metric_time(catalog, metric, dims):
    error = error_of(catalog, metrics=(metric,), dimensions=dims)
    assert isinstance(error, QueryError)
    assert metric in str(error) and "metric_time" in str(error)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "PST8", "america/los angeles", "+02:00"])
def test_error_unknown_time_zone(catalog, zone):
    error = error_of(catalog, metrics=("revenue",), dimensions=("metric_time.day",), timezone=zone)
    assert isinstance(error, QueryError)
    assert "time zone" in str(error) and zone in str(error)


def test_error_time_range_with_start_or_end(catalog):
    for extra in ({"start": "2024-01-01"}, {"end": "2024-01-31"}):
        error = error_of(catalog, metrics=("revenue",), time_range="last month", today="2024-03-01", **extra)
        assert isinstance(error, QueryError) and "time_range" in str(error)


@pytest.mark.parametrize("kw, words", [
    ({"time_range": "last fortnight", "today": "2024-03-01"}, ["last fortnight"]),
    ({"time_range": "last 0 days", "today": "2024-03-01"}, ["count"]),
    ({"time_range": "this month", "today": "March 1st"}, ["today"]),
    ({"start": "2024-02-30"}, ["start"]),
    ({"start": "2024-03-01", "end": "2024-02-01"}, ["start", "end"]),
])
def test_error_bad_ranges(catalog, kw, words):
    error = error_of(catalog, metrics=("revenue",), **kw)
    assert isinstance(error, QueryError)
    assert all(w in str(error) for w in words), str(error)


def test_error_unknown_having_reference(catalog):
    error = error_of(catalog, metrics=("revenue",), dimensions=("metric_time.month",), having=("order_count > 5",))
    assert "having" in str(error) and "order_count" in str(error)


SMALL_METRICS = """metrics:
  - {name: revenue, type: simple, measure: order_item.line_revenue, filter: "order.status = 'completed'"}
  - {name: order_count, type: simple, measure: order.orders, filter: "order.status = 'completed'",
     fill_nulls_with: 0, join_to_timespine: true}
  - {name: revenue_rolling_28d, type: cumulative, metric: revenue, window: 28 days}
  - {name: revenue_ytd, type: cumulative, metric: revenue, grain_to_date: year}
  - name: revenue_mom_growth
    type: derived
    expr: revenue / NULLIF(revenue_last_month, 0) - 1
    metrics: [revenue, {name: revenue, alias: revenue_last_month, offset_window: 1 month}]
"""


def _no_spine_project(tmp_path: Path, metrics: str | None = SMALL_METRICS) -> Path:
    """The repo's models; a small metrics file (the repo's views list order_count, which needs the spine)."""
    root = project_copy(tmp_path, {}, time_spine=False)
    assert "time_spine" not in (root / "canon.yml").read_text()
    if metrics is not None:
        shutil.rmtree(root / "metrics")
        (root / "metrics").mkdir()
        (root / "metrics" / "small.yml").write_text(metrics)
    return root


def test_no_time_spine_the_repo_views_load(tmp_path):
    """Without a spine table the days are generated in SQL (tests/test_generated_spine.py has the numbers)."""
    assert "sales" in load_catalog(_no_spine_project(tmp_path, None)).views


@pytest.mark.parametrize("metric", ["revenue_rolling_28d", "revenue_ytd", "order_count"])
def test_no_time_spine_generates_the_days(tmp_path, metric):
    from canon.compiler.compile import compile_request

    cat = load_catalog(_no_spine_project(tmp_path))
    sql = compile_request(cat, QueryRequest(metrics=(metric,), dimensions=("metric_time.month",)), "duckdb").sql
    assert "GENERATE_SERIES" in sql and "time_spine" not in sql


def test_no_time_spine_is_fine_for_plain_metrics(tmp_path, warehouse):
    cat = load_catalog(_no_spine_project(tmp_path))
    rows = canon_rows(cat, warehouse, ask(["revenue", "revenue_mom_growth"], ["metric_time.month"]))
    assert len(rows) >= 24
    want = offset_oracle(daily(warehouse, "revenue"), "month", 1, "growth", date(2024, 1, 1), date(2025, 12, 31))
    assert_same([[r[0], r[2]] for r in rows if r[0] <= "2025-12-01"], want, keys=1, rel=1e-7)


def test_error_conversion_without_shared_entity(tmp_path):
    root = project_copy(tmp_path, {})
    (root / "metrics" / "broken.yml").write_text(
        "metrics:\n"
        "  - name: spend_to_lead_7d\n"
        "    type: conversion\n"
        "    entity: lead\n"
        "    base: ad_spend\n"
        "    conversion: lead_count\n"
        "    window: 7 days\n")
    with pytest.raises(CatalogErrors) as info:
        load_catalog(root)
    text = str(info.value)
    assert "spend_to_lead_7d" in text and "entity" in text and "ad_spend" in text


def test_error_ytd_by_a_misaligned_fiscal_year(tmp_path):
    cat = load_catalog(project_copy(tmp_path, {"fiscal_year_start_month": 4}))
    error = error_of(cat, metrics=("revenue_ytd",), dimensions=("metric_time.fiscal_year",))
    assert isinstance(error, QueryError) and "revenue_ytd" in str(error)
