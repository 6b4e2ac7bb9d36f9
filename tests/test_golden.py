"""Golden SQL: representative requests compiled for every dialect, one file per case and dialect
(tests/golden/<case>/<dialect>.sql), reviewed in the diff.

Rewrite them with `CANON_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

from canon.compiler.compile import DIALECTS, compile_request, load_catalog
from canon.compiler.request import QueryRequest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("CANON_UPDATE_GOLDEN") == "1"

CASES = {
    # one fact, a time grain
    "revenue_by_month": QueryRequest(metrics=["revenue"], dimensions=["metric_time.month"]),
    # a ratio over two measures of different grains, a dimension two joins away, a user filter
    "aov_by_country_filtered": QueryRequest(
        metrics=["aov"], dimensions=["customer.country_code"],
        where=["customer.segment IN ('consumer', 'small_business')"], order=["-aov"], limit=10),
    # two facts on the shared time axis
    "revenue_and_ad_spend_by_month": QueryRequest(
        metrics=["revenue", "ad_spend"], dimensions=["metric_time.month"],
        start="2024-01-01", end="2024-12-31"),
    # an order-level measure grouped by a line-level dimension: must not fan out
    "shipping_by_category": QueryRequest(metrics=["shipping_total"], dimensions=["product.category"]),
    # association rules per product pair
    "cross_sell_by_product_pair": QueryRequest(
        metrics=["cross_sell_score"], dimensions=["antecedent.product_name", "consequent.product_name"],
        order=["-cross_sell_score"], limit=20),
    # spend over acquisitions, both reaching the campaign
    "cac_by_channel": QueryRequest(metrics=["cac"], dimensions=["campaign.channel"]),
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CASES)
def test_golden_sql(catalog, case, dialect):
    sql = compile_request(catalog, CASES[case], dialect, pretty=True).sql.strip() + "\n"
    path = GOLDEN / case / f"{dialect}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    assert path.is_file(), f"no golden file {path}; run with CANON_UPDATE_GOLDEN=1 to write it"
    assert sql == path.read_text(), (
        f"{case} ({dialect}) differs from {path.relative_to(ROOT)}; if the change is intended, rewrite with "
        "CANON_UPDATE_GOLDEN=1 and review the diff")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CASES)
def test_golden_sql_parses_back(case, dialect):
    """Every golden file is one statement its own dialect can read."""
    path = GOLDEN / case / f"{dialect}.sql"
    assert path.is_file(), f"{path} is missing: run with CANON_UPDATE_GOLDEN=1"
    tree = sqlglot.parse_one(path.read_text(), read=dialect)
    assert isinstance(tree, sqlglot.exp.Query)
    assert not list(tree.find_all(sqlglot.exp.Anonymous)), "a function sqlglot does not know"


def test_no_stale_golden_files():
    expected = {(case, dialect) for case in CASES for dialect in DIALECTS}
    found = {(p.parent.name, p.stem) for p in GOLDEN.glob("*/*.sql")}
    assert found <= expected, f"golden files without a case: {sorted(found - expected)}"
