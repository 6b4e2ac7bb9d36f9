"""Oracle tests for the frames of cumulative metrics, on a tiny warehouse built to break them.

Canon renders a cumulative metric as a window function over the days when that is exact
(compiler/render/windowed.py) and as a range join otherwise. The data here has what a wrong frame
would get wrong: a spine that skips days (one of them with data, one a month's last day), a day whose
sum is NULL, an event without a time, a gap of 65 days (longer than every window), times near midnight UTC that a time zone
moves to the next day or month, and two regions for a filter. The oracle is plain Python over the raw
events, from the definition (tests/test_time_metrics.py's docstring): each period P of the spine days
between the data's first and last day (or the range), E = P's last such day, the events of the days
in (E - window, E] (rolling), [start of E's month, E] (to date) or up to E (all time); a period whose
window has no event is absent. It runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same

EVENTS = [  # (id, UTC time, amount, region)
    (1, "2024-01-01 10:00:00", "10.00", "east"),
    (2, "2024-01-01 23:30:00", "5.00", "west"),  # Jan 2 in Tokyo
    (3, "2024-01-03 12:00:00", None, "east"),  # a day whose sum is NULL
    (4, "2024-01-05 08:00:00", "7.00", "east"),  # a day the spine skips
    (5, "2024-01-09 09:00:00", "3.00", "west"),
    (6, "2024-01-31 23:50:00", "4.00", "east"),  # Feb 1 in Tokyo
    (7, "2024-03-15 12:00:00", "20.00", "west"),  # after a 44-day gap
    (8, "2024-03-16 12:00:00", "1.00", "east"),
    (9, "2024-03-31 12:00:00", "2.00", "east"),  # a month's last day the spine skips
    (10, "2024-04-02 12:00:00", "6.00", "west"),
    (11, "2024-06-06 12:00:00", "9.00", "east"),  # after a 65-day gap
    (12, None, "100.00", "east"),  # no time: in no period's window
]
SKIPPED = {date(2024, 1, 5), date(2024, 1, 20), date(2024, 1, 21), date(2024, 1, 22), date(2024, 3, 31)}
SPINE = [date(2023, 11, 1) + timedelta(days=i) for i in range(300)]
SPINE = [d for d in SPINE if d not in SKIPPED]

MODEL = """\
semantic_model:
  name: event
  table: events
  entities:
    - {name: event, type: primary, expr: event_id}
  dimensions:
    - {name: happened_at, type: time}
    - {name: region}
  measures:
    - {name: amount, agg: sum, expr: amount}
    - {name: events, agg: count, expr: event_id}
    - {name: biggest, agg: max, expr: amount}
    - {name: smallest, agg: min, expr: amount}
    - {name: regions, agg: count_distinct, expr: region}
  default_time: happened_at
"""
METRICS = """\
metrics:
  - {name: amount, type: simple, measure: event.amount}
  - {name: events, type: simple, measure: event.events}
  - {name: biggest, type: simple, measure: event.biggest}
  - {name: smallest, type: simple, measure: event.smallest}
  - {name: regions, type: simple, measure: event.regions}
  - {name: amount_7d, type: cumulative, metric: amount, window: 7 days}
  - {name: amount_2w, type: cumulative, metric: amount, window: 2 weeks}
  - {name: events_7d, type: cumulative, metric: events, window: 7 days}
  - {name: biggest_7d, type: cumulative, metric: biggest, window: 7 days}
  - {name: smallest_mtd, type: cumulative, metric: smallest, grain_to_date: month}
  - {name: amount_mtd, type: cumulative, metric: amount, grain_to_date: month}
  - {name: amount_all, type: cumulative, metric: amount, window: unbounded}
  - {name: amount_1m, type: cumulative, metric: amount, window: 1 month}
  - {name: regions_7d, type: cumulative, metric: regions, window: 7 days}
"""
# metric -> (measure, frame); the frame: ("days", n) | ("months", n) | ("mtd",) | ("all",)
FRAMES = {
    "amount_7d": ("amount", ("days", 7)), "amount_2w": ("amount", ("days", 14)), "events_7d": ("events", ("days", 7)),
    "biggest_7d": ("biggest", ("days", 7)), "smallest_mtd": ("smallest", ("mtd",)), "amount_mtd": ("amount", ("mtd",)),
    "amount_all": ("amount", ("all",)), "amount_1m": ("amount", ("months", 1)), "regions_7d": ("regions", ("days", 7)),
}
WINDOWED = {"amount_7d", "amount_2w", "events_7d", "biggest_7d", "smallest_mtd", "amount_mtd", "amount_all"}


# --- the warehouse and the project ------------------------------------------------------------------------

def _rows_sql() -> tuple[str, str]:
    def value(i, t, a, r) -> str:
        at = f"TIMESTAMP '{t}'" if t else "CAST(NULL AS TIMESTAMP)"
        return f"({i}, {at}, CAST({a or 'NULL'} AS DECIMAL(10, 2)), '{r}')"

    events = ", ".join(value(*e) for e in EVENTS)
    spine = ", ".join(f"(DATE '{d.isoformat()}')" for d in SPINE)
    return (f"CREATE TABLE events AS SELECT * FROM (VALUES {events}) AS v(event_id, happened_at, amount, region)",
            f"CREATE TABLE spine AS SELECT * FROM (VALUES {spine}) AS v(date_day)")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def frames_warehouse(request, tmp_path_factory):
    from canon.server.warehouses import open_warehouse

    if request.param == "duckdb":
        import duckdb

        path = tmp_path_factory.mktemp("frames") / "frames.duckdb"
        with duckdb.connect(str(path)) as con:
            for statement in _rows_sql():
                con.execute(statement)
        url = str(path)
    else:
        import psycopg

        from tests.support.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), "canon_frames")
        with psycopg.connect(url, autocommit=True) as con:
            for statement in _rows_sql():
                con.execute(statement)
    warehouse = open_warehouse(url)
    yield warehouse
    warehouse.close()


def _project(root: Path, spine: bool) -> Path:
    (root / "semantic_models").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "semantic_models" / "events.yml").write_text(MODEL)
    (root / "metrics" / "events.yml").write_text(METRICS)
    (root / "canon.yml").write_text("time_spine: {table: spine, column: date_day}\n" if spine else "{}\n")
    return root


@pytest.fixture(scope="module")
def frames_catalog(tmp_path_factory):
    return load_catalog(_project(tmp_path_factory.mktemp("frames_project"), spine=True))


# --- the oracle -------------------------------------------------------------------------------------------

def _local_day(text: str, tz: str | None) -> date:
    moment = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC"))
    return (moment.astimezone(ZoneInfo(tz)) if tz else moment).date()


def _period(day: date, grain: str) -> date:
    return {"day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}[grain]


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = (date(year + (month == 11), (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month + 1, min(day.day, last))


def _aggregate(measure: str, rows: list) -> object:
    values = [a for _, a, _ in rows]
    present = [Decimal(a) for a in values if a is not None]
    if measure == "events":
        return len(rows)
    if measure == "regions":
        return len({r for _, _, r in rows})
    if not present:
        return None
    return {"amount": sum(present), "biggest": max(present), "smallest": min(present)}[measure]


def oracle(metric: str, grain: str, *, start=None, end=None, tz=None, region=None, spine=SPINE) -> list[list]:
    measure, frame = FRAMES[metric]
    rows = [(_local_day(t, tz), a, r) for _, t, a, r in EVENTS if t and (region is None or r == region)]
    first = date.fromisoformat(start) if start else min(d for d, _, _ in rows)
    last = date.fromisoformat(end) if end else max(d for d, _, _ in rows)
    ends: dict[date, date] = {}
    for day in spine:
        if first <= day <= last:
            ends[_period(day, grain)] = max(day, ends.get(_period(day, grain), day))
    out = []
    for period, e in sorted(ends.items()):
        lo = {"days": lambda: e - timedelta(days=frame[-1] - 1), "months": lambda: _months_back(e, frame[-1]) + timedelta(days=1),
              "mtd": lambda: e.replace(day=1), "all": lambda: date.min}[frame[0]]()
        inside = [row for row in rows if lo <= row[0] <= e]
        if inside:
            out.append([period, _aggregate(measure, inside)])
    return out


def check(catalog, warehouse, metrics: list[str], grain: str, **kw):
    req = QueryRequest(metrics=tuple(metrics), dimensions=(f"metric_time.{grain}",), start=kw.get("start"),
                       end=kw.get("end"), timezone=kw.get("tz"),
                       where=(f"event.region = '{kw['region']}'",) if kw.get("region") else ())
    sql = compile_request(catalog, req, warehouse.dialect).sql
    got = warehouse.execute(sql)[1]
    wants = [{row[0]: row[1] for row in oracle(m, grain, **kw)} for m in metrics]
    keys = sorted(set().union(*wants))
    want = [[k] + [w.get(k) for w in wants] for k in keys]
    assert want, "the oracle found no rows"
    assert_same([list(r) for r in got], want, keys=1, rel=1e-9, abs_tol=1e-9, label=f"{req} on {warehouse.dialect}")
    return sql


# --- the cases --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("metric", list(FRAMES))
def test_frames_over_gaps_skipped_days_and_null_sums(frames_catalog, frames_warehouse, metric, grain):
    sql = check(frames_catalog, frames_warehouse, [metric], grain)
    assert (" OVER " in sql) == (metric in WINDOWED), "the window form where it is exact, the range join elsewhere"


@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("metric", ["amount_7d", "amount_mtd", "amount_all", "amount_1m"])
def test_frames_with_a_range(frames_catalog, frames_warehouse, metric, grain):
    check(frames_catalog, frames_warehouse, [metric], grain, start="2024-01-04", end="2024-03-20")


@pytest.mark.parametrize("grain", ["day", "month"])
@pytest.mark.parametrize("metric", ["amount_7d", "events_7d", "amount_mtd", "regions_7d"])
def test_frames_in_a_time_zone(frames_catalog, frames_warehouse, metric, grain):
    check(frames_catalog, frames_warehouse, [metric], grain, tz="Asia/Tokyo")


@pytest.mark.parametrize("grain", ["day", "week"])
def test_frames_with_a_filter(frames_catalog, frames_warehouse, grain):
    check(frames_catalog, frames_warehouse, ["amount_7d", "biggest_7d", "amount_mtd"], grain, region="east")


@pytest.mark.parametrize("metrics, windows", [
    (["amount_7d", "events_7d", "biggest_7d", "amount_mtd", "amount_1m"], 2),  # one node of three measures
    (["amount_7d", "events_7d", "amount_mtd", "amount_1m", "regions_7d"], 1),  # count_distinct: its node joins
])
@pytest.mark.parametrize("grain", ["week", "month"])
def test_frames_many_metrics_in_one_request(frames_catalog, frames_warehouse, metrics, windows, grain):
    sql = check(frames_catalog, frames_warehouse, metrics, grain)
    assert sql.count("_canon_framed") == windows


@pytest.mark.parametrize("metric", ["amount_7d", "amount_mtd", "amount_all"])
def test_frames_over_the_generated_spine(tmp_path, frames_warehouse, metric):
    catalog = load_catalog(_project(tmp_path, spine=False))
    every_day = [date(2023, 11, 1) + timedelta(days=i) for i in range(300)]
    for grain in ("day", "week"):
        req = QueryRequest(metrics=(metric,), dimensions=(f"metric_time.{grain}",))
        got = frames_warehouse.execute(compile_request(catalog, req, frames_warehouse.dialect).sql)[1]
        assert_same([list(r) for r in got], oracle(metric, grain, spine=every_day), keys=1, rel=1e-9, abs_tol=1e-9,
                    label=f"{req} on {frames_warehouse.dialect}")


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_the_window_form_gives_the_range_joins_rows(frames_catalog, frames_warehouse, grain, monkeypatch):
    """Today's range join, forced, as a second oracle: the same rows for every window form, with and
    without a range, a time zone and a filter."""
    import canon.compiler.render.cumulative as cumulative

    asks = [dict(), dict(start="2024-01-04", end="2024-03-20"), dict(timezone="Asia/Tokyo"),
            dict(where=("event.region = 'west'",))]
    for metric in sorted(WINDOWED):
        for kw in asks:
            req = QueryRequest(metrics=(metric,), dimensions=(f"metric_time.{grain}",), **kw)
            window = compile_request(frames_catalog, req, frames_warehouse.dialect).sql
            with monkeypatch.context() as patch:
                patch.setattr(cumulative, "windowable", lambda node: False)
                joined = compile_request(frames_catalog, req, frames_warehouse.dialect).sql
            assert " OVER " in window and " OVER " not in joined
            got, want = (frames_warehouse.execute(sql)[1] for sql in (window, joined))
            assert want
            assert_same([list(r) for r in got], [list(r) for r in want], keys=1, rel=1e-12, abs_tol=0,
                        label=f"{req} on {frames_warehouse.dialect}")
