"""Rollups (issue 14): declared in YAML, built in the warehouse, chosen by the runtime only when exact.

Every request a rollup answers here is also run on the raw tables (`use_rollups: false`) and the rows
compared; requests that a rollup cannot answer exactly must go raw (with the reason the matcher gives).
DuckDB here; tests/test_rollups_postgres.py runs the same cases on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import jwt
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from canon.compiler.compile import load_catalog
from canon.compiler.errors import CatalogErrors
from canon.compiler.request import QueryRequest as Q
from canon.compiler.rollups import Routed, answer, plan_rollups, rollup_table
from canon.server.cli import main as canon
from canon.server.http_api import create_app
from canon.server.rollups.build import build, refresh
from canon.server.rollups.status import status
from canon.server.rollups.suggest import suggest
from canon.server.rollups.writer import Writer
from canon.server.runtime import Identity, Runtime
from canon.server.runtime.result_cache import CacheSettings, ResultCache
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo

SECRET = "rollup-tests-secret-rollup-tests-secret"

# test-only rollups beside the demo's (metrics/rollups.yml): a distinct count, and a measure that the
# rollup's dimensions fan out (orders by product category)
EXTRA = """\
rollups:
  - name: buyers_daily
    metrics: [buyer_count]
    dimensions: [customer.country_code]
    time_grain: day
  - name: orders_by_category
    metrics: [order_count]
    dimensions: [product.category]
    time_grain: month
"""
ACCESS = ("cache: {ttl_s: 30}\n"
          "access: {default: deny, policies: ["
          "{name: by_country, when: \"user.role = 'country'\", row_filter: 'customer.country_code = {{ user.country }}'}, "
          "{name: by_channel, when: \"user.role = 'channel'\", row_filter: 'order.sales_channel = {{ user.channel }}'}, "
          "{name: everyone, when: \"user.role = 'analyst'\"}]}\n")

# (request, the rollup that must answer it: the smallest that can)
EXACT = [
    (Q(metrics=("revenue",), dimensions=("metric_time.month",)), "orders_by_country"),
    (Q(metrics=("revenue",), dimensions=("product.category",)), "revenue_daily"),
    (Q(metrics=("aov",), dimensions=("customer.country_code",)), "orders_by_country"),
    (Q(metrics=("cac",), dimensions=("campaign.channel",)), "marketing_by_channel"),
    (Q(metrics=("lead_to_meeting_rate",), dimensions=("campaign.channel",)), "marketing_by_channel"),
    (Q(metrics=("revenue",), dimensions=("metric_time.week", "customer.country_code"),
       where=("product.category IN ('Electronics', 'Home & Kitchen', 'Coffee')",), start="2025-02-01",
       end="2025-05-31", order=("-revenue",), limit=7), "revenue_daily"),
    (Q(metrics=("revenue",), dimensions=("metric_time.quarter",), where=("metric_time.month >= '2025-03-01'",),
       having=("revenue > 1000",)), "orders_by_country"),
    (Q(metrics=("revenue",)), "orders_by_country"),
    (Q(metrics=("buyer_count",), dimensions=("customer.country_code", "metric_time.day"), start="2025-03-01",
       end="2025-03-31"), "buyers_daily"),  # a distinct count at the rollup's own grain
    (Q(metrics=("order_count",), dimensions=("product.category", "metric_time.month")), "orders_by_category"),
    (Q(metrics=("order_count",), dimensions=("metric_time.year", "customer.country_code")),
     "orders_by_country"),  # not the smaller, fanned-out orders_by_category
    (Q(metrics=("ad_spend", "new_customers"), dimensions=("metric_time.month", "campaign.channel"),
       start="2025-01-01", end="2025-06-30"), "marketing_by_channel"),
    (Q(metrics=("cross_sell_score",), dimensions=("antecedent.product_name", "consequent.product_name"),
       order=("-cross_sell_score",), limit=20), "product_pairs"),  # the stored pairs, sorted and cut
    (Q(metrics=("cross_sell_score",), dimensions=("consequent.product_name", "antecedent.product_name"),
       having=("cross_sell_score > 0.2",)), "product_pairs"),
]
# (request, words of the reason the matcher gives for every rollup)
RAW = [
    (Q(metrics=("buyer_count",), dimensions=("customer.country_code", "metric_time.month")), "exact only"),
    (Q(metrics=("order_count",), dimensions=("product.category",)), "exact only"),
    (Q(metrics=("revenue",), dimensions=("order.sales_channel",)), "not a dimension"),
    (Q(metrics=("revenue",), dimensions=("product.category",), start="2025-02-01T12:00:00"), "does not start"),
    (Q(metrics=("revenue",), where=("order.ordered_at >= '2025-01-01'",)), "exact times"),
    (Q(metrics=("order_count",), dimensions=("metric_time.week",), where=("product.category = 'Coffee'",)), ""),
    (Q(metrics=("revenue",), dimensions=("metric_time.month",), timezone="America/New_York"), "time zone"),
    (Q(metrics=("order_count",), dimensions=("metric_time.month",)), "time spine"),  # join_to_timespine fills gaps
    (Q(metrics=("revenue_mom_growth",), dimensions=("metric_time.month",)), "other periods"),
    (Q(metrics=("units_sold",), dimensions=("metric_time.month",)), "does not store"),
    (Q(metrics=("cross_sell_score",), dimensions=("antecedent.category", "consequent.category")), "own dimensions"),
    (Q(metrics=("cross_sell_score",), dimensions=("antecedent.product_name", "consequent.product_name"),
       where=("customer.country_code = 'DE'",)), "baskets in scope"),
    (Q(metrics=("cross_sell_lift",), dimensions=("antecedent.product_name", "consequent.product_name")), "not stored"),
    # a filter on another metric reads that metric's rows: no rollup can answer it
    (Q(metrics=("aov",), dimensions=("customer.country_code",), where=("metric(order_count, by=customer) >= 3",)),
     "another metric"),
]


def raw(request: Q) -> Q:
    return replace(request, extra={"use_rollups": False})


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("rollups") / "project")
    (root / "metrics" / "rollups_test.yml").write_text(EXTRA)
    with (root / "canon.yml").open("a") as config:
        config.write(ACCESS)
    return root


@pytest.fixture(scope="module")
def built(project, tmp_path_factory):
    """A private copy of the demo warehouse with every rollup built (written before anyone reads it)."""
    path = tmp_path_factory.mktemp("rollups-db") / "demo.duckdb"
    shutil.copy(shared_demo(), path)
    catalog = load_catalog(project)
    with Writer(str(path)) as writer:
        outcomes = build(catalog, writer)
    assert {o.name for o in outcomes} == set(catalog.rollups) and all(o.rows > 0 for o in outcomes)
    return path


@pytest.fixture(scope="module")
def runtime(project, built):
    with Runtime.open(project, str(built)) as rt:
        rt.rollups.read(rt.catalog)  # what a server's background thread does (a request never does)
        yield rt


def test_rollups_are_declared_and_laid_out(project):
    layouts = plan_rollups(load_catalog(project))
    assert {"revenue_daily", "orders_by_country", "marketing_by_channel", "buyers_daily"} <= set(layouts)
    aov = layouts["orders_by_country"]
    assert [(leaf.metric, leaf.agg) for leaf in aov.leaves] == [("revenue", "sum"), ("order_count", "count")]
    assert [(leaf.metric, leaf.agg) for leaf in layouts["buyers_daily"].leaves] == [("buyer_count", "exact")]
    # orders counted per product category fan out: such a leaf is exact only at its own grain
    assert [(leaf.metric, leaf.agg) for leaf in layouts["orders_by_category"].leaves] == [("order_count", "exact")]


@pytest.mark.parametrize("request_, expected", EXACT, ids=[f"{'-'.join(q.metrics)}-by-{'-'.join(q.dimensions)}"
                                                            for q, _ in EXACT])
def test_rollup_answers_equal_the_raw_answers(runtime, request_, expected):
    routed = runtime.query(request_, identity=Identity("t", "internal"))
    plain = runtime.query(raw(request_), identity=Identity("t", "internal"))
    assert routed.rollup == expected, runtime.rollups.why_not(runtime.catalog, request_, "duckdb")
    assert "canon_rollups" in routed.sql and "canon_rollups" not in plain.sql and plain.rollup is None
    assert plain.rows, "a comparison over no rows proves nothing"
    assert routed.columns == plain.columns
    assert_same(routed.rows, plain.rows, ordered=True, label=expected)


@pytest.mark.parametrize("request_, why", RAW, ids=[f"{'-'.join(q.metrics)}-{i}" for i, (q, _) in enumerate(RAW)])
def test_requests_that_are_not_exact_go_raw(runtime, request_, why):
    result = runtime.query(request_)
    assert result.rollup is None and "canon_rollups" not in result.sql
    reasons = runtime.rollups.why_not(runtime.catalog, request_, "duckdb")
    assert "answers" not in reasons.values()
    assert any(why in reason for reason in reasons.values()), reasons


def test_requests_never_read_the_rollup_state_themselves(project, built):
    """Background work never runs inside a request: until the state is read (a server's thread, or
    `read` by a one-shot caller), every request goes raw, and each request runs exactly one statement."""
    from canon.server.warehouses import open_warehouse
    from tests.test_runtime import CountingWarehouse

    counting = CountingWarehouse(open_warehouse(str(built)))
    rt = Runtime.over(load_catalog(project), counting)
    request = Q(metrics=("revenue",), dimensions=("product.category",))
    before = [rt.query(request, use_cache=False) for _ in range(2)]
    assert all(r.rollup is None for r in before) and counting.statements == 2
    rt.rollups.read(rt.catalog)
    counting.statements = 0
    after = [rt.query(request, use_cache=False) for _ in range(2)]
    assert all(r.rollup == "revenue_daily" for r in after) and counting.statements == 2
    assert_same(before[0].rows, after[0].rows, ordered=True)
    rt.close()
    counting.inner.close()


def test_row_filters_still_apply_and_send_missing_dimensions_raw(runtime):
    request = Q(metrics=("revenue",), dimensions=("metric_time.month",))
    de = runtime.query(request, identity=Identity("ann", "http", {"role": "country", "country": "DE"}))
    de_raw = runtime.query(raw(request), identity=Identity("ann", "http", {"role": "country", "country": "DE"}))
    everyone = runtime.query(request, identity=Identity("bo", "http", {"role": "analyst"}))
    assert de.rollup == "orders_by_country" and "'DE'" in de.sql  # the row filter, on the rollup's column
    assert_same(de.rows, de_raw.rows, ordered=True)
    assert de.rows != everyone.rows
    web = runtime.query(request, identity=Identity("cy", "http", {"role": "channel", "channel": "web"}))
    assert web.rollup is None and "sales_channel" in web.sql  # no rollup holds the sales channel


def test_the_result_cache_keys_on_the_rollup_and_its_build(runtime):
    runtime.results = ResultCache(CacheSettings(enabled=True))
    try:
        request = Q(metrics=("revenue",), dimensions=("product.category",), limit=3)
        first = runtime.query(request)
        again = runtime.query(request)
        plain = runtime.query(raw(request))
        assert first.rollup == again.rollup == "revenue_daily" and getattr(again, "cached", False)
        assert not getattr(plain, "cached", False) and plain.rollup is None  # raw never shares the rollup's answer
        prepared = runtime.prepare(request)
        key = runtime._cache_key(prepared)
        assert prepared.rollup[0] == "revenue_daily" and prepared.rollup in key
        rebuilt = replace(prepared, rollup=("revenue_daily", "another-build"))
        assert runtime._cache_key(rebuilt) != key  # a new build (stamp) misses the cache
    finally:
        runtime.results = ResultCache(CacheSettings(enabled=False))


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_a_changed_definition_makes_the_rollup_stale(project, built):
    catalog = load_catalog(project)
    lay = plan_rollups(catalog)["revenue_daily"]
    request = Q(metrics=("revenue",), dimensions=("product.category",))
    assert isinstance(answer(catalog, request, lay, rollup_table(lay.name), "duckdb"), Routed)
    changed = copy_project(project.parent / "changed")
    text = (changed / "metrics" / "sales.yml").read_text()
    (changed / "metrics" / "sales.yml").write_text(text.replace("measure: order_item.line_revenue\n    filter: \"order.status = 'completed'\"",
                                                                "measure: order_item.line_revenue\n    filter: \"order.status <> 'cancelled'\"", 1))
    assert plan_rollups(load_catalog(changed))["revenue_daily"].fingerprint != lay.fingerprint
    with Runtime.open(changed, str(built)) as rt:  # the table was built from the old definition
        rt.rollups.read(rt.catalog)
        result = rt.query(request)
        assert result.rollup is None
        assert "stale" in rt.rollups.why_not(rt.catalog, request, "duckdb")["revenue_daily"]


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_http_answers_name_the_rollup_and_use_rollups_false_reads_raw(project, built):
    os.environ["CANON_API_SECRET"] = SECRET
    try:
        app = create_app(project, str(built), reload_interval_s=0)
        with TestClient(app) as client:
            app.state.runtime.rollups.read(app.state.runtime.catalog)  # not racing the background thread's first read
            headers = {"Authorization": jwt.encode({"sub": "a", "role": "analyst"}, SECRET, algorithm="HS256")}
            body = {"metrics": ["cac"], "dimensions": ["campaign.channel"]}
            routed = client.post("/v1/query", json=body, headers=headers).json()
            plain = client.post("/v1/query", json={**body, "use_rollups": False}, headers=headers).json()
            bad = client.post("/v1/query", json={**body, "use_rollups": "maybe"}, headers=headers)
    finally:
        os.environ.pop("CANON_API_SECRET", None)
    assert routed["rollup"] == "marketing_by_channel" and "rollup" not in plain
    assert_same(routed["rows"], plain["rows"], ordered=True)
    assert bad.status_code == 422 and "use_rollups" in bad.text


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_cli_query_no_rollups_and_status(project, built):
    runner = CliRunner()
    args = ["query", "--project", str(project), "--warehouse", str(built), "-m", "aov", "--by",
            "customer.country_code", "-f", "json"]
    routed = runner.invoke(canon, args)
    plain = runner.invoke(canon, args + ["--no-rollups"])
    assert routed.exit_code == 0 and plain.exit_code == 0, routed.output + plain.output
    routed, plain = json.loads(routed.output), json.loads(plain.output)
    assert routed["rollup"] == "orders_by_country" and "rollup" not in plain
    assert_same(routed["rows"], plain["rows"], ordered=True)
    unknown = runner.invoke(canon, ["rollups", "build", "--project", str(project), "--warehouse", str(built), "revenue_dayly"])
    assert unknown.exit_code != 0 and "did you mean 'revenue_daily'" in unknown.output


def test_status_reports_built_rollups(project, built, tmp_path):
    path = tmp_path / "status.duckdb"  # a copy: the module's runtime holds `built` open read-only
    shutil.copy(built, path)
    with Writer(str(path)) as writer:
        rows = {r["name"]: r for r in status(load_catalog(project), writer)}
    daily = rows["revenue_daily"]
    assert daily["built"] and daily["rows"] > 0 and daily["bytes"] > 0 and daily["stale"] is False
    assert daily["dimensions"] == ["product.category", "customer.country_code", "metric_time.day"]


@pytest.mark.slow  # opens a runtime (or a server) of its own
def test_refresh_reconciles_late_rows_by_watermark(project, built, tmp_path):
    """A restated ad_spend row for an old day (newer _etl_loaded_at) makes the rollup stale; refresh
    recomputes that day's partition (plus the trailing ones) and the rollup equals raw again."""
    path = tmp_path / "late.duckdb"
    shutil.copy(built, path)
    catalog = load_catalog(project)
    request = Q(metrics=("cac", "ad_spend"), dimensions=("metric_time.month", "campaign.channel"))
    with Writer(str(path)) as writer:
        writer.execute("INSERT INTO ad_spend SELECT campaign_id, spend_date, country_code, spend + 5000, impressions, "
                       "clicks, (SELECT MAX(_etl_loaded_at) FROM ad_spend) + INTERVAL 1 DAY FROM ad_spend "
                       "WHERE spend_date = DATE '2025-03-10' LIMIT 1")
    with Runtime.open(project, str(path)) as rt:
        rt.rollups.read(rt.catalog)
        stale = rt.query(request)
        assert stale.rollup is None  # new source rows since the build: not trusted
        assert "stale" in rt.rollups.why_not(rt.catalog, request, "duckdb")["marketing_by_channel"]
    with Writer(str(path)) as writer:
        assert next(r for r in status(catalog, writer) if r["name"] == "marketing_by_channel")["stale"]
        outcome = next(o for o in refresh(catalog, writer, ["marketing_by_channel"]))
    assert outcome.action == "refreshed"
    assert ("2025-03-01 00:00:00", "2025-04-01 00:00:00") in outcome.partitions  # the late partition
    assert any(end is None for _, end in outcome.partitions)  # the trailing ones, and anything newer
    with Runtime.open(project, str(path)) as rt:
        rt.rollups.read(rt.catalog)
        fresh = rt.query(request)
        plain = rt.query(raw(request))
    assert fresh.rollup == "marketing_by_channel"
    assert_same(fresh.rows, plain.rows, ordered=True)
    assert_same(fresh.rows, stale.rows, ordered=True)  # the stale query went raw: it saw the restated row


def test_suggest_proposes_rollups_for_frequent_unanswered_queries(project):
    entries = [{"outcome": "ok", "metrics": ["units_sold"], "dimensions": ["metric_time.month", "product.brand"],
                "filters": ["customer.segment = 'enterprise'"], "elapsed_ms": 120.0}] * 3
    entries += [{"outcome": "ok", "metrics": ["revenue"], "dimensions": ["product.category"], "elapsed_ms": 900.0}]
    entries += [{"outcome": "error", "metrics": ["aov"], "dimensions": ["order.sales_channel"], "elapsed_ms": 5.0}]
    proposals = suggest(load_catalog(project), entries)
    assert len(proposals) == 1  # revenue by category is answered already; errors are not suggestions
    rollup = proposals[0]["rollup"]
    assert rollup["metrics"] == ["units_sold"] and rollup["time_grain"] == "month"
    assert rollup["dimensions"] == ["customer.segment", "product.brand"] and proposals[0]["queries"] == 3


@pytest.mark.parametrize("text, words", [
    ("rollup:\n  - {name: x, metrics: [revenue]}\n", "did you mean 'rollups'"),
    ("rollups:\n  - {name: x, metrics: [revenu]}\n", "did you mean 'revenue'"),
    ("rollups:\n  - {name: x, metrics: [cross_sell_score, revenue]}\n", "cannot be combined"),
    ("rollups:\n  - {name: x, metrics: [revenue_mtd]}\n", "is cumulative"),
    ("rollups:\n  - {name: x, metrics: [revenue], dimensions: [product.categry]}\n", "product.category"),
    ("rollups:\n  - {name: x, metrics: [revenue], partition_by: month}\n", "partition_by month needs a time_grain"),
    ("rollups:\n  - {name: x, metrics: [revenue], time_grain: hour}\n", "time_grain"),
])
def test_bad_rollup_definitions_name_the_problem(tmp_path, text, words):
    root = copy_project(tmp_path / "project")
    (root / "metrics" / "bad_rollups.yml").write_text(text)
    with pytest.raises(CatalogErrors) as raised:
        load_catalog(root)
    message = str(raised.value)
    assert words in message and "bad_rollups.yml" in message, message


def test_leaves_are_stored_bare_so_any_filler_applies_after_reaggregation(tmp_path):
    """Two metrics share a measure and differ only in fill_nulls_with: the stored value is the bare
    aggregate (no COALESCE), so each request applies its own filler after re-aggregating, as raw does."""
    from canon.compiler.rollups import build_parts

    root = copy_project(tmp_path / "project")
    (root / "metrics" / "filled.yml").write_text(
        "metrics:\n  - {name: units_or_one, type: simple, measure: order_item.units, fill_nulls_with: 1}\n"
        "  - {name: units_or_zero, type: simple, measure: order_item.units, fill_nulls_with: 0}\n"
        "rollups:\n  - {name: filled, metrics: [units_or_one, units_or_zero], dimensions: [product.category]}\n")
    catalog = load_catalog(root)
    lay = plan_rollups(catalog)["filled"]
    assert [(leaf.metric, leaf.agg) for leaf in lay.leaves] == [("units_or_one", "sum"), ("units_or_zero", "sum")]
    assert all("COALESCE" not in tree.sql("duckdb").upper() for _, tree in build_parts(catalog, lay, "duckdb"))
    for metric, filler in (("units_or_one", "1"), ("units_or_zero", "0")):
        routed = answer(catalog, Q(metrics=(metric,)), lay, rollup_table("filled"), "duckdb")
        assert isinstance(routed, Routed) and "COALESCE(SUM(\"v_units_or_" in routed.sql and f", {filler})" in routed.sql
