"""Roles of an entity: references that name their join path (`customer.campaign.channel`), checked
against hand SQL over the raw demo tables on DuckDB and PostgreSQL; ambiguous paths stay errors that
list the paths to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.errors import QueryError, UnknownNameError
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, sql_rows
from tests.support.project import copy_project


def run(catalog, warehouse, metrics, dims, where=(), **extra):
    return canon_rows(catalog, warehouse, QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims),
                                                       where=tuple(where), **extra))


def test_order_campaign_and_the_customers_acquiring_campaign_side_by_side(catalog, warehouse):
    canon = run(catalog, warehouse, ["order_count"], ["campaign.channel", "customer.campaign.channel"])
    oracle = sql_rows(warehouse, """
        SELECT oc.channel, cc.channel, COUNT(o.order_id)
        FROM orders o
        LEFT JOIN campaigns oc ON oc.campaign_id = o.campaign_id
        LEFT JOIN customers c ON c.customer_id = o.customer_id
        LEFT JOIN campaigns cc ON cc.campaign_id = c.first_campaign_id
        WHERE o.status = 'completed'
        GROUP BY oc.channel, cc.channel""")
    assert_same(canon, oracle, keys=2)
    assert any(r[0] != r[1] and r[0] is not None and r[1] is not None for r in canon)  # the roles differ


def test_the_explicit_short_path_equals_the_plain_reference(catalog, warehouse):
    plain = run(catalog, warehouse, ["revenue"], ["campaign.channel"])
    named = run(catalog, warehouse, ["revenue"], ["order.campaign.channel"])
    assert_same(named, plain, keys=1)


def test_lead_campaign_vs_the_converted_customers_campaign(catalog, warehouse):
    canon = run(catalog, warehouse, ["lead_count"], ["lead.customer.country_code", "customer.campaign.funnel"],
                where=["customer.campaign.channel = 'linkedin'"], start="2024-01-01", end="2024-12-31")
    oracle = sql_rows(warehouse, """
        SELECT c.country_code, cc.funnel, COUNT(l.lead_id)
        FROM leads l
        JOIN customers c ON c.customer_id = l.converted_customer_id
        JOIN campaigns cc ON cc.campaign_id = c.first_campaign_id
        WHERE cc.channel = 'linkedin'
          AND l.created_at >= TIMESTAMP '2024-01-01 00:00:00' AND l.created_at < TIMESTAMP '2025-01-01 00:00:00'
        GROUP BY c.country_code, cc.funnel""")
    assert oracle
    assert_same(canon, oracle, keys=2)


def test_a_key_is_named_by_its_role(catalog, warehouse):
    """leads.yml gives the converted-customer key `role: converted_customer`."""
    by_role = run(catalog, warehouse, ["lead_count"], ["lead.converted_customer.country_code", "lead.country_code"])
    oracle = sql_rows(warehouse, """
        SELECT c.country_code, l.country_code, COUNT(l.lead_id)
        FROM leads l LEFT JOIN customers c ON c.customer_id = l.converted_customer_id
        GROUP BY c.country_code, l.country_code""")
    assert_same(by_role, oracle, keys=2)
    assert_same(by_role, run(catalog, warehouse, ["lead_count"], ["lead.customer.country_code", "lead.country_code"]), keys=2)


def test_a_time_dimension_at_the_end_of_a_path_takes_a_grain(catalog, warehouse):
    canon = run(catalog, warehouse, ["revenue"], ["order.customer.campaign.started_on.quarter"])
    oracle = sql_rows(warehouse, """
        SELECT CAST(DATE_TRUNC('quarter', cc.started_on) AS DATE), SUM(i.quantity * i.unit_price - i.discount_amount)
        FROM order_items i JOIN orders o ON o.order_id = i.order_id
        LEFT JOIN customers c ON c.customer_id = o.customer_id
        LEFT JOIN campaigns cc ON cc.campaign_id = c.first_campaign_id
        WHERE o.status = 'completed'
        GROUP BY 1""")
    assert_same(canon, oracle, keys=1)


def test_a_path_through_a_bridge(catalog, warehouse):
    """order.order_item.product.category: orders grouped by their lines' categories, each counted once."""
    named = run(catalog, warehouse, ["order_count"], ["order.order_item.product.category"])
    plain = run(catalog, warehouse, ["order_count"], ["product.category"])
    assert_same(named, plain, keys=1)


# --- ambiguity: a model with two equally short paths to campaigns ---------------------------------

TICKET = """\
semantic_model:
  name: ticket
  description: A support ticket about a lead's first order (for tests of ambiguous join paths).
  sql: |
    SELECT l.lead_id AS ticket_id, l.lead_id, MIN(o.order_id) AS order_id
    FROM leads AS l LEFT JOIN orders AS o ON o.customer_id = l.converted_customer_id
    GROUP BY l.lead_id
  entities:
    - {name: ticket, type: primary, expr: ticket_id}
    - {name: lead, type: foreign, expr: lead_id}
    - {name: order, type: foreign, expr: order_id}
  measures:
    - {name: tickets, agg: count, expr: ticket_id}
"""
TICKET_METRIC = """\
metrics:
  - {name: ticket_count, type: simple, measure: ticket.tickets, description: Tickets.}
"""


@pytest.fixture(scope="module")
def ticket_catalog(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("roles"))
    (root / "semantic_models" / "tickets.yml").write_text(TICKET)
    (root / "metrics" / "tickets.yml").write_text(TICKET_METRIC)
    return load_catalog(root)


def test_an_ambiguous_path_is_an_error_that_lists_the_paths(ticket_catalog):
    with pytest.raises(QueryError) as raised:
        compile_request(ticket_catalog, QueryRequest(metrics=("ticket_count",), dimensions=("campaign.channel",)))
    error = raised.value
    assert "ambiguous join path from ticket to campaign" in error.message
    assert "ticket.lead.campaign.<dimension>" in error.hint and "ticket.order.campaign.<dimension>" in error.hint


def test_naming_the_path_resolves_the_ambiguity(ticket_catalog, warehouse):
    canon = run(ticket_catalog, warehouse, ["ticket_count"], ["ticket.lead.campaign.channel", "ticket.order.campaign.channel"])
    oracle = sql_rows(warehouse, """
        SELECT lc.channel, oc.channel, COUNT(t.ticket_id)
        FROM (SELECT l.lead_id AS ticket_id, l.lead_id, MIN(o.order_id) AS order_id
              FROM leads AS l LEFT JOIN orders AS o ON o.customer_id = l.converted_customer_id
              GROUP BY l.lead_id) t
        LEFT JOIN leads l ON l.lead_id = t.lead_id
        LEFT JOIN campaigns lc ON lc.campaign_id = l.campaign_id
        LEFT JOIN orders o ON o.order_id = t.order_id
        LEFT JOIN campaigns oc ON oc.campaign_id = o.campaign_id
        GROUP BY lc.channel, oc.channel""")
    assert_same(canon, oracle, keys=2)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref, words", [
    ("customer.campain.channel", ["no dimension or join step 'campain'", "did you mean", "campaign"]),
    ("customer.campaign", ["no dimension 'campaign'"]),                      # a step but no dimension: plain error
    ("customer.campaign.chanel", ["no dimension or join step 'chanel'", "channel"]),
    ("order.customer.campaign.started_on.fortnight", ["unknown time grain or date part 'fortnight'"]),
])
def test_bad_paths_name_the_offender_and_the_choices(catalog, ref, words):
    with pytest.raises((UnknownNameError, QueryError)) as raised:
        compile_request(catalog, QueryRequest(metrics=("order_count",), dimensions=(ref,)))
    text = f"{raised.value.message} {raised.value.hint or ''}"
    assert all(w in text for w in words), text


def test_the_start_of_a_path_must_be_reachable(catalog):
    with pytest.raises(QueryError, match="customer cannot be reached from ad_spend"):
        compile_request(catalog, QueryRequest(metrics=("ad_spend",), dimensions=("customer.campaign.channel",)))
