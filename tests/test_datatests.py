"""Data tests: every kind fails on crafted bad data, with the right sample rows; the demo passes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.server.cli import main
from canon.server.governance.datatests import build_tests, check_tests, run_data_tests
from canon.server.warehouses import open_warehouse

ROOT = Path(__file__).resolve().parents[1]

# A tiny warehouse in the demo's schema, with exactly one planted defect per test.
BAD_DATA = """
CREATE TABLE campaigns (campaign_id BIGINT, campaign_name VARCHAR, channel VARCHAR, funnel VARCHAR,
                        country_code VARCHAR, started_on DATE);
INSERT INTO campaigns VALUES (1, 'c1', 'facebook', 'self_service', 'US', DATE '2024-01-01'),
                             (2, 'c2', 'tiktok', 'self_service', 'US', DATE '2024-01-01');     -- bad channel
CREATE TABLE customers (customer_id BIGINT, signup_at TIMESTAMP, country_code VARCHAR, segment VARCHAR,
                        acquisition_channel VARCHAR, first_campaign_id BIGINT);
INSERT INTO customers VALUES (10, TIMESTAMP '2024-02-01 09:00', 'US', 'consumer', 'facebook', 1),
                             (11, TIMESTAMP '2024-03-01 09:00', 'US', 'enterprise', 'organic', NULL),
                             (12, NULL, 'GB', 'consumer', 'organic', NULL);                  -- no signup_at
CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, ordered_at TIMESTAMP, status VARCHAR,
                     sales_channel VARCHAR, campaign_id BIGINT, shipping_amount DECIMAL(12,2));
INSERT INTO orders VALUES
  (100, 10, TIMESTAMP '2024-01-15 12:00', 'completed', 'web', 1, 4.99),   -- before its customer's signup
  (101, 11, TIMESTAMP '2024-03-05 12:00', 'completed', 'web', NULL, 0),
  (102, 99, TIMESTAMP '2024-03-06 12:00', 'completed', 'web', NULL, 0),   -- unknown customer
  (103, 11, TIMESTAMP '2024-03-07 12:00', 'lost', 'web', NULL, 0),        -- bad status
  (104, 11, TIMESTAMP '2024-03-08 12:00', 'completed', 'web', NULL, -5),  -- negative shipping
  (104, 11, TIMESTAMP '2024-03-09 12:00', 'completed', 'app', NULL, 1);   -- duplicate id
CREATE TABLE ad_spend (campaign_id BIGINT, spend_date DATE, country_code VARCHAR, spend DECIMAL(12,2),
                       impressions BIGINT, clicks BIGINT, _etl_loaded_at TIMESTAMP);
INSERT INTO ad_spend VALUES
  (1, DATE '2024-05-01', 'US', 10, 100, 5, TIMESTAMP '2024-05-02 01:00'),
  (1, DATE '2024-05-01', 'US', -3, 100, 5, TIMESTAMP '2024-05-03 01:00'),  -- restated: latest is negative
  (1, DATE '2024-05-02', 'US', 7, 100, 500, TIMESTAMP '2024-05-03 01:00'); -- more clicks than impressions
CREATE TABLE leads (lead_id BIGINT, campaign_id BIGINT, created_at TIMESTAMP, country_code VARCHAR,
                    source VARCHAR, meeting_at TIMESTAMP, converted_customer_id BIGINT);
INSERT INTO leads VALUES
  (1, 1, TIMESTAMP '2024-05-01 10:00', 'US', 'signup', TIMESTAMP '2024-05-02 10:00', 10),
  (2, 1, TIMESTAMP '2024-05-01 11:00', 'US', 'fax', NULL, NULL),                          -- bad source
  (3, 1, TIMESTAMP '2024-05-03 11:00', 'US', 'webinar', TIMESTAMP '2024-05-02 09:00', NULL), -- meeting before lead
  (NULL, 1, TIMESTAMP '2024-05-04 08:00', 'US', 'webinar', TIMESTAMP '2024-05-05 08:00', NULL), -- meetings > leads
  (5, 7, TIMESTAMP '2024-05-04 09:00', 'US', 'signup', NULL, 77);              -- unknown campaign and customer
"""


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


@pytest.fixture(scope="module")
def bad_warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_data") / "bad.duckdb"
    con = duckdb.connect(str(path))
    con.execute(BAD_DATA)
    con.close()
    store = open_warehouse(str(path))
    yield store
    store.close()


@pytest.fixture(scope="module")
def results(catalog, bad_warehouse):
    found = {}
    for model in ("campaign", "customer", "order", "ad_spend", "lead"):
        for r in run_data_tests(catalog, bad_warehouse, model=model):
            found[(r.model, r.name)] = r
    return found


def rows(result) -> list[dict]:
    return [dict(zip(result.columns, row)) for row in result.sample]


def test_not_null(results):
    r = results[("customer", "not_null(signup_at)")]
    assert r.status == "fail" and r.failures == 1
    assert [row["customer_id"] for row in rows(r)] == [12]


def test_unique(results):
    r = results[("order", "unique(order_id)")]
    assert r.status == "fail" and r.failures == 1
    assert rows(r) == [{"order_id": 104, "row_count": 2}]
    # ad_spend is unique per key *after* reconciliation: the restated row does not count twice
    assert results[("ad_spend", "unique(campaign_id_spend_date_country_code)")].status == "pass"


def test_accepted_values(results):
    status = results[("order", "accepted_values(status)")]
    assert status.failures == 1 and [(x["order_id"], x["status"]) for x in rows(status)] == [(103, "lost")]
    channel = results[("campaign", "accepted_values(channel)")]
    assert [(x["campaign_id"], x["channel"]) for x in rows(channel)] == [(2, "tiktok")]
    source = results[("lead", "accepted_values(source)")]
    assert [x["lead_id"] for x in rows(source)] == [2]


def test_relationships(results):
    r = results[("order", "relationships(customer_id_to_customer)")]
    assert r.failures == 1 and [(x["order_id"], x["customer_id"]) for x in rows(r)] == [(102, 99)]
    assert results[("order", "relationships(campaign_id_to_campaign)")].status == "pass"  # NULLs are fine
    lead = results[("lead", "relationships(campaign_id_to_campaign)")]
    assert [x["campaign_id"] for x in rows(lead)] == [7]
    assert [x["converted_customer_id"] for x in rows(results[("lead", "relationships(converted_customer_id_to_customer)")])] == [77]


def test_expression(results):
    spend = results[("ad_spend", "expression(spend >= 0)")]
    # the latest load of 2024-05-01 is the negative one
    assert spend.failures == 1 and rows(spend)[0]["spend_date"] == dt.date(2024, 5, 1)
    assert float(rows(spend)[0]["spend"]) == -3.0
    clicks = results[("ad_spend", "expression(clicks <= impressions)")]
    assert [x["clicks"] for x in rows(clicks)] == [500]
    shipping = results[("order", "expression(shipping_amount >= 0)")]
    assert [x["order_id"] for x in rows(shipping)] == [104]


def test_funnel_monotonicity(results):
    r = results[("lead", "leads_ge_meetings_per_campaign_day")]
    assert r.status == "fail" and r.failures == 1
    assert rows(r) == [{"campaign_id": 1, "created_on": dt.date(2024, 5, 4), "leads": 0, "meetings": 1}]


def test_no_order_before_signup(results):
    r = results[("order", "no_order_before_signup")]
    assert r.failures == 1
    (row,) = rows(r)
    assert row["order_id"] == 100 and row["before_value"] == dt.datetime(2024, 2, 1, 9)
    assert row["after_value"] == dt.datetime(2024, 1, 15, 12)
    meeting = results[("lead", "sequence(created_at_before_meeting_at)")]
    assert [x["lead_id"] for x in rows(meeting)] == [3]


def test_sample_size_and_sql_is_built_by_sqlglot(catalog, bad_warehouse):
    (r,) = [x for x in run_data_tests(catalog, bad_warehouse, model="order", sample_size=0)
            if x.name == "accepted_values(status)"]
    assert r.failures == 1 and r.sample == []
    assert "NOT \"order\".status IN ('completed', 'cancelled', 'returned')" in r.sql


def test_every_declared_kind_is_used_and_builds(catalog):
    kinds = {case.type for case in build_tests(catalog)}
    assert kinds == {"not_null", "unique", "accepted_values", "relationships", "expression", "funnel", "sequence"}
    assert check_tests(catalog) == []


@pytest.mark.slow  # every data test on a demo warehouse, twice (API and CLI)
def test_the_demo_passes(catalog, tmp_path):
    from tests.support.project import demo_copy

    path = demo_copy(tmp_path / "demo.duckdb", scale=0.2, seed=5)
    store = open_warehouse(str(path))
    try:
        results = run_data_tests(catalog, store)
    finally:
        store.close()
    assert results and [(r.model, r.name, r.status) for r in results if r.status != "pass"] == []

    runner = CliRunner()
    out = runner.invoke(main, ["test", "--project", str(ROOT), "--warehouse", str(path)])
    assert out.exit_code == 0, out.output
    assert f"{len(results)} test(s), {len(results)} passed, 0 failed" in out.output


def test_cli_reports_failures_with_rows(bad_warehouse):
    out = CliRunner().invoke(main, ["test", "--project", str(ROOT), "--warehouse", bad_warehouse.url, "--model", "order"])
    assert out.exit_code == 1
    assert "FAIL  order: unique(order_id) — 1 failing row(s)" in out.output
    assert "order_id | row_count" in out.output and "104 | 2" in out.output
    bad = CliRunner().invoke(main, ["test", "--project", str(ROOT), "--warehouse", bad_warehouse.url, "--model", "ordr"])
    assert bad.exit_code == 1 and "did you mean 'order'" in bad.output


def test_bad_declarations_are_reported(tmp_path):
    from tests.support.project import copy_project

    copy_project(tmp_path)
    path = tmp_path / "semantic_models" / "orders.yml"
    path.write_text(path.read_text().replace("to: customer}", "to: custmer}").replace(
        "steps: [leads, meetings]", "steps: [leads, meeting]"))
    out = CliRunner().invoke(main, ["validate", "--project", str(tmp_path)])
    assert out.exit_code == 2
    assert "order test relationships(customer_id_to_custmer): relationships: unknown model or entity 'custmer'" in out.output
