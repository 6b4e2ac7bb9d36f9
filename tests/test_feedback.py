"""Recommendation feedback is never lost: a real `canon serve` process is SIGKILLed right after its
2xx answers, restarted, and every accepted event is counted by the feedback metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.test_recommend_reference import make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "feedback", scale=0.3, seed=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(project, port: int) -> subprocess.Popen:
    env = {**os.environ, "CANON_RECOMMEND_REFRESH_MINUTES": "0"}
    env.pop("CANON_WAREHOUSE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "canon.server.cli", "serve", "--project", str(project), "--port", str(port),
         "--reload-interval", "0", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/v1/recommendations/snapshot", timeout=2)
            if r.status_code == 200 and r.json()["snapshot"]:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("server did not start within 60 s")


def _stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stderr:
        process.stderr.close()


def test_feedback_survives_sigkill(project):
    port = _free_port()
    server = _start(project, port)
    events = ["shown"] * 10 + ["clicked"] * 4 + ["purchased"] * 2 + ["dismissed"] * 3
    accepted = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            bad = client.post("/v1/recommendations/feedback",
                              json={"customer_id": 987654321, "product_id": 1001, "event": "shown"})
            assert bad.status_code == 404 and "customer_id" in bad.json()["message"]
            for i, event in enumerate(events):
                r = client.post("/v1/recommendations/feedback",
                                json={"customer_id": 1 + i, "product_id": 1001 + i, "event": event,
                                      "recommendation_id": f"rec_test_{i}"})
                assert r.status_code == 201, r.text
                accepted.append(r.json()["event_id"])
    finally:
        _stop(server, signal.SIGKILL)  # right after the last 2xx: nothing had a chance to flush later
    assert len(accepted) == len(events)

    port = _free_port()
    server = _start(project, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            r = client.post("/v1/query", json={"metrics": ["recommendation_impressions", "recommendation_clicks",
                                                           "recommendation_purchases", "recommendation_dismissals",
                                                           "recommendation_ctr", "recommendation_conversion_rate"]})
            assert r.status_code == 200, r.text
            shown, clicked, purchased, dismissed, ctr, conversion = r.json()["rows"][0]
            assert (shown, clicked, purchased, dismissed) == (10, 4, 2, 3)
            assert ctr == pytest.approx(0.4) and conversion == pytest.approx(0.2)
            by_id = client.post("/v1/query", json={"metrics": ["recommendation_impressions"],
                                                   "dimensions": ["recommendation_feedback.recommendation_id"]})
            assert len(by_id.json()["rows"]) == 10
    finally:
        _stop(server)
    # a restart loads nothing twice
    port = _free_port()
    server = _start(project, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/query", json={"metrics": ["recommendation_impressions"]}, timeout=30)
        assert r.json()["rows"][0][0] == 10
    finally:
        _stop(server)


def test_journal_is_fsynced_before_the_answer(tmp_path):
    from canon.server.recommend.feedback import FeedbackJournal, make_event

    journal = FeedbackJournal(tmp_path)
    event = make_event(1, 1001, "clicked", "rec_x")
    journal.append(event)
    with open(journal.path, "ab") as handle:  # a torn line from a crash mid-write is skipped
        handle.write(b'{"event_id": "trunc')
    assert journal.events() == [event]
