"""Query-time errors: through `compile_request` and through the `canon` CLI.

Each message names the offender and, where it helps, the valid choices; the CLI prints one
`error: ...` line, exits non-zero and never shows a traceback.
"""

from __future__ import annotations

import pytest

from canon.compiler.compile import DIALECTS, compile_request, load_catalog
from canon.compiler.errors import CanonError, FilterError, QueryError, UnknownNameError, UnsupportedError
from canon.compiler.date_parts import PARTS
from canon.compiler.model import GRAINS
from canon.compiler.request import QueryRequest
from tests.support.cli import ROOT, assert_clean_failure, canon, demo_warehouse

PAIR = ("antecedent.product_name", "consequent.product_name")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


def error_of(catalog, dialect="duckdb", **request) -> CanonError:
    with pytest.raises(CanonError) as caught:
        compile_request(catalog, QueryRequest(**request), dialect)
    return caught.value


# (request, error class, exact message or None, fragments the text must hold)
CASES = {
    "unknown_metric_close": (
        dict(metrics=["revenu"]), UnknownNameError, None,
        ["unknown metric 'revenu' — did you mean 'revenue'"]),
    "unknown_metric_far": (
        dict(metrics=["xyzzy"]), UnknownNameError, None,
        ["unknown metric 'xyzzy'", "valid choices: ", "ad_spend", "aov"]),
    "no_metric": (
        dict(metrics=[]), QueryError, None, ["no metric requested", "valid choices: "]),
    "metric_twice": (
        dict(metrics=["revenue", "revenue"]), QueryError,
        "metric 'revenue' is requested twice — ask for each once", []),
    "unknown_dimension_close": (
        dict(metrics=["revenue"], dimensions=["product.categry"]), UnknownNameError,
        "unknown dimension 'product.categry': model 'product' has no dimension 'categry' — did you mean "
        "'product.category' or 'product.subcategory' or 'product.tier'? (dimensions of product: brand, category, "
        "list_price, product_id, product_name, subcategory, tier, unit_cost)", []),
    "unknown_dimension_model": (
        dict(metrics=["revenue"], dimensions=["prodct.category"]), UnknownNameError, None,
        ["unknown dimension 'prodct.category': no model or entity 'prodct'", "did you mean 'product.category'"]),
    "bare_dimension": (
        dict(metrics=["revenue"], dimensions=["category"]), UnknownNameError,
        "unknown dimension 'category' — write <model>.<dimension>[.<grain>] — did you mean 'product.category'?", []),
    "dimension_twice": (
        dict(metrics=["revenue"], dimensions=["product.category", "product.category"]), QueryError,
        "dimension 'product.category' is requested twice — ask for each once", []),
    "dimension_fans_out": (
        dict(metrics=["ad_spend"], dimensions=["customer.segment"]), QueryError, None,
        ["metric ad_spend by customer.segment", "ad_spend"]),
    "grain_on_categorical": (
        dict(metrics=["revenue"], dimensions=["product.category.month"]), QueryError,
        "'product.category.month': only time dimensions take a grain, and product.category is categorical "
        "— write product.category", []),
    "unknown_grain": (
        dict(metrics=["revenue"], dimensions=["order.ordered_at.fortnight"]), UnknownNameError,
        f"unknown time grain or date part 'fortnight' in 'order.ordered_at.fortnight' — grains: {', '.join(GRAINS)}; "
        f"date parts: {', '.join(PARTS)}",
        []),
    "unknown_grain_metric_time": (
        dict(metrics=["revenue"], dimensions=["metric_time.montth"]), UnknownNameError,
        f"unknown time grain or date part 'montth' in 'metric_time.montth' — did you mean 'month'? grains: "
        f"{', '.join(GRAINS)}; date parts: {', '.join(PARTS)}", []),
    "metric_time_too_deep": (
        dict(metrics=["revenue"], dimensions=["metric_time.month.day"]), UnknownNameError, None,
        ["unknown dimension 'metric_time.month.day'", "metric_time.<grain>", "month"]),
    "affinity_without_pair": (
        dict(metrics=["cross_sell_score"]), QueryError, None,
        ["cross_sell_score", "antecedent.<dimension>", "consequent.<dimension>", "product_name"]),
    "affinity_one_side": (
        dict(metrics=["cross_sell_score"], dimensions=["antecedent.product_name"]), QueryError, None,
        ["cross_sell_score", "consequent.<dimension>"]),
    "affinity_unknown_side_dimension": (
        dict(metrics=["cross_sell_score"], dimensions=["antecedent.categry", "consequent.category"]),
        UnknownNameError,
        "unknown dimension 'antecedent.categry': the items ('product') have no dimension 'categry' — did you mean "
        "'antecedent.category' or 'antecedent.subcategory' or 'antecedent.tier'?", []),
    "affinity_mixed": (
        dict(metrics=["cross_sell_score", "revenue"], dimensions=PAIR), QueryError,
        "affinity metrics (cross_sell_score) are computed per product pair and cannot be combined with revenue "
        "in one query — query them separately", []),
    "side_without_affinity": (
        dict(metrics=["revenue"], dimensions=["antecedent.product_name"]), QueryError,
        "'antecedent.product_name' names a side of a product pair; it applies only to affinity metrics — "
        "query an affinity metric such as cross_sell_score with it", []),
    "order_not_requested": (
        dict(metrics=["revenue"], order=["order_count"]), UnknownNameError,
        "order: 'order_count' is not among the requested metrics and dimensions — valid choices: revenue", []),
    "order_typo": (
        dict(metrics=["revenue"], dimensions=["product.category"], order=["-product.categry"]), UnknownNameError,
        "order: 'product.categry' is not among the requested metrics and dimensions — "
        "did you mean 'product.category'?", []),
    "order_empty": (
        dict(metrics=["revenue"], order=["-"]), QueryError, None, ["order: empty field"]),
    "limit_zero": (
        dict(metrics=["revenue"], limit=0), QueryError, "limit: 0 must be a whole number of at least 1", []),
    "limit_negative": (
        dict(metrics=["revenue"], limit=-5), QueryError, "limit: -5 must be a whole number of at least 1", []),
    "limit_bool": (
        dict(metrics=["revenue"], limit=True), QueryError, None, ["limit: True"]),
    "limit_huge": (
        dict(metrics=["revenue"], limit=10**12), QueryError,
        "limit: 1000000000000 is above the maximum of 1,000,000 — narrow the query with filters or ask for "
        "fewer rows", []),
    "bad_start": (
        dict(metrics=["revenue"], start="2024-13-45"), QueryError,
        "start: '2024-13-45' is not a date or timestamp — write an ISO date such as 2025-01-31 or a timestamp "
        "such as 2025-01-31T12:00:00", []),
    "bad_end": (
        dict(metrics=["revenue"], end="yesterday"), QueryError, None, ["end: 'yesterday' is not a date"]),
    "filter_unknown_dimension": (
        dict(metrics=["revenue"], where=["product.categry = 'Coffee'"]), UnknownNameError, None,
        ["unknown dimension 'product.categry'", "did you mean 'product.category'"]),
    "filter_subquery": (
        dict(metrics=["revenue"], where=["product.category IN (SELECT category FROM products)"]), FilterError,
        "where: IN takes a list of literal values, not a subquery", []),
    "second_filter_named": (
        dict(metrics=["revenue"], where=["product.category = 'Coffee'", "read_csv('x') = 1"]), FilterError,
        None, ["where[1]: ", "READ_CSV('x')", "is not allowed in a filter"]),
}


@pytest.mark.parametrize("case", CASES)
def test_query_error(catalog, case):
    request, kind, exact, fragments = CASES[case]
    error = error_of(catalog, **request)
    assert isinstance(error, kind), f"{type(error).__name__}: {error}"
    text = str(error)
    if exact is not None:
        assert text == exact
    for fragment in fragments:
        assert fragment in text, text
    assert "\n" not in text  # one line per problem
    assert error.to_dict()["code"] == error.code


def test_unknown_dialect(catalog):
    error = error_of(catalog, "oracle", metrics=["revenue"])
    assert isinstance(error, UnsupportedError)
    assert str(error) == "unknown dialect 'oracle' — valid choices: " + ", ".join(sorted(DIALECTS))
    assert str(error_of(catalog, "postgress", metrics=["revenue"])) == \
        "unknown dialect 'postgress' — did you mean 'postgres'?"


def test_errors_are_raised_before_any_sql(catalog):
    """The request is checked whole: a bad order never yields SQL, even with good metrics."""
    with pytest.raises(UnknownNameError):
        compile_request(catalog, QueryRequest(metrics=["revenue", "order_count"], order=["aov"]))


# --- the same through the CLI ------------------------------------------------------------------

CLI_CASES = {
    "unknown_metric": (["query", "-m", "revenu"], ["unknown metric 'revenu' — did you mean 'revenue'"]),
    "unknown_dimension": (["query", "-m", "revenue", "--by", "product.categry"],
                          ["unknown dimension 'product.categry'", "did you mean 'product.category'",
                           "dimensions of product: "]),
    "unreachable_dimension": (["query", "-m", "ad_spend", "--by", "customer.segment"],
                              ["metric ad_spend by customer.segment"]),
    "grain_on_categorical": (["query", "-m", "revenue", "--by", "product.category.month"],
                             ["only time dimensions take a grain"]),
    "unknown_grain": (["query", "-m", "revenue", "--by", "metric_time.fortnight"],
                      ["unknown time grain or date part 'fortnight'", "grains: " + ", ".join(GRAINS), "dow"]),
    "affinity_without_pair": (["query", "-m", "cross_sell_score"], ["antecedent.<dimension>"]),
    "affinity_mixed": (["query", "-m", "cross_sell_score", "-m", "revenue", "--by", PAIR[0], "--by", PAIR[1]],
                       ["cannot be combined with revenue"]),
    "order_not_requested": (["query", "-m", "revenue", "--order", "-order_count"],
                            ["order: 'order_count' is not among the requested metrics"]),
    "limit_zero": (["query", "-m", "revenue", "--limit", "0"], ["limit: 0 must be a whole number of at least 1"]),
    "limit_negative": (["query", "-m", "revenue", "--limit", "-3"], ["limit: -3"]),
    "limit_huge": (["query", "-m", "revenue", "--limit", "99999999999"], ["above this server's row limit of 100,000"]),
    "bad_start": (["query", "-m", "revenue", "--start", "2024-02-30"], ["start: '2024-02-30' is not a date"]),
    "hostile_filter": (["query", "-m", "revenue", "--where", "1=1; DROP TABLE orders"],
                       ["is not a boolean expression over dimensions"]),
    "unknown_dialect": (["compile", "-m", "revenue", "--dialect", "oracle"],
                        ["unknown dialect 'oracle' — valid choices: bigquery, clickhouse, duckdb"]),
    "compile_unknown_metric": (["compile", "-m", "revnue", "--dialect", "postgres"], ["unknown metric 'revnue'"]),
}


@pytest.mark.slow  # runs the canon CLI as a subprocess
@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_error(case):
    args, fragments = CLI_CASES[case]
    result = canon(*args, warehouse=demo_warehouse())
    messages = assert_clean_failure(result)
    assert len(messages) == 1, messages
    for fragment in fragments:
        assert fragment in messages[0], messages[0]
    assert result.stdout == ""


@pytest.mark.slow  # runs the canon CLI as a subprocess
def test_cli_usage_errors_are_not_tracebacks():
    for args in (["query", "-m", "revenue", "--limit", "abc"], ["query", "-m", "revenue", "--format", "xml"],
                 ["query"], ["compile", "--dialect", "duckdb"]):
        result = canon(*args, warehouse=demo_warehouse())
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Error:" in result.stderr  # click names the bad option


@pytest.mark.slow  # runs the canon CLI as a subprocess
def test_cli_bad_project(tmp_path):
    result = canon("query", "-m", "revenue", "--project", str(tmp_path / "nowhere"), warehouse=demo_warehouse())
    [message] = assert_clean_failure(result)
    assert "is not a Canon project" in message
