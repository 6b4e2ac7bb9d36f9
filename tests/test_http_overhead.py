"""The HTTP path's own cost (issue 14): a query is answered in one trip to the runtime's pool with the
same bytes as before, and a query's audit line never waits for the group commit's fsync."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from fastapi.testclient import TestClient

from canon.server.arrow_answer import ARROW_STREAM
from canon.server.http_api import create_app
from canon.server.runtime import audit
from canon.server.runtime.access import Identity
from tests.support.project import copy_project, shared_demo

QUERY = {"metrics": ["revenue"], "dimensions": ["product.category", "metric_time.month"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("overhead") / "project")
    app = create_app(project, str(shared_demo()), reload_interval_s=0)
    with TestClient(app) as client:
        yield client, app.state.runtime, project


@pytest.fixture
def trips(served, monkeypatch):
    """The functions each request sends to the runtime's pool."""
    runtime, sent = served[1], []
    real = runtime.run

    async def counted(fn, *args, **kwargs):
        sent.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(runtime, "run", counted)
    return sent


def test_a_query_is_one_trip_to_the_pool_with_the_same_json(served, trips):
    client = served[0]
    response = client.post("/v1/query", json={**QUERY, "where": ["product.category != 'Toys'"]})
    assert response.status_code == 200, response.text
    assert len(trips) == 1  # building, compiling, running and encoding: one pool trip (was four)
    body = response.json()
    assert [c["name"] for c in body["columns"]] == ["product.category", "metric_time.month", "revenue"]
    assert body["rows"] and "Toys" not in {row[0] for row in body["rows"]}
    # Starlette's JSONResponse encoding, byte for byte (now done in the pool)
    assert response.content == json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    assert response.headers["content-type"] == "application/json"


def test_an_arrow_answer_is_one_trip_too(served, trips):
    import pyarrow as pa

    client = served[0]
    json_rows = client.post("/v1/query", json=QUERY).json()["rows"]
    trips.clear()
    response = client.post("/v1/query", json=QUERY, headers={"Accept": ARROW_STREAM})
    assert response.status_code == 200 and response.headers["content-type"] == ARROW_STREAM
    assert len(trips) == 1
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == len(json_rows) and table.column_names[-1] == "revenue"


def test_bad_requests_still_fail_in_the_pool_trip_and_are_audited(served, trips):
    client, _, project = served
    unknown = client.post("/v1/query", json={"metrics": ["revenu"]})
    assert unknown.status_code == 404 and "revenue" in unknown.json()["message"] + unknown.json()["hint"]
    too_long = client.post("/v1/query", json={**QUERY, "timeout_s": 10**6})
    assert too_long.status_code == 400, too_long.text
    assert "limit" in too_long.json()["message"] and len(trips) == 2
    entries = list(audit.read_audit(project / ".canon" / "audit.log"))
    assert entries[-1]["outcome"] == "error" and "limit" in entries[-1]["error"]
    filters = client.post("/v1/query", json={**QUERY, "filters": [{"field": "product.nope", "op": "equals",
                                                                    "values": ["x"]}]})
    assert filters.status_code in (400, 404) and "product.nope" in filters.text  # built in the same trip


def test_an_audit_write_does_not_wait_for_the_fsync(tmp_path, monkeypatch):
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd):  # a slow disk: the group commit's fsync takes a while
        in_fsync.set()
        release.wait(5)
        real_fsync(fd)

    monkeypatch.setattr(audit, "SYNC_DELAY_S", 0)
    monkeypatch.setattr(audit.os, "fsync", slow_fsync)
    log = audit.AuditLog(audit.AuditSettings(tmp_path / "audit.log", True, "batch"))
    who = Identity("fiona", "http")
    log.record(identity=who, request=None, rows=1)
    assert in_fsync.wait(5)
    started = time.perf_counter()
    log.record(identity=who, request=None, rows=2)  # written while the fsync runs, not after it
    waited = time.perf_counter() - started
    release.set()
    log.close()  # waits for the fsync in flight, syncs and closes
    assert waited < 1.0, f"the audit write waited {waited:.2f} s for an fsync"
    assert [e["rows"] for e in audit.read_audit(tmp_path / "audit.log")] == [1, 2]
