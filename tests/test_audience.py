"""`canon audience`: campaign lists by RFM segment or by product, against the reference implementation."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from tests.test_recommend_reference import Reference, make_project

# a demo and a recommendation snapshot of its own, whole segments exported and checked (~1 s a test)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "audience", scale=0.5, seed=5)


@pytest.fixture(scope="module")
def ref(project):
    return Reference(project / ".canon" / "demo.duckdb")


def _canon(*args, env=None):
    from canon.server.cli import main

    result = CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)
    return result


def test_segment_audience_csv(project, ref):
    result = _canon("audience", "--project", str(project), "--segment", "champions", "--limit", "100000",
                    "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    champions = sorted(c for c, s in ref.rfm_segments().items() if s == "champions")
    assert [int(r["customer_id"]) for r in rows] == champions
    for r in rows[:50]:
        want = [b for b, *_ in ref.recommend(int(r["customer_id"]), 3)]
        assert [int(x) for x in r["recommended_product_ids"].split("|")] == want
        assert r["reason"].startswith("bought ")
        assert len(r["email_id"]) == 20 and set(r["email_id"]) <= set("0123456789abcdef")
    again = _canon("audience", "--project", str(project), "--segment", "champions", "--limit", "5")
    assert [r["email_id"] for r in csv.DictReader(io.StringIO(again.stdout))] == [r["email_id"] for r in rows[:5]]
    salted = _canon("audience", "--project", str(project), "--segment", "champions", "--limit", "5",
                    env={"CANON_AUDIENCE_SALT": "another"})
    assert [r["email_id"] for r in csv.DictReader(io.StringIO(salted.stdout))] != [r["email_id"] for r in rows[:5]]


def test_product_audience_json(project, ref):
    product = 1013
    result = _canon("audience", "--project", str(project), "--recommend-product", str(product), "--limit", "50",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    scored = []
    for cid, history in ref.history.items():
        if product in history:
            continue
        best = max(((ref.rules[a][product][0], ref.rules[a][product][2]) for a in history if product in ref.rules.get(a, {})),
                   default=None)
        if best:
            scored.append((-best[0], -best[1], cid))
    want = [cid for *_, cid in sorted(scored)[:50]]
    assert [r["customer_id"] for r in rows] == want
    assert all(r["recommended_product_ids"] == [product] for r in rows)


def test_audience_errors(project):
    result = _canon("audience", "--project", str(project), "--segment", "whales")
    assert result.exit_code != 0 and "segment" in result.output and "champions" in result.output
    result = _canon("audience", "--project", str(project), "--recommend-product", "99")
    assert result.exit_code != 0 and "unknown product 99" in result.output
    result = _canon("audience", "--project", str(project))
    assert result.exit_code != 0 and "--segment" in result.output
