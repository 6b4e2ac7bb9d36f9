"""`validate`: broken projects and the exact message for each, `file:line` included.

Every case copies the small project in tests/fixtures/base_project into a temporary folder, breaks one
thing (or a few) and checks the lines `canon validate` would print. The fixture is ours, so its line
numbers are stable; the real catalog is checked separately (it must validate clean).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from canon.compiler.compile import load_catalog
from canon.compiler.errors import CatalogErrors

ROOT = Path(__file__).resolve().parents[1]
BASE = Path(__file__).resolve().parent / "fixtures" / "base_project"

VISIT_MODELS = {
    "semantic_models/leads.yml": """\
semantic_model:
  name: lead
  table: leads
  entities:
    - {name: lead, type: primary, expr: lead_id}
    - {name: customer, type: foreign, expr: converted_customer_id}
""",
    "semantic_models/visits.yml": """\
semantic_model:
  name: visit
  table: visits
  entities:
    - {name: visit, type: primary, expr: visit_id}
    - {name: order, type: foreign, expr: order_id}
    - {name: lead, type: foreign, expr: lead_id}
  measures:
    - {name: visits, agg: count, expr: visit_id}
""",
    "metrics/visits.yml": """\
metrics:
  - name: enterprise_visits
    type: simple
    measure: visit.visits
    filter: "customer.segment = 'enterprise'"
""",
}


def make_project(tmp_path: Path, edits=(), files=None) -> Path:
    """A copy of the base project with `edits` ((file, old, new) text replacements) and extra `files`."""
    project = tmp_path / "project"
    shutil.copytree(BASE, project)
    for rel, old, new in edits:
        path = project / rel
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} must occur once in {rel}"
        path.write_text(text.replace(old, new))
    for rel, text in (files or {}).items():
        (project / rel).write_text(text)
    return project


def problems(project: Path) -> list[str]:
    with pytest.raises(CatalogErrors) as caught:
        load_catalog(project)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.errors)
    return lines


CASES = {
    "malformed_yaml": (
        [("metrics/sales.yml", "    owner: sales\n    tier: certified\n", "    owner: [sales\n    tier: certified\n")],
        None,
        ["metrics/sales.yml:5: malformed YAML: did not find expected ',' or ']' (while parsing a flow sequence "
         "that starts at line 4) — fix the YAML syntax (indentation, quotes, colons)"],
    ),
    "tab_indentation": (
        [("semantic_models/products.yml", "  owner: merchandising\n", "\towner: merchandising\n")],
        None,
        ["semantic_models/products.yml:4: malformed YAML: found a tab character that violates indentation "
         "(while scanning a plain scalar that starts at line 3) — fix the YAML syntax (indentation, quotes, colons)"],
    ),
    "missing_required_field": (
        [("metrics/sales.yml", "    measure: order.orders\n", "")],
        None,
        ["metrics/sales.yml:9: missing required field 'measure' in metric 'order_count' — add `measure:`"],
    ),
    "unknown_field_did_you_mean": (
        [("metrics/sales.yml", "    tier: certified\n", "    teir: certified\n")],
        None,
        ["metrics/sales.yml:5: unknown field 'teir' in metric 'revenue' — did you mean 'tier' or 'filter'?"],
    ),
    "unknown_field_in_dimension": (
        [("semantic_models/products.yml", "    - {name: category}\n", "    - {name: category, typ: categorical}\n")],
        None,
        ["semantic_models/products.yml:9: unknown field 'typ' in dimension 'category' in semantic model 'product' "
         "— did you mean 'type'?"],
    ),
    "duplicate_key": (
        [("metrics/sales.yml", "    owner: sales\n    tier: certified\n", "    owner: sales\n    owner: finance\n")],
        None,
        ["metrics/sales.yml:5: duplicate key 'owner' — each key may appear once in a mapping; remove or rename one"],
    ),
    "unknown_metric_type": (
        [("metrics/sales.yml", "    type: ratio\n", "    type: ration\n")],
        None,
        ["metrics/sales.yml:15: metric 'aov': unknown type 'ration' — valid types: "
         + ", ".join(__import__("canon.compiler.model", fromlist=["METRIC_TYPES"]).METRIC_TYPES)],
    ),
    "bad_literal": (
        [("semantic_models/orders.yml", "agg: sum, expr: shipping_amount", "agg: total, expr: shipping_amount")],
        None,
        None,  # checked in its own test: the list of aggregations grows with new metric types
    ),
    "duplicate_metric_name": (
        [("metrics/customers.yml", "  - name: customer_count\n", "  - name: revenue\n")],
        None,
        ["metrics/sales.yml:2: metric 'revenue' is defined twice — first defined at metrics/customers.yml:2; rename one"],
    ),
    "unknown_measure": (
        [("metrics/sales.yml", "measure: order_item.line_revenue", "measure: order_item.line_revenu")],
        None,
        ["metrics/sales.yml:6: metric 'revenue': unknown measure 'order_item.line_revenu' — "
         "did you mean 'order_item.line_revenue'?"],
    ),
    "unknown_dimension_in_filter": (
        [("metrics/sales.yml", "    measure: order.orders\n    filter: \"order.status = 'completed'\"",
          "    measure: order.orders\n    filter: \"order.statuz = 'completed'\"")],
        None,
        ["metrics/sales.yml:13: metric 'order_count' filter: unknown dimension 'order.statuz': model 'order' has no "
         "dimension 'statuz' — did you mean 'order.status'? (dimensions of order: ordered_at, status)"],
    ),
    "forbidden_filter_in_definition": (
        [("metrics/sales.yml", "    measure: order.orders\n    filter: \"order.status = 'completed'\"",
          "    measure: order.orders\n    filter: \"order.status IN (SELECT status FROM orders)\"")],
        None,
        ["metrics/sales.yml:13: metric 'order_count' filter: IN takes a list of literal values, not a subquery"],
    ),
    "unknown_input_metric": (
        [("metrics/sales.yml", "    denominator: order_count\n", "    denominator: order_cnt\n")],
        None,
        ["metrics/sales.yml:19: metric 'aov' uses unknown metric 'order_cnt' — "
         "did you mean 'order_count' or 'customer_count'?"],
    ),
    "cycle": (
        [],
        {"metrics/loops.yml": """\
metrics:
  - name: loop_a
    type: derived
    expr: loop_b + 1
    metrics: [loop_b]
  - name: loop_b
    type: ratio
    numerator: loop_a
    denominator: order_count
"""},
        ["metrics/loops.yml:2: metrics form a cycle: loop_a -> loop_b -> loop_a — "
         "a metric may not depend on itself, directly or through others"],
    ),
    "foreign_entity_without_primary": (
        [("semantic_models/orders.yml", "    - {name: customer, type: foreign, expr: customer_id}\n",
          "    - {name: customer, type: foreign, expr: customer_id}\n    - {name: store, type: foreign, expr: store_id}\n")],
        None,
        ["semantic_models/orders.yml:9: entity 'store' of model 'order' is not the primary entity of any model — "
         "did you mean 'customer' or 'order'? (or add a model with it as primary)"],
    ),
    "invalid_metric_name": (
        [("metrics/customers.yml", "  - name: customer_count\n", "  - name: Customer-Count\n")],
        None,
        ["metrics/customers.yml:2: name of metric 'Customer-Count': 'Customer-Count' is not a valid name — "
         "names use lowercase letters, digits and underscores and start with a letter"],
    ),
    "table_and_sql": (
        [("semantic_models/products.yml", "  table: products\n", "  table: products\n  sql: SELECT * FROM products\n")],
        None,
        ["semantic_models/products.yml:2: semantic model 'product': give exactly one of `table` or `sql`"],
    ),
    "unparsable_measure": (
        [("semantic_models/orders.yml", "expr: shipping_amount}", "expr: 'shipping_amount +'}")],
        None,
        None,  # sqlglot's own wording follows the hint; checked by prefix below
    ),
    "not_a_mapping": (
        [],
        {"metrics/customers.yml": "- customer_count\n- revenue\n"},
        ["metrics/customers.yml:1: the file must be a mapping — start with `metrics:`, `saved_queries:` or `views:`"],
    ),
    "non_scalar_key": (
        [],
        {"metrics/customers.yml": "metrics:\n  - name: customer_count\n    [type]: simple\n"},
        ["metrics/customers.yml:3: a mapping key must be a plain value — write keys as plain names, e.g. `name:`"],
    ),
}


@pytest.mark.parametrize("case", [c for c, v in CASES.items() if v[2] is not None])
def test_broken_project_message(tmp_path, case):
    edits, files, expected = CASES[case]
    assert problems(make_project(tmp_path, edits, files)) == expected


def test_base_fixture_is_valid():
    catalog = load_catalog(BASE)
    assert set(catalog.metrics) == {"revenue", "order_count", "aov", "cross_sell_score", "customer_count"}


def test_bad_aggregation_names_choices(tmp_path):
    edits, files, _ = CASES["bad_literal"]
    [line] = problems(make_project(tmp_path, edits, files))
    assert line.startswith("semantic_models/orders.yml:14: agg of measure 'shipping' in semantic model 'order': "
                           "'total' is not allowed — expected ")
    assert "'sum'" in line and "'count_distinct'" in line


def test_unparsable_measure_expression(tmp_path):
    edits, files, _ = CASES["unparsable_measure"]
    [line] = problems(make_project(tmp_path, edits, files))
    assert line.startswith("semantic_models/orders.yml:14: measure shipping: cannot parse 'shipping_amount +' — "
                           "write a SQL expression over the model's columns")


def test_ambiguous_join_path_names_both_candidates(tmp_path):
    [line] = problems(make_project(tmp_path, files=VISIT_MODELS))
    assert line.startswith("metrics/visits.yml:5: metric 'enterprise_visits' filter: "
                           "ambiguous join path from visit to customer: ")
    assert "order" in line and "lead" in line
    # the paths as references to write (compiler/roles.py), then the other ways out
    assert " — name the path in the reference: visit.order.customer.<dimension> or visit.lead.customer.<dimension>" in line \
        or " — name the path in the reference: visit.lead.customer.<dimension> or visit.order.customer.<dimension>" in line
    assert line.endswith("; or give the entities distinct names, or remove one of the links")


def test_all_problems_reported_at_once(tmp_path):
    """Three independent mistakes in three files: three lines, sorted by file and line, and no echo
    of the dropped definitions (the broken product model is not reported again by its users)."""
    project = make_project(tmp_path, [
        ("metrics/sales.yml", "measure: order_item.line_revenue", "measure: order_item.line_revenu"),
        ("metrics/customers.yml", "    measure: customer.customers\n", "    measure: customer.customers\n    lable: x\n"),
        ("semantic_models/products.yml", "    - {name: category}\n", "    - {name: category, typ: categorical}\n"),
    ])
    assert problems(project) == [
        "metrics/customers.yml:6: unknown field 'lable' in metric 'customer_count' — did you mean 'label'?",
        "metrics/sales.yml:6: metric 'revenue': unknown measure 'order_item.line_revenu' — "
        "did you mean 'order_item.line_revenue'?",
        "semantic_models/products.yml:9: unknown field 'typ' in dimension 'category' in semantic model 'product' "
        "— did you mean 'type'?",
    ]


def test_a_broken_metric_does_not_hide_the_others(tmp_path):
    """One bad metric in a file: the file's other metrics still load and are still checked."""
    project = make_project(tmp_path, [
        ("metrics/sales.yml", "    type: ratio\n", "    type: ration\n"),
        ("metrics/sales.yml", "basket: order\n", "basket: ordr\n"),
    ])
    assert problems(project) == [
        "metrics/sales.yml:15: metric 'aov': unknown type 'ration' — valid types: "
        + ", ".join(__import__("canon.compiler.model", fromlist=["METRIC_TYPES"]).METRIC_TYPES),
        "metrics/sales.yml:21: metric 'cross_sell_score': unknown basket entity 'ordr' — did you mean 'order'?",
    ]


def test_error_objects_carry_code_and_location(tmp_path):
    project = make_project(tmp_path, [("metrics/sales.yml", "measure: order_item.line_revenue",
                                       "measure: order_item.line_revenu")])
    with pytest.raises(CatalogErrors) as caught:
        load_catalog(project)
    [error] = caught.value.errors
    assert error.location.file == "metrics/sales.yml" and error.location.line == 6
    assert error.to_dict()["location"] == "metrics/sales.yml:6"
    assert caught.value.to_dict()["code"] == "invalid_catalog"


def test_real_project_validates():
    catalog = load_catalog(ROOT)
    assert "revenue" in catalog.metrics and "cross_sell_score" in catalog.metrics


# --- the CLI --------------------------------------------------------------------------------------


def canon(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "canon.server.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow  # runs the canon CLI as a subprocess
def test_cli_validate_ok_on_real_project():
    result = canon("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ") and "semantic models" in result.stdout and "metrics" in result.stdout
    assert result.stderr == ""


@pytest.mark.slow  # runs the canon CLI as a subprocess
def test_cli_validate_reports_every_problem(tmp_path):
    project = make_project(tmp_path, [
        ("metrics/sales.yml", "measure: order_item.line_revenue", "measure: order_item.line_revenu"),
        ("metrics/sales.yml", "    denominator: order_count\n", "    denominator: order_cnt\n"),
        ("semantic_models/orders.yml", "    - {name: customer, type: foreign, expr: customer_id}\n",
         "    - {name: customer, type: foreign, expr: customer_id}\n    - {name: store, type: foreign, expr: store_id}\n"),
    ])
    result = canon("validate", "--project", str(project))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert all(line.startswith("error: ") for line in lines)
    assert lines[0].startswith("error: metrics/sales.yml:6: metric 'revenue': unknown measure")
    assert lines[1].startswith("error: metrics/sales.yml:19: metric 'aov' uses unknown metric 'order_cnt'")
    assert lines[2].startswith("error: semantic_models/orders.yml:9: entity 'store' of model 'order'")
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # runs the canon CLI as a subprocess
def test_cli_validate_not_a_project(tmp_path):
    result = canon("validate", "--project", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "is not a Canon project" in result.stderr
    assert "semantic_models/ and metrics/" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cumulative_window_over_a_per_measure_is_refused(tmp_path):
    # a window would need the customers counted again per window; it compiled to SQL naming `value`
    from tests.support.project import copy_project

    project = copy_project(tmp_path / "demo")
    with (project / "metrics" / "time.yml").open("a") as metrics:
        metrics.write("  - {name: repeat_buyers_7d, type: cumulative, metric: repeat_buyer_count, window: 7 days}\n")
    [line] = [p for p in problems(project) if "repeat_buyers_7d" in p]
    assert "counts per customer first" in line and "order.repeat_buyers" in line and line.startswith("metrics/time.yml:")
