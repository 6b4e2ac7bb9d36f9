"""Rollups on PostgreSQL (issue 14): the same exact and not-exact requests as tests/test_rollups.py,
each rollup answer compared with the raw answer, and an incremental refresh after a late row."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from canon.compiler.compile import load_catalog
from canon.server.rollups.build import build, refresh
from canon.server.rollups.status import status
from canon.server.rollups.writer import Writer
from canon.server.runtime import Runtime
from tests.support.oracle import assert_same
from tests.support.pg_server import create_database
from tests.test_rollups import EXACT, RAW, project, raw  # noqa: F401 — `project` is a fixture

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url(pg_server_url, pg_demo_duckdb, project):  # noqa: F811
    """A database of its own (the shared demo database stays without rollup tables), rollups built."""
    from canon.server.pg_load import load_demo_into_postgres

    url = create_database(pg_server_url, "canon_rollups_test")
    load_demo_into_postgres(pg_demo_duckdb, url)
    with Writer(url) as writer:
        outcomes = build(load_catalog(project), writer)
    assert all(o.rows > 0 and o.bytes > 0 for o in outcomes)
    return url


@pytest.fixture(scope="module")
def runtime(project, pg_url):  # noqa: F811
    with Runtime.open(project, pg_url) as rt:
        rt.rollups.read(rt.catalog)
        yield rt


@pytest.mark.parametrize("request_, expected", EXACT, ids=[f"{'-'.join(q.metrics)}-by-{'-'.join(q.dimensions)}"
                                                            for q, _ in EXACT])
def test_rollup_answers_equal_the_raw_answers_on_postgres(runtime, request_, expected):
    routed = runtime.query(request_)
    plain = runtime.query(raw(request_))
    assert routed.rollup == expected, runtime.rollups.why_not(runtime.catalog, request_, "postgres")
    assert plain.rollup is None and plain.rows and routed.columns == plain.columns
    assert_same(routed.rows, plain.rows, ordered=True, label=expected)


@pytest.mark.parametrize("request_, why", RAW, ids=[f"{'-'.join(q.metrics)}-{i}" for i, (q, _) in enumerate(RAW)])
def test_requests_that_are_not_exact_go_raw_on_postgres(runtime, request_, why):
    assert runtime.query(request_).rollup is None
    reasons = runtime.rollups.why_not(runtime.catalog, request_, "postgres")
    assert any(why in reason for reason in reasons.values()), reasons


def test_refresh_reconciles_a_late_row_on_postgres(project, pg_url, runtime):  # noqa: F811
    catalog = load_catalog(project)
    request = replace(EXACT[3][0], dimensions=("metric_time.month", "campaign.channel"))  # cac by month, channel
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("INSERT INTO ad_spend SELECT campaign_id, spend_date, country_code, spend + 5000, impressions, "
                    "clicks, (SELECT MAX(_etl_loaded_at) FROM ad_spend) + INTERVAL '1 day' FROM ad_spend "
                    "WHERE spend_date = DATE '2025-03-10' LIMIT 1")
    runtime.rollups.read(runtime.catalog)
    assert runtime.query(request).rollup is None  # stale: the source has a newer row
    with Writer(pg_url) as writer:
        assert next(r for r in status(catalog, writer) if r["name"] == "marketing_by_channel")["stale"]
        outcome = refresh(catalog, writer, ["marketing_by_channel"])[0]
    assert outcome.action == "refreshed" and ("2025-03-01 00:00:00", "2025-04-01 00:00:00") in outcome.partitions
    runtime.rollups.read(runtime.catalog)
    fresh, plain = runtime.query(request), runtime.query(raw(request))
    assert fresh.rollup == "marketing_by_channel"
    assert_same(fresh.rows, plain.rows, ordered=True)
