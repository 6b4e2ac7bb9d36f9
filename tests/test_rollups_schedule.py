"""Rollups refreshed by the server on their `refresh.every` (issue 14; server/rollups/schedule.py).

When a refresh is due (fake clocks: nothing sleeps for hours); a server's background schedule picks up
late rows (a restated ad_spend row with a newer `_etl_loaded_at`) and the rollup-answered query then
equals the raw query and hand-written SQL; a failed refresh is reported (`/v1/status`, `canon rollups
status`) while queries go on; one refresh of a rollup at a time (in the process, and across sessions
on PostgreSQL). DuckDB, and PostgreSQL where rollups run there too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.compiler.errors import ConfigError, WarehouseError
from canon.compiler.request import QueryRequest as Q
from canon.server.project import load_config
from canon.server.rollups.build import build, refresh
from canon.server.rollups.schedule import ScheduleSettings, entry, scheduled
from canon.server.rollups.store import BuiltState, exclusive
from canon.server.rollups.writer import Writer
from canon.server.runtime import Runtime
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo

ROLLUP = "marketing_by_channel"
REQUEST = Q(metrics=("ad_spend",), dimensions=("metric_time.month", "campaign.channel"))
# a restated row for an old day: the same key, more spend, loaded a day after everything else
LATE = ("INSERT INTO ad_spend SELECT campaign_id, spend_date, country_code, spend + 5000, impressions, clicks, "
        "(SELECT MAX(_etl_loaded_at) FROM ad_spend) + INTERVAL '1 day' FROM ad_spend "
        "WHERE spend_date = DATE '{day}' LIMIT 1")
HAND = ("SELECT CAST(DATE_TRUNC('month', a.spend_date) AS DATE), c.channel, SUM(a.spend) FROM "
        "(SELECT *, ROW_NUMBER() OVER (PARTITION BY campaign_id, spend_date, country_code "
        "ORDER BY _etl_loaded_at DESC) AS rn FROM ad_spend) a JOIN campaigns c ON c.campaign_id = a.campaign_id "
        "WHERE a.rn = 1 GROUP BY 1, 2")
LONG_AGO = "2020-01-01T00:00:00+00:00"


def rows(result) -> list:
    return [[str(m)[:10], channel, spend] for m, channel, spend in result]


def hand(writer_or_runtime) -> list:
    if isinstance(writer_or_runtime, Runtime):
        return rows(writer_or_runtime.run_sql(HAND)[1])
    return rows(writer_or_runtime.execute(HAND))


def make_due(writer) -> None:
    """As if the rollup was last refreshed long ago (its `every` has passed)."""
    writer.execute(f"UPDATE canon_rollups._canon_state SET refreshed_at = '{LONG_AGO}' WHERE name = '{ROLLUP}'")


def scheduling_project(target):
    """The demo project with the schedule switched on (it is opt-in)."""
    project = copy_project(target)
    with (project / "canon.yml").open("a") as config:
        config.write("\nrollups: {schedule: true}\n")
    return project


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return scheduling_project(tmp_path_factory.mktemp("schedule") / "project")


@pytest.fixture
def project(tmp_path):
    """A project of its own per test: the schedule keeps what it did in .canon/rollups.json."""
    return scheduling_project(tmp_path / "project")


@pytest.fixture(scope="module")
def built(template, tmp_path_factory):
    """The demo warehouse with marketing_by_channel built (a template: each test copies it)."""
    path = tmp_path_factory.mktemp("schedule-db") / "demo.duckdb"
    shutil.copy(shared_demo(), path)
    with Writer(str(path)) as writer:
        build(load_catalog(template), writer, [ROLLUP])
    return path


@pytest.fixture
def warehouse(built, tmp_path):
    path = tmp_path / "own.duckdb"
    shutil.copy(built, path)
    return path


def spend(result, month: str, channel: str) -> float:
    return next(float(s) for m, c, s in rows(result.rows) if m == month and c == channel)


# --- when a refresh is due ------------------------------------------------------------------------------


def test_due_follows_every_failures_and_refreshes_by_anyone(template):
    catalog = load_catalog(template)
    assert scheduled(catalog)[ROLLUP] == 3600.0 and "product_pairs" not in scheduled(catalog)
    t = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(s))  # noqa: E731
    state = BuiltState(ROLLUP, "f", "s", iso(t), iso(t), 10, 100)
    fresh = entry(catalog, ROLLUP, state, {}, True, t + 60)
    assert fresh["status"] == "scheduled" and fresh["last_run_at"] is None and fresh["next_due_at"] == iso(t + 3600) and fresh["last_error"] is None
    failed_run = {"started_at": iso(t + 3700), "error": "rollup statement failed: boom", "last_success_at": None}
    failed = entry(catalog, ROLLUP, state, failed_run, True, t + 3710)
    assert failed["status"] == "failed" and failed["last_error"].endswith("boom")
    assert failed["next_due_at"] == iso(t + 3700 + 300)  # retried after 5 min, not a whole period
    later = replace(state, refreshed_at=iso(t + 3800))  # `canon rollups refresh` by cron succeeded since
    healed = entry(catalog, ROLLUP, later, failed_run, True, t + 3810)
    assert healed["last_error"] is None and healed["next_due_at"] == iso(t + 3800 + 3600)
    assert entry(catalog, ROLLUP, None, {}, True, t)["status"] == "not built"  # its first build is by hand
    assert entry(catalog, ROLLUP, state, {}, False, t)["status"] == "off"
    assert entry(catalog, "product_pairs", state, {}, True, t)["status"] == "unscheduled"


def test_a_failing_tick_does_not_stop_the_schedule():
    from canon.server.periodic import Periodic

    calls = []

    def tick(stopping):
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("a bug in one run")

    periodic = Periodic("test-schedule", tick, 0.01).start()
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            time.sleep(0.01)
    finally:
        periodic.stop()
    assert len(calls) >= 3


def test_the_canon_yml_switch_is_strict(tmp_path):
    assert not ScheduleSettings.from_config({}).enabled  # opt-in
    assert ScheduleSettings.from_config({"rollups": {"schedule": True}}).enabled and not ScheduleSettings.from_config(
        {"rollups": {"schedule": False}}).enabled
    (tmp_path / "canon.yml").write_text("rollups: {schedule: false}\n")
    assert ScheduleSettings.from_config(load_config(tmp_path)) == ScheduleSettings(False)  # a known top-level key
    with pytest.raises(ConfigError) as typo:
        ScheduleSettings.from_config({"rollups": {"schedul": False}})
    assert "rollups.schedul" in typo.value.message and "schedule" in typo.value.hint
    with pytest.raises(ConfigError) as bad:
        ScheduleSettings.from_config({"rollups": {"schedule": "sometimes"}})
    assert "true or false" in bad.value.message


# --- the server's schedule on DuckDB ----------------------------------------------------------------------


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_server_refreshes_late_rows_on_schedule(project, warehouse):
    """Late rows before the server starts: its first pass refreshes the due rollup in the background.
    Late rows while it serves (ETL through the runtime's writer): the next due pass reconciles them,
    and the next request answers from the new build (the result cache keys on the stamp)."""
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    with Writer(str(warehouse)) as writer:
        make_due(writer)
        writer.execute(LATE.format(day="2025-03-10"))
    with TestClient(create_app(project, str(warehouse), reload_interval_s=0)) as client:
        runtime: Runtime = client.app.state.runtime
        for _ in range(300):
            entry_ = {r["name"]: r for r in client.get("/v1/status").json()["rollups"]}[ROLLUP]
            if entry_["last_run_at"]:
                break
            time.sleep(0.05)
        assert entry_["status"] == "scheduled" and entry_["last_action"] == "refreshed", entry_
        assert ["2025-03-01 00:00:00", "2025-04-01 00:00:00"] in entry_["partitions"]  # the late partition
        assert entry_["next_due_at"] > entry_["last_run_at"] and entry_["last_error"] is None
        body = {"metrics": list(REQUEST.metrics), "dimensions": list(REQUEST.dimensions)}
        routed = client.post("/v1/query", json=body).json()
        plain = client.post("/v1/query", json={**body, "use_rollups": False}).json()
        assert routed.get("rollup") == ROLLUP, runtime.rollups.why_not(runtime.catalog, REQUEST, "duckdb")
        assert "rollup" not in plain
        want = hand(runtime)
        assert_same(rows(routed["rows"]), want, keys=2)
        assert_same(rows(plain["rows"]), want, keys=2)

        before = runtime.query(REQUEST)  # answered (and cached) from the first refresh
        with runtime.writer() as writer:  # ETL lands another late row while the server serves
            writer.execute(LATE.format(day="2025-02-10"))
            assert runtime.query(REQUEST).rows  # queries go on while the file is open for writing
        assert runtime.rollup_schedule.due() == []  # refreshed moments ago: every 1h
        [run] = runtime.rollup_schedule.run_due(now=time.time() + 3601)
        assert run["name"] == ROLLUP and run["error"] is None
        assert ["2025-02-01 00:00:00", "2025-03-01 00:00:00"] in run["partitions"]
        after = runtime.query(REQUEST)
        assert after.rollup == ROLLUP and not getattr(after, "cached", False)
        assert spend(after, "2025-02-01", _channel(runtime)) != spend(before, "2025-02-01", _channel(runtime))
        assert_same(rows(after.rows), hand(runtime), keys=2)
        assert_same(rows(after.rows), rows(runtime.query(replace(REQUEST, extra={"use_rollups": False})).rows), keys=2)


def _channel(runtime) -> str:
    """The channel of the campaign whose row was restated on 2025-02-10 (the newest load that day)."""
    return runtime.run_sql("SELECT c.channel FROM ad_spend a JOIN campaigns c ON c.campaign_id = a.campaign_id "
                           "WHERE a.spend_date = DATE '2025-02-10' ORDER BY a._etl_loaded_at DESC LIMIT 1")[1][0][0]


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_failed_refresh_is_reported_and_queries_go_on(project, warehouse):
    """Another process reading the file: the refresh cannot take it for writing. The failure is kept and
    shown; the rollup keeps answering from its old table; the retry after it ends succeeds."""
    with Writer(str(warehouse)) as writer:
        make_due(writer)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                               "print('ready', flush=True); sys.stdin.read()", str(warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with Runtime.open(project, str(warehouse)) as runtime:
            [run] = runtime.rollup_schedule.run_due()
            assert run["error"] and "for writing" in run["error"], run
            status = {r["name"]: r for r in runtime.rollup_schedule.status()}[ROLLUP]
            assert status["status"] == "failed" and status["last_error"] == run["error"]
            answered = runtime.query(REQUEST)
            assert answered.rollup == ROLLUP  # the old table, still exact (no new source rows)
            assert_same(rows(answered.rows), hand(runtime), keys=2)
            assert runtime.rollup_schedule.due() == []  # retried after RETRY_S, not at every tick
            cli = CliRunner().invoke(_canon(), ["rollups", "status", "--project", str(project), "--warehouse",
                                                 str(shutil.copy(warehouse, warehouse.with_name("copy.duckdb")))])
            assert cli.exit_code == 0 and f"FAILED: {run['error']}" in cli.output, cli.output
            holder.stdin.close()
            holder.wait(timeout=10)
            [retry] = runtime.rollup_schedule.run_due(now=time.time() + 301)
            assert retry["error"] is None
            healed = {r["name"]: r for r in runtime.rollup_schedule.status()}[ROLLUP]
            assert healed["status"] == "scheduled" and healed["last_error"] is None
    finally:
        holder.kill()
        holder.wait()


def _canon():
    from canon.server.cli import main

    return main


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_one_refresh_of_a_rollup_at_a_time(project, warehouse):
    """A refresh asked while one runs is skipped, not queued behind it or run twice."""
    with Runtime.open(project, str(warehouse)) as runtime:
        runtime.warehouse()
        schedule = runtime.rollup_schedule
        results = []
        with runtime.writer():  # holds the process's DuckDB write window: the first refresh waits inside
            first = threading.Thread(target=lambda: results.append(schedule.refresh(ROLLUP)))
            first.start()
            for _ in range(200):
                if schedule._busy.get(ROLLUP) is not None and schedule._busy[ROLLUP].locked():
                    break
                time.sleep(0.01)
            second = schedule.refresh(ROLLUP)
        first.join(timeout=30)
    assert second == {"name": ROLLUP, "skipped": "a refresh of it is running"}
    assert results and results[0]["error"] is None and results[0]["action"] == "refreshed"


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_schedule_off_and_unbuilt_rollups_are_left_alone(project, warehouse, tmp_path):
    off = copy_project(tmp_path / "off")  # the demo's canon.yml says nothing: off by default
    with Writer(str(warehouse)) as writer:
        make_due(writer)
    with Runtime.open(off, str(warehouse)) as runtime:
        assert runtime.rollup_schedule.run_due() == []
        assert {r["status"] for r in runtime.rollup_schedule.status()} == {"off"}
    with Runtime.open(project, str(warehouse)) as runtime:
        runtime.rollups.read(runtime.catalog)
        assert runtime.rollup_schedule.due() == [ROLLUP]  # revenue_daily etc. are scheduled but never built


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_url(pg_server_url, pg_demo_duckdb, template):
    from canon.server.pg_load import load_demo_into_postgres
    from tests.support.pg_server import create_database

    url = create_database(pg_server_url, "canon_rollups_schedule_test")
    load_demo_into_postgres(pg_demo_duckdb, url)
    with Writer(url) as writer:
        build(load_catalog(template), writer, [ROLLUP])
    return url


@pytest.mark.postgres
def test_scheduled_refresh_on_postgres_and_one_session_at_a_time(project, pg_url):
    with Writer(pg_url) as writer:
        writer.execute(LATE.format(day="2025-03-10"))
        make_due(writer)
    with Runtime.open(project, pg_url) as runtime:
        runtime.rollups.read(runtime.catalog)
        assert runtime.query(REQUEST).rollup is None  # stale: the source has a newer row
        with Writer(pg_url) as other:  # another session (cron's CLI) is refreshing it
            with exclusive(other, ROLLUP):
                [blocked] = runtime.rollup_schedule.run_due()
                with Writer(pg_url) as third, pytest.raises(WarehouseError) as cli:
                    refresh(runtime.catalog, third, [ROLLUP])
        assert "another session" in blocked["error"] and "another session" in cli.value.message
        [run] = runtime.rollup_schedule.run_due(now=time.time() + 301)
        assert run["error"] is None and ["2025-03-01 00:00:00", "2025-04-01 00:00:00"] in run["partitions"]
        routed = runtime.query(REQUEST)
        plain = runtime.query(replace(REQUEST, extra={"use_rollups": False}))
        assert routed.rollup == ROLLUP
        want = hand(runtime)
        assert_same(rows(routed.rows), want, keys=2)
        assert_same(rows(plain.rows), want, keys=2)
    assert json.loads((project / ".canon" / "rollups.json").read_text())[ROLLUP]["error"] is None
