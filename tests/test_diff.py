"""`canon diff` on temporary git repositories with real commits: every kind of change classified,
SQL and numbers before/after on a demo warehouse, dependents, re-certification, exit codes, formats."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from canon.server.cli import main
from canon.server.governance.diff import diff_project, render
from canon.server.warehouses import open_warehouse
from tests.support.project import copy_project, demo_copy

pytestmark = pytest.mark.slow  # each test compiles and runs the whole catalog twice (a second or more)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                               "HOME": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"}).stdout


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = demo_copy(tmp_path_factory.mktemp("diff_demo") / "demo.duckdb", scale=0.2, seed=3)
    store = open_warehouse(str(path))
    yield store
    store.close()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository whose first commit holds the demo project, nested one folder down."""
    project = tmp_path / "analytics"
    copy_project(project)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base catalog")
    return project


def edit(project: Path, file: str, old: str, new: str, *, count: int = 1) -> None:
    path = project / file
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, count))


def commit(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


def change(report, kind: str, name: str, severity: str | None = None):
    found = [c for c in report.changes if c.kind == kind and c.name == name
             and (severity is None or c.severity == severity)]
    assert found, f"no {severity or ''} change to {kind} {name}: {[(c.kind, c.name, c.severity) for c in report.changes]}"
    return found[0]


def test_no_changes(repo):
    report = diff_project(repo, "HEAD")
    assert report.changes == [] and report.exit_code == 0


def test_removed_metric_is_breaking(repo, warehouse):
    path = repo / "metrics/sales.yml"
    text = path.read_text()
    start, end = text.index("  - name: cross_sell_pair_orders\n"), text.index("saved_queries:")
    path.write_text(text[:start] + text[end:])
    # the glossary names it too: removing a metric means removing its mentions (validate insists)
    edit(repo, "metrics/glossary.yml", ", cross_sell_pair_orders]", "]")
    report = diff_project(repo, "HEAD", warehouse=warehouse)
    removed = change(report, "metric", "cross_sell_pair_orders", "breaking")
    assert removed.change == "removed"
    assert removed.recertify is False  # it was only verified
    assert report.breaking and report.exit_code == 1


def test_renamed_dimension_is_breaking(repo):
    edit(repo, "semantic_models/customers.yml", "{name: acquisition_channel, description:",
         "{name: first_touch_channel, expr: acquisition_channel, description:")
    report = diff_project(repo, "HEAD")
    renamed = change(report, "dimension", "customer.acquisition_channel", "breaking")
    assert renamed.change == "renamed" and "customer.first_touch_channel" in renamed.details[0]
    assert report.exit_code == 1


def test_removed_dimension_and_type_change_are_breaking(repo):
    edit(repo, "semantic_models/products.yml", "    - {name: unit_cost, type: number}\n", "")
    edit(repo, "semantic_models/products.yml", "{name: list_price, type: number}", "{name: list_price, type: categorical}")
    report = diff_project(repo, "HEAD")
    assert change(report, "dimension", "product.unit_cost", "breaking").change == "removed"
    assert "type" in change(report, "dimension", "product.list_price", "breaking").details[0]


def test_filter_change_is_value_changing_with_sql_numbers_dependents(repo, warehouse):
    edit(repo, "metrics/sales.yml", """    measure: order_item.line_revenue
    filter: "order.status = 'completed'\"""", """    measure: order_item.line_revenue
    filter: "order.status IN ('completed', 'returned')\"""")
    report = diff_project(repo, "HEAD", warehouse=warehouse)
    revenue = change(report, "metric", "revenue", "value_changing")
    assert "filter" in revenue.details[0]
    # dependents: the ratio built on it, the view and the saved query that show it
    assert "metric aov" in revenue.dependents
    assert "view sales" in revenue.dependents and "saved query customer_category_spend" in revenue.dependents
    assert revenue.recertify is True  # revenue is certified
    sample = revenue.sample
    assert "-    \"order\".status = 'completed'" in sample["sql_diff"] or "-  \"order\".status = 'completed'" in sample["sql_diff"]
    assert "IN ('completed', 'returned')" in sample["sql_after"]
    moved = [row for row in sample["numbers"] if row["before"] != row["after"]]
    assert moved and all(row["after"] > row["before"] for row in moved)  # returned orders now count
    # aov moves with it, and says why
    aov = change(report, "metric", "aov", "value_changing")
    assert aov.cause == "metric revenue" and aov.recertify
    # order_count does not use revenue: untouched
    assert not [c for c in report.changes if c.name == "order_count"]
    assert report.exit_code == 0


def test_expression_change_moves_every_metric_on_the_measure(repo, warehouse):
    edit(repo, "semantic_models/order_items.yml", "expr: quantity * unit_price - discount_amount",
         "expr: quantity * unit_price")
    report = diff_project(repo, "HEAD", warehouse=warehouse)
    measure = change(report, "measure", "order_item.line_revenue", "value_changing")
    assert "expr" in measure.details[0] and "metric revenue" in measure.dependents
    revenue = change(report, "metric", "revenue", "value_changing")
    assert revenue.cause == "measure order_item.line_revenue"
    assert all(row["after"] >= row["before"] for row in revenue.sample["numbers"])
    assert any(row["after"] > row["before"] for row in revenue.sample["numbers"])


def test_aggregation_change(repo, warehouse):
    edit(repo, "semantic_models/order_items.yml", "{name: units, agg: sum, expr: quantity}",
         "{name: units, agg: max, expr: quantity}")
    report = diff_project(repo, "HEAD", warehouse=warehouse)
    assert "agg" in change(report, "measure", "order_item.units", "value_changing").details[0]
    units = change(report, "metric", "units_sold", "value_changing")
    assert "MAX(" in units.sample["sql_after"] and "SUM(" in units.sample["sql_before"]
    assert all(row["after"] < row["before"] for row in units.sample["numbers"])


def test_join_path_change(repo, warehouse):
    # orders lose their own campaign key: revenue by campaign now goes order -> customer -> campaign
    edit(repo, "semantic_models/orders.yml", "    - {name: campaign, type: foreign, expr: campaign_id}\n", "")
    report = diff_project(repo, "HEAD", warehouse=warehouse, sample_by=("campaign.channel",))
    entity = change(report, "entity", "order.campaign", "value_changing")
    assert "join paths" in entity.details[0]
    revenue = change(report, "metric", "revenue", "value_changing")
    assert "first_campaign_id" in revenue.sample["sql_after"] and "first_campaign_id" not in revenue.sample["sql_before"]
    assert revenue.sample["request"]["dimensions"] == ["campaign.channel"]
    assert any(row["before"] != row["after"] for row in revenue.sample["numbers"])
    assert report.exit_code == 0


def test_time_dimension_change(repo, warehouse):
    edit(repo, "semantic_models/leads.yml", "  default_time: created_at", "  default_time: meeting_at")
    report = diff_project(repo, "HEAD", warehouse=warehouse)
    model = change(report, "model", "lead", "value_changing")
    assert "default_time" in model.details[0]
    leads = change(report, "metric", "lead_count", "value_changing")
    assert '"lead".meeting_at' in leads.sample["sql_after"]
    assert leads.sample["numbers"] != [] and any(r["before"] != r["after"] for r in leads.sample["numbers"])
    assert leads.recertify


def test_description_and_owner_are_metadata_only(repo, warehouse):
    edit(repo, "metrics/marketing.yml", "description: Ad spend per new customer.",
         "description: Ad spend per newly acquired customer.")
    edit(repo, "metrics/marketing.yml", """    owner: marketing-analytics
    tier: certified
    tags: [marketing, finance]
    numerator: ad_spend
    denominator: new_customers""", """    owner: growth-analytics
    tier: certified
    tags: [marketing, finance]
    numerator: ad_spend
    denominator: new_customers""")
    report = diff_project(repo, "HEAD", warehouse=warehouse)
    assert [(c.kind, c.name, c.severity) for c in report.changes] == [("metric", "cac", "metadata_only")]
    cac = report.changes[0]
    assert any(d.startswith("owner:") for d in cac.details) and any(d.startswith("description:") for d in cac.details)
    assert not cac.recertify and cac.sample is None
    assert report.exit_code == 0


def test_base_ref_and_committed_history(repo):
    edit(repo, "metrics/sales.yml", "description: Number of completed orders.", "description: Completed orders.")
    commit(repo, "reword")
    assert diff_project(repo, "HEAD").changes == []
    report = diff_project(repo, "HEAD~1")
    assert [(c.name, c.severity) for c in report.changes] == [("order_count", "metadata_only")]


def test_unknown_ref_is_a_clear_error(repo):
    from canon.compiler.errors import ConfigError

    with pytest.raises(ConfigError, match="git rev-parse"):
        diff_project(repo, "no-such-branch")


def test_cli_exit_codes_and_formats(repo, warehouse):
    runner = CliRunner()
    args = ["diff", "--project", str(repo), "--warehouse", warehouse.url]
    ok = runner.invoke(main, args)
    assert ok.exit_code == 0 and "no changes" in ok.output

    edit(repo, "metrics/sales.yml", """    measure: order.orders
    filter: "order.status = 'completed'\"""", """    measure: order.orders
    filter: "order.status <> 'cancelled'\"""")
    markdown = runner.invoke(main, args + ["--format", "markdown"])
    assert markdown.exit_code == 0, markdown.output
    out = markdown.output
    assert out.startswith("## Canon catalog diff: `HEAD` → working tree")
    assert "✅ No breaking changes" in out and "### Value-changing" in out
    assert "| changed | metric `order_count` |" in out and "```diff" in out
    assert "| metric_time.year | before | after | Δ | Δ % |" in out
    assert "**Needs re-certification:**" in out and "`aov`" in out

    data = json.loads(runner.invoke(main, args + ["--format", "json"]).output)
    assert data["breaking"] is False and data["summary"]["value_changing"] >= 3
    assert {c["name"] for c in data["changes"]} >= {"order_count", "aov", "purchase_frequency"}

    edit(repo, "semantic_models/products.yml", "    - {name: unit_cost, type: number}\n", "")
    broken = runner.invoke(main, args + ["--no-numbers"])
    assert broken.exit_code == 1
    assert "BREAKING" in broken.output and "removed dimension product.unit_cost" in broken.output
    assert "result: BREAKING changes" in broken.output


def test_text_render_lists_sql_diff_and_numbers(repo, warehouse):
    edit(repo, "metrics/marketing.yml", "    measure: lead.meetings\n", "    measure: lead.meetings\n    filter: \"lead.source = 'webinar'\"\n")
    text = render(diff_project(repo, "HEAD", warehouse=warehouse), "text")
    assert "changed metric meeting_count  [needs re-certification]" in text
    assert "SQL diff:" in text and "+  \"lead\".source = 'webinar'" in text.replace("+    ", "+  ")
    assert "numbers before → after:" in text
    assert "dependents: metric lead_to_meeting_rate, view marketing" in text
