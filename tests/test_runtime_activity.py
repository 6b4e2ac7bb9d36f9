"""The runtime counts the queries in flight, and background work waits for a quiet moment
(server/runtime/activity.py): the recommendation snapshot's first build does not share the cores
with the first dashboard."""

from __future__ import annotations

import threading
import time

import pytest

from canon.compiler.request import QueryRequest
from canon.server.runtime.activity import Activity

pytestmark = pytest.mark.fast


def test_quiet_waits_for_the_queries_to_end_and_a_pause():
    activity = Activity()
    activity.begin()
    waited = []
    thread = threading.Thread(target=lambda: waited.append((activity.wait_quiet(0.1, 5), time.monotonic())))
    thread.start()
    time.sleep(0.2)
    assert not waited  # a query is running
    ended = time.monotonic()
    activity.end()
    thread.join(5)
    quiet, at = waited[0]
    assert quiet and at - ended >= 0.09


def test_quiet_gives_up_after_the_longest_wait():
    activity = Activity()
    activity.begin()
    started = time.monotonic()
    assert activity.wait_quiet(0.1, 0.2) is False
    assert 0.15 < time.monotonic() - started < 2


def test_client_queries_count_as_activity(project_runtime):
    from canon.server.runtime.access import Identity

    runtime, client = project_runtime, Identity("ana", "http")
    stream = runtime.stream(QueryRequest(metrics=("order_count",), dimensions=("metric_time.month",)), identity=client)
    assert runtime.activity._running == 1
    list(stream)
    assert runtime.activity._running == 0
    runtime.query(QueryRequest(metrics=("order_count",)), use_cache=False, identity=client)
    assert runtime.activity._running == 0 and runtime.activity.wait_quiet(0.05, 2)


def test_the_runtimes_own_reads_do_not_hold_background_work_back(project_runtime):
    """The snapshot build and the freshness checks read as the internal identity: they are the background
    work, and must not keep the MCP mount (which waits for quiet clients) waiting behind them."""
    runtime = project_runtime
    stream = runtime.stream(QueryRequest(metrics=("order_count",), dimensions=("metric_time.month",)))
    assert runtime.activity._running == 0
    before = runtime.activity._last
    list(stream)
    assert runtime.activity._running == 0 and runtime.activity._last == before


@pytest.fixture
def project_runtime(tmp_path):
    from canon.server.runtime import Runtime
    from tests.support.project import copy_project, shared_demo

    with Runtime.open(copy_project(tmp_path / "p"), str(shared_demo())) as runtime:
        yield runtime


@pytest.mark.parametrize("published_meanwhile", [False, True])
def test_a_deferred_first_build_waits_and_is_skipped_when_a_request_built_one(published_meanwhile):
    from canon.server.recommend.snapshot import SnapshotStore

    store = SnapshotStore(None, lambda: None, lambda: None, persist=False)
    calls, release = [], threading.Event()
    store.refresh = lambda: calls.append("built")
    thread = store.start_refresh(quiet=lambda stop: release.wait(5))
    time.sleep(0.05)
    assert calls == []  # still waiting for a quiet moment
    if published_meanwhile:
        store._snapshot = object()  # a recommendation request built and published one
    release.set()
    thread.join(5)
    assert calls == ([] if published_meanwhile else ["built"])


def test_a_stopped_store_stops_waiting_and_builds_nothing():
    from canon.server.recommend.snapshot import SnapshotStore

    activity, store, calls = Activity(), SnapshotStore(None, lambda: None, lambda: None, persist=False), []
    activity.begin()  # a query that never ends: only the stop ends the wait
    store.refresh = lambda: calls.append("built")
    thread = store.start_refresh(quiet=lambda stop: activity.wait_quiet(5, 60, stop))
    time.sleep(0.1)
    started = time.monotonic()
    store.stop()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2 and calls == []


def test_a_built_snapshot_is_on_disk_and_collected_before_it_is_published(tmp_path, monkeypatch):
    """Once a snapshot is visible its build is over: pickling it to disk and the full GC pass (each a
    stall of the server's threads at scale) come first, not on the requests that arrive after it."""
    import gc
    import types

    from canon.server.recommend import snapshot as s

    built = types.SimpleNamespace(build_ms=1.0, products={}, customers={},
                                  window=types.SimpleNamespace(days=365, start="2025-01-01", end="2025-12-31"))
    monkeypatch.setattr(s, "block_of", lambda catalog: None)
    monkeypatch.setattr(s, "build_snapshot", lambda *args, **kwargs: built)
    store = s.SnapshotStore(tmp_path, lambda: None, lambda: None, persist=True, freeze_gc=True)
    seen = []
    monkeypatch.setattr(gc, "freeze", lambda: seen.append(("freeze", store.snapshot is built)))
    monkeypatch.setattr(gc, "collect", lambda *args: seen.append(("collect", store.snapshot is built)) or 0)
    publish = store._publish
    monkeypatch.setattr(store, "_publish", lambda snapshot: (seen.append(("on disk", store.path.is_file())),
                                                              publish(snapshot)))
    store.refresh()
    assert store.snapshot is built
    assert seen == [("on disk", True), ("collect", False), ("freeze", True)]
