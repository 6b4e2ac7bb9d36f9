"""Recommendation feedback is never lost: a real `canon serve` process is SIGKILLed right after its
2xx answers, restarted, and every accepted event is counted by the feedback metrics."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.support.servers import start_serve
from tests.test_recommend_reference import make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "feedback", scale=0.3, seed=2)


def _snapshot_ready(url: str) -> bool:
    r = httpx.get(f"{url}/v1/recommendations/snapshot", timeout=2)
    return r.status_code == 200 and bool(r.json()["snapshot"])


def _start(project):
    """`canon serve` on the project's own warehouse, answering once its affinity snapshot is loaded."""
    return start_serve(project, "--reload-interval", "0", env={"CANON_RECOMMEND_REFRESH_MINUTES": "0"},
                       ready=_snapshot_ready)


@pytest.mark.slow  # three server starts, one of them after a SIGKILL
def test_feedback_survives_sigkill(project):
    server = _start(project)
    events = ["shown"] * 10 + ["clicked"] * 4 + ["purchased"] * 2 + ["dismissed"] * 3
    accepted = []
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
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
        server.stop(signal.SIGKILL)  # right after the last 2xx: nothing had a chance to flush later
    assert len(accepted) == len(events)

    server = _start(project)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
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
        server.stop()
    # a restart loads nothing twice
    server = _start(project)
    try:
        r = httpx.post(f"{server.url}/v1/query", json={"metrics": ["recommendation_impressions"]}, timeout=30)
        assert r.json()["rows"][0][0] == 10
    finally:
        server.stop()


def test_journal_is_fsynced_before_the_answer(tmp_path):
    from canon.server.recommend.feedback import FeedbackJournal, make_event

    journal = FeedbackJournal(tmp_path)
    event = make_event(1, 1001, "clicked", "rec_x")
    journal.append(event)
    with open(journal.path, "ab") as handle:  # a torn line from a crash mid-write is skipped
        handle.write(b'{"event_id": "trunc')
    assert journal.events() == [event]
