"""The shapes of the affinity SQL: each returned value alone, side filters, and mixed levels.

The renderer builds only the counts the requested values read and shares one DISTINCT step between
the antecedent and the consequent when both use the same dimensions; every shape must still give the
independent Counter implementation's numbers (tests/test_affinity.py).
"""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import pytest

from canon.compiler.compile import compile_request
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows
from tests.test_affinity import CATEGORY_PAIR, PRODUCT_PAIR, baskets, counter_rules, rows_of  # noqa: F401

ALONE = {"cross_sell_score": 0, "cross_sell_support": 1, "cross_sell_lift": 2, "cross_sell_pair_orders": 3}


@pytest.mark.parametrize("metric", ALONE)
def test_each_value_alone_matches_counter(catalog, warehouse, baskets, metric):
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=(metric,), dimensions=CATEGORY_PAIR))
    want = {k: (v[ALONE[metric]],) for k, v in counter_rules(baskets.select("category").values()).items()}
    assert_same(got, rows_of(want), keys=2)


def test_lift_with_a_consequent_filter_matches_counter(catalog, warehouse, baskets):
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("cross_sell_lift",), dimensions=PRODUCT_PAIR,
                                                      where=("consequent.category = 'Phones'",)))
    rules = counter_rules(baskets.select("product").values())
    want = {k: (v[2],) for k, v in rules.items() if baskets.category_of[k[1]] == "Phones"}
    assert want
    assert_same(got, rows_of(want), keys=2)


def test_product_by_category_pairs_count_different_items(catalog, warehouse, baskets):
    """Mixed levels: A is a product, B a category, and B may be A's own category when the basket
    holds another product of it."""
    got = canon_rows(catalog, warehouse, QueryRequest(
        metrics=("cross_sell_pair_orders", "cross_sell_lift"),
        dimensions=("antecedent.product_name", "consequent.category")))
    scope = baskets.select("product")
    n = len(scope)
    has_product = Counter(p for items in scope.values() for p in items)
    has_category = Counter(c for items in scope.values() for c in {baskets.category_of[p] for p in items})
    pairs = Counter()
    for items in scope.values():
        pairs.update({(a, baskets.category_of[b]) for a, b in permutations(items, 2)})
    want = {(a, c): (k, (k / has_product[a]) / (has_category[c] / n)) for (a, c), k in pairs.items()}
    assert any(baskets.category_of[a] == c for a, c in want)
    assert_same(got, rows_of(want), keys=2)


def test_confidence_reads_only_the_counts_it_needs(catalog):
    sql = compile_request(catalog, QueryRequest(metrics=("cross_sell_score",), dimensions=PRODUCT_PAIR)).sql
    assert "_canon_consequent_n" not in sql and "_canon_baskets" not in sql
    # one DISTINCT step for both sides, and no item column when pairing product names
    assert sql.count("SELECT DISTINCT") == 1 and '"_item"' not in sql
