"""Freshness: states at the boundaries (exactly 12 h and 24 h), with an injectable `now`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.server.cli import main
from canon.server.governance.freshness import (classify, evaluate, format_age, freshness_report, freshness_warnings,
                                         monitored_models)
from canon.server.warehouses import open_warehouse

ROOT = Path(__file__).resolve().parents[1]
LOADED = dt.datetime(2025, 6, 1, 6, 0, 0)
H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("fresh") / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE ad_spend (campaign_id BIGINT, spend_date DATE, country_code VARCHAR, spend DECIMAL(12,2),"
                " impressions BIGINT, clicks BIGINT, _etl_loaded_at TIMESTAMP)")
    con.execute("INSERT INTO ad_spend VALUES (1, DATE '2025-05-31', 'US', 1, 1, 1, TIMESTAMP '2025-06-01 05:00:00'),"
                " (1, DATE '2025-05-31', 'GB', 1, 1, 1, TIMESTAMP '2025-06-01 06:00:00')")
    con.execute("CREATE TABLE leads (lead_id BIGINT, campaign_id BIGINT, created_at TIMESTAMP, country_code VARCHAR,"
                " source VARCHAR, meeting_at TIMESTAMP, converted_customer_id BIGINT)")  # empty
    con.close()
    store = open_warehouse(str(path))
    yield store
    store.close()


def test_marketing_sources_are_monitored(catalog):
    spec = {m.name: m.definition.freshness for m in monitored_models(catalog)}
    assert spec["ad_spend"].loaded_at == "_etl_loaded_at"
    assert (spec["ad_spend"].warn_after, spec["ad_spend"].error_after) == ("12h", "24h")
    assert (spec["lead"].warn_after, spec["lead"].error_after) == ("12h", "24h")


@pytest.mark.parametrize("age, state", [
    (dt.timedelta(0), "fresh"),
    (12 * H - S, "fresh"),
    (12 * H, "fresh"),          # exactly at warn_after: not yet over it
    (12 * H + S, "warn"),
    (24 * H, "warn"),           # exactly at error_after
    (24 * H + S, "error"),
    (30 * 24 * H, "error"),
])
def test_boundaries(catalog, age, state):
    model = catalog.models["ad_spend"]
    result = evaluate(model, LOADED, now=LOADED + age)
    assert result.state == state and result.age_seconds == age.total_seconds()


def test_classify_edge_cases():
    assert classify(None, "12h", "24h") == "error"  # no rows at all
    assert classify(100.0, None, "1m") == "error" and classify(100.0, "1m", None) == "warn"
    assert classify(-5.0, "12h", "24h") == "fresh"  # loaded "in the future" (clock skew) is not stale
    assert format_age(26 * 3600 + 120) == "1d 2h 2m" and format_age(59) == "0m"


def test_timezone_aware_now_and_date_loaded_at(catalog):
    model = catalog.models["ad_spend"]
    aware = dt.datetime(2025, 6, 1, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 18:00 UTC
    assert evaluate(model, LOADED, now=aware).age_seconds == 12 * 3600
    assert evaluate(model, dt.date(2025, 6, 1), now=dt.datetime(2025, 6, 2, 0, 0, 1)).state == "error"


def test_report_against_a_warehouse(catalog, warehouse):
    report = {s.model: s for s in freshness_report(catalog, warehouse, now=LOADED + 13 * H)}
    assert report["ad_spend"].max_loaded_at == LOADED and report["ad_spend"].state == "warn"
    assert report["ad_spend"].to_dict()["age"] == "13h 0m"
    assert report["lead"].state == "error" and report["lead"].message == "no rows"


def test_query_warnings_for_stale_sources(catalog, warehouse):
    report = freshness_report(catalog, warehouse, now=LOADED + 13 * H)
    warnings = freshness_warnings(catalog, report, ["cac", "revenue"])
    assert warnings == ["metric 'cac' reads source 'ad_spend', last loaded 13h 0m ago "
                        "(warn: warn after 12h, error after 24h)"]
    assert freshness_warnings(catalog, freshness_report(catalog, warehouse, now=LOADED + H), ["ad_spend"]) == []
    assert freshness_warnings(catalog, report, ["lead_count"]) == ["metric 'lead_count' reads source 'lead', which has no rows"]


def test_cli(warehouse):
    runner = CliRunner()
    base = ["freshness", "--project", str(ROOT), "--warehouse", warehouse.url]
    out = runner.invoke(main, base + ["--now", "2025-06-01T18:00:00"])
    assert out.exit_code == 1  # leads has no rows: error
    assert "FRESH ad_spend: newest _etl_loaded_at 2025-06-01 06:00:00, age 12h 0m (warn after 12h, error after 24h)" in out.output
    assert "ERROR lead" in out.output and "no rows" in out.output
    import json

    data = json.loads(runner.invoke(main, base + ["--now", "2025-06-02T06:00:01", "-f", "json"]).output)
    assert {d["model"]: d["state"] for d in data} == {"ad_spend": "error", "lead": "error"}
    bad = runner.invoke(main, base + ["--now", "yesterday"])
    assert bad.exit_code == 1 and "--now 'yesterday' is not an ISO date" in bad.output
