"""Hot reload converges on the files on disk: a reverted edit clears the errors; a file that cannot be
read (a dangling link, a pipe, no permission) is an error naming it, never a reason to stop watching;
the old catalog keeps serving HTTP and the wire meanwhile."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from canon.server.runtime.state import CatalogState, Reloader
from tests.test_yaml_safety import tiny_project

FAST_RELOAD_S = 0.02


def wait_for(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def project(tmp_path) -> Path:
    return tiny_project(tmp_path / "project")


def locations(state: CatalogState) -> list[str]:
    return [e["location"] for e in state.errors]


def test_reverting_a_broken_edit_clears_the_errors(project):
    state = CatalogState.load(project)
    metrics = project / "metrics" / "orders.yml"
    good = metrics.read_text()
    metrics.write_text(good.replace("order.order_count", "order.no_such_measure"))
    assert state.check() is False and locations(state) == ["metrics/orders.yml:2"]
    metrics.write_text(good)  # back to exactly the served files
    state.check()
    assert state.errors == [] and state.reloads == 0


def test_a_read_that_caught_a_file_mid_save_is_retried(project, monkeypatch):
    """The fingerprint saw the new version whole, the load read it half written: the next tick loads
    that same version again instead of parking it as broken."""
    from canon.compiler.errors import ConfigError
    from canon.server.runtime import state as state_module

    state = CatalogState.load(project)
    (project / "metrics" / "orders.yml").write_text(
        "metrics:\n  - {name: orders, type: simple, description: Saved., measure: order.order_count}\n")
    real_load, calls = state_module.load_catalog, []

    def half_written_once(folder):
        calls.append(folder)
        if len(calls) == 1:
            raise ConfigError("malformed YAML: a file read mid-save")
        return real_load(folder)

    monkeypatch.setattr(state_module, "load_catalog", half_written_once)
    assert state.check() is False and state.errors
    assert state.check() is True and state.errors == [] and state.reloads == 1
    assert state.catalog.metrics["orders"].description == "Saved."


def test_a_broken_version_is_loaded_at_most_twice(project, monkeypatch):
    from canon.server.runtime import state as state_module

    state = CatalogState.load(project)
    (project / "metrics" / "orders.yml").write_text("metrics: [")
    calls = []
    real_load = state_module.load_catalog
    monkeypatch.setattr(state_module, "load_catalog", lambda folder: calls.append(folder) or real_load(folder))
    for _ in range(5):
        state.check()
    assert len(calls) == 2 and locations(state) == ["metrics/orders.yml:2"]


@pytest.mark.parametrize("kind", ["dangling link", "folder", "pipe", "permission denied"])
def test_an_unreadable_file_is_an_error_naming_it(project, monkeypatch, kind):
    state = CatalogState.load(project)
    version = state.catalog.version
    bad = project / "metrics" / "bad.yml"
    if kind == "dangling link":
        os.symlink(project / "nowhere.yml", bad)
    elif kind == "folder":
        bad.mkdir()
    elif kind == "pipe":
        os.mkfifo(bad)  # opening it for reading would block the watcher for good
    else:
        bad.write_text("metrics: []\n")
        bad.chmod(0)
        real_open = os.open  # root reads a mode-0 file anyway: refuse it as the kernel would for a user

        def denying_open(path, *args, **kwargs):
            if Path(path) == bad:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", denying_open)
    checker = threading.Thread(target=state.check, daemon=True)
    checker.start()
    checker.join(5)
    assert not checker.is_alive(), "the check blocked"
    assert locations(state) == ["metrics/bad.yml:1"], state.errors
    assert "cannot read the definition file" in state.errors[0]["message"]
    assert state.catalog.version == version  # the old catalog keeps serving
    monkeypatch.undo()
    (bad.rmdir if kind == "folder" else bad.unlink)()
    state.check()
    assert state.errors == []


def test_the_watcher_keeps_converging_after_an_unreadable_file(project):
    state = CatalogState.load(project)
    reloader = Reloader(state, FAST_RELOAD_S).start()
    try:
        link = project / "semantic_models" / "gone.yml"
        os.symlink(project / "nowhere.yml", link)
        assert wait_for(lambda: locations(state) == ["semantic_models/gone.yml:1"]), state.errors
        (project / "metrics" / "broken.yml").write_text("metrics: [")
        assert wait_for(lambda: "metrics/broken.yml:2" in locations(state)), state.errors
        link.unlink()
        (project / "metrics" / "broken.yml").unlink()
        (project / "metrics" / "orders.yml").write_text(
            "metrics:\n  - {name: orders, type: simple, description: Edited., measure: order.order_count}\n")
        assert wait_for(lambda: state.reloads == 1 and not state.errors), state.errors
        assert state.catalog.metrics["orders"].description == "Edited."
    finally:
        reloader.stop()


def save(path: Path, text: str) -> None:
    """Save as editors that write a temporary file and rename it do. (The watcher runs meanwhile: a plain
    truncate-and-write can be seen empty, which is a valid catalog of its own and a real reload.)"""
    tmp = path.with_name(path.name + ".saving")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_status_returns_to_ok_after_a_revert(project, demo_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    metrics = project / "metrics" / "orders.yml"
    good = metrics.read_text()
    app = create_app(project, str(demo_path), reload_interval_s=FAST_RELOAD_S)
    with TestClient(app) as client:
        def status():
            return client.get("/v1/status").json()

        assert status()["status"] == "ok"
        save(metrics, "metrics: [broken")
        assert wait_for(lambda: status()["status"] == "degraded"), status()
        assert [e["location"] for e in status()["load_errors"]] == ["metrics/orders.yml:2"]
        assert client.post("/v1/query", json={"metrics": ["orders"]}).status_code == 200  # old catalog
        save(metrics, good)
        assert wait_for(lambda: status()["status"] == "ok"), status()
        body = status()
        assert body["load_errors"] == [] and body["catalog"]["reloads"] == 0 and body["catalog"]["checked_at"]


def test_wire_keeps_accepting_connections_with_an_unreadable_file(project, demo_path):
    import psycopg

    from canon.server.pgwire.server import start_pg_server
    from canon.server.runtime import Runtime

    runtime = Runtime.open(project, str(demo_path), reload_interval_s=FAST_RELOAD_S, cached_catalog=True).start()
    handle = start_pg_server(runtime, port=0)
    try:
        os.symlink(project / "nowhere.yml", project / "metrics" / "gone.yml")
        assert wait_for(lambda: runtime.state.errors), "the watcher did not see the dangling link"
        checks_before = runtime.state.checked_at
        for _ in range(3):
            with psycopg.connect(f"postgresql://canon:canon@127.0.0.1:{handle.port}/canon", connect_timeout=5) as c:
                assert c.execute("SELECT 1").fetchone() == (1,)
        assert wait_for(lambda: runtime.state.checked_at != checks_before, 3), "the watcher stopped"
    finally:
        handle.stop()
        runtime.close()


# --- the DuckDB warehouse file ------------------------------------------------------------------------------


def small_warehouse(path: Path, orders: int) -> Path:
    """A DuckDB file with `orders` rows in `orders`, written beside `path` and moved over it (a new inode)."""
    import duckdb

    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute(f"CREATE TABLE orders AS SELECT range AS order_id, 'completed' AS status FROM range({orders})")
    os.replace(tmp, path)
    return path


def test_a_replaced_duckdb_file_is_reopened_and_queries_on_the_old_one_stop(tmp_path):
    import shutil

    from canon.compiler.errors import WarehouseUnavailableError
    from canon.server.warehouses.duckdb import DuckDBWarehouse

    path = small_warehouse(tmp_path / "w.duckdb", 3)
    warehouse = DuckDBWarehouse(str(path))
    try:
        count = "SELECT count(*) FROM orders"
        assert warehouse.execute(count)[1] == [(3,)]
        assert warehouse.execute(count)[1] == [(3,)]  # an unchanged file is not reopened
        opened = warehouse._opened
        assert warehouse.execute(count)[1] == [(3,)] and warehouse._opened is opened

        stream = iter(warehouse.stream("SELECT * FROM range(100000)", batch_rows=1000))
        next(stream)  # a query half read when the file is replaced
        small_warehouse(path, 5)
        assert warehouse.execute(count)[1] == [(5,)]
        with pytest.raises(WarehouseUnavailableError, match="replaced while the query ran"):
            next(stream)

        shutil.copyfile(small_warehouse(tmp_path / "other.duckdb", 7), path)  # copied over it: same inode
        assert warehouse.execute(count)[1] == [(7,)]
    finally:
        warehouse.close()


def test_a_deleted_duckdb_file_degrades_status_and_queries_answer_503(project, tmp_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    path = small_warehouse(tmp_path / "w.duckdb", 3)
    with TestClient(create_app(project, str(path), reload_interval_s=0)) as client:
        def query():
            return client.post("/v1/query", json={"metrics": ["orders"]})

        assert query().json()["rows"] == [[3]] and client.get("/v1/status").json()["status"] == "ok"
        path.unlink()
        status = client.get("/v1/status").json()
        assert status["status"] == "degraded" and status["warehouse"]["reachable"] is False
        assert "is gone (deleted or moved)" in status["warehouse"]["error"], status["warehouse"]
        response = query()
        assert response.status_code == 503 and response.json()["code"] == "warehouse_unavailable", response.text
        small_warehouse(path, 4)  # a file is back: served at once
        assert query().json()["rows"] == [[4]] and client.get("/v1/status").json()["status"] == "ok"
