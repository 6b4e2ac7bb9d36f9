"""Query time limits on one watcher thread (server/warehouses/deadlines.py)."""

from __future__ import annotations

import threading
import time

import pytest

from canon.server.warehouses.deadlines import after

pytestmark = pytest.mark.fast


def test_calls_come_in_deadline_order_and_cancelled_ones_never():
    fired, done = [], threading.Event()
    after(0.15, lambda: (fired.append("late"), done.set()))
    after(0.05, lambda: fired.append("early"))
    after(0.10, lambda: fired.append("cancelled")).cancel()
    assert done.wait(5)
    time.sleep(0.02)
    assert fired == ["early", "late"]


def test_a_blocking_call_does_not_hold_back_the_next():
    released, second = threading.Event(), threading.Event()
    after(0.01, lambda: released.wait(5))  # a stop that blocks (a cancel request to an unreachable server)
    after(0.05, second.set)
    assert second.wait(2)
    released.set()


def test_a_query_over_its_limit_is_cancelled(tmp_path):
    import duckdb

    from canon.compiler.errors import QueryTimeoutError
    from canon.server.warehouses import open_warehouse

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    warehouse = open_warehouse(str(path))
    try:
        started = time.perf_counter()
        with pytest.raises(QueryTimeoutError):
            warehouse.execute("SELECT COUNT(*) FROM range(10000000000) a", timeout_s=0.3)
        assert time.perf_counter() - started < 5
        assert warehouse.execute("SELECT 1", timeout_s=0.3)[1] == [(1,)]  # a finished query's limit never fires
        time.sleep(0.4)
    finally:
        warehouse.close()
