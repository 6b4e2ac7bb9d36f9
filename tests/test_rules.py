"""Project rules from canon.yml, enforced by `canon validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.compiler.errors import ConfigError
from canon.compiler.rules import DEFAULT_RULES, Rules, check_rules, rules_from_config
from canon.server.cli import main
from tests.support.project import copy_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path)


def edit(project: Path, file: str, old: str, new: str) -> None:
    path = project / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


AOV_META = """    label: Average order value
    description: Revenue per completed order.
    owner: sales-analytics
    tier: certified"""


def test_the_demo_follows_its_rules():
    catalog = load_catalog(ROOT)
    assert check_rules(catalog, DEFAULT_RULES) == []
    from canon.server.project import load_config

    assert check_rules(catalog, rules_from_config(load_config(ROOT))) == []


def test_certified_needs_owner_and_description(project):
    edit(project, "metrics/sales.yml", AOV_META, "    label: Average order value\n    tier: certified")
    problems = check_rules(load_catalog(project), DEFAULT_RULES)
    messages = [p.message for p in problems]
    assert "metric 'aov' is certified but has no owner" in messages
    assert "metric 'aov' is certified but has no description" in messages
    problem = next(p for p in problems if p.subject == "metric:aov")
    assert str(problem.location).startswith("metrics/sales.yml:")
    assert "add `owner:`" in str(next(p for p in problems if p.message.endswith("no owner")))


def test_certified_may_not_depend_on_draft(project):
    edit(project, "metrics/sales.yml", """    description: Number of completed orders.
    owner: sales-analytics
    tier: certified""", """    description: Number of completed orders.
    owner: sales-analytics
    tier: draft""")
    problems = check_rules(load_catalog(project), DEFAULT_RULES)
    found = {(p.subject, p.message) for p in problems if p.rule == "certified_may_not_depend_on"}
    assert ("metric:aov", "certified metric 'aov' depends on draft metric 'order_count'") in found
    assert ("metric:purchase_frequency", "certified metric 'purchase_frequency' depends on draft metric 'order_count'") in found
    assert ("view:sales", "certified view 'sales' depends on draft metric 'order_count'") in found
    # switched off: no problem
    assert not check_rules(load_catalog(project), Rules(certified_may_not_depend_on=()))


def test_certified_metric_on_a_draft_model(project):
    edit(project, "semantic_models/leads.yml", "  owner: marketing-analytics\n  tier: certified",
         "  owner: marketing-analytics\n  tier: draft")
    problems = check_rules(load_catalog(project), DEFAULT_RULES)
    assert any(p.message == "certified metric 'lead_count' depends on draft model 'lead'" for p in problems)


def test_deprecated_needs_replaced_by_and_a_real_successor(project):
    edit(project, "metrics/sales.yml", AOV_META, AOV_META.replace("certified", "deprecated"))
    problems = check_rules(load_catalog(project), DEFAULT_RULES)
    assert [p.message for p in problems if p.subject == "metric:aov"] == ["metric 'aov' is deprecated but has no replaced_by"]
    edit(project, "metrics/sales.yml", "    tier: deprecated", "    tier: deprecated\n    replaced_by: aov_net\n    sunset: next year")
    messages = [p.message for p in check_rules(load_catalog(project), DEFAULT_RULES) if p.subject == "metric:aov"]
    assert "metric 'aov' is replaced_by unknown metric 'aov_net'" in messages
    assert "metric 'aov': sunset 'next year' is not a date" in messages


def test_owner_allow_list_and_bad_config(project):
    catalog = load_catalog(project)
    problems = check_rules(catalog, Rules(owners=("sales-analytics",)))
    assert any(p.message == "metric 'cac' has owner 'marketing-analytics', who is not a known owner" for p in problems)
    with pytest.raises(ConfigError, match="rules.requires"):
        rules_from_config({"rules": {"requires": {}}})
    assert rules_from_config({}) == DEFAULT_RULES
    assert check_rules(catalog, rules_from_config({"rules": {}})) == []


def test_canon_validate_applies_the_rules(project):
    runner = CliRunner()
    assert runner.invoke(main, ["validate", "--project", str(project)]).exit_code == 0
    edit(project, "metrics/sales.yml", AOV_META, "    label: Average order value\n    tier: certified")
    result = runner.invoke(main, ["validate", "--project", str(project)])
    assert result.exit_code == 2
    assert "metrics/sales.yml:" in result.output and "metric 'aov' is certified but has no owner" in result.output
    # severity warning: reported, not failing
    text = (project / "canon.yml").read_text() if (project / "canon.yml").is_file() else ""
    (project / "canon.yml").write_text(text.split("rules:")[0] + "rules:\n  require: {certified: [owner]}\n  severity: warning\n")
    result = runner.invoke(main, ["validate", "--project", str(project)])
    assert result.exit_code == 0 and "warning: " in result.output
