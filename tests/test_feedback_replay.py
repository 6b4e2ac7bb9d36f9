"""Feedback accepted while PostgreSQL is away reaches the table when it comes back, without a restart,
and nothing acknowledged is lost or counted twice. The outage is real: a TCP forwarder in front of the
throwaway PostgreSQL server is cut (the port refuses, open connections drop) and restored."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.test_yaml_safety import tiny_project

pytestmark = pytest.mark.postgres


class Outage:
    """A TCP forwarder to `target` on a port of its own; `cut()` is an outage, `restore()` ends it."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> "Outage":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets + [self._listener], []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def database(pg_server_url):
    from tests.support.pg_server import create_database

    return create_database(pg_server_url, "canon_feedback_replay")


def through(outage: Outage, url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{outage.port}"))


def stored(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        if connection.execute("SELECT to_regclass('recommendation_feedback')").fetchone()[0] is None:
            return []
        return [r[0] for r in connection.execute("SELECT event_id FROM recommendation_feedback")]


def wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def project_with_fast_retry(root: Path) -> Path:
    project = tiny_project(root)
    (project / "canon.yml").write_text("recommendations:\n  refresh_minutes: 0\n  feedback_retry_seconds: 0.1\n")
    return project


def post(client, customer: int) -> dict:
    response = client.post("/v1/recommendations/feedback",
                           json={"customer_id": customer, "product_id": 1001, "event": "shown"})
    assert response.status_code == 201, response.text
    return response.json()


def test_feedback_accepted_during_an_outage_is_replayed_when_postgres_is_back(tmp_path, database):
    from urllib.parse import urlsplit

    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    target = urlsplit(database)
    outage = Outage((target.hostname, target.port)).restore()
    app = create_app(project_with_fast_retry(tmp_path / "project"), through(outage, database), reload_interval_s=0)
    with TestClient(app) as client:
        first = post(client, 1)
        assert first["in_warehouse"] is True and stored(database) == [first["event_id"]]

        outage.cut()
        during = [post(client, customer) for customer in (2, 3, 4)]
        assert [e["in_warehouse"] for e in during] == [False, False, False]  # journalled, acknowledged
        time.sleep(0.3)  # a few failed replays meanwhile
        assert stored(database) == [first["event_id"]]

        outage.restore()
        expected = {first["event_id"], *(e["event_id"] for e in during)}
        assert wait_for(lambda: set(stored(database)) == expected), stored(database)
        after = post(client, 5)
        assert after["in_warehouse"] is True
        ids = stored(database)
        assert len(ids) == len(set(ids)) == 5  # nothing twice
        assert app.state.recommend.sync.behind is False
    outage.cut()


def test_a_start_during_an_outage_replays_the_journal_once_postgres_is_back(tmp_path, database):
    from urllib.parse import urlsplit

    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app
    from canon.server.recommend.feedback import FeedbackJournal, make_event

    project = project_with_fast_retry(tmp_path / "project")
    journal = FeedbackJournal(project)
    events = [make_event(i, 1001, "clicked") for i in range(3)]  # accepted before a crash
    for event in events:
        journal.append(event)
    target = urlsplit(database)
    outage = Outage((target.hostname, target.port))  # not listening yet: PostgreSQL is away at start
    with TestClient(create_app(project, through(outage, database), reload_interval_s=0)):
        time.sleep(0.3)
        assert stored(database) == []
        outage.restore()
        assert wait_for(lambda: sorted(stored(database)) == sorted(e["event_id"] for e in events)), stored(database)
    outage.cut()
