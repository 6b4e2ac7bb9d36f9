"""Affinity (cross-sell) metrics against independent association-rule implementations.

Baskets are built in Python from the raw tables (completed orders -> set of product names /
categories); the rules are then computed twice, with a plain Counter and with mlxtend's
apriori + association_rules, and Canon must agree with both on every pair:

    support(A→B) = n(A∧B) / N,  confidence(A→B) = n(A∧B) / n(A),  lift(A→B) = confidence / (n(B) / N)

N counts only the baskets in scope (after time range and basket filters), A ≠ B always.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from itertools import permutations

import numpy as np
import pandas as pd
import pytest

from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, sql_rows

AFFINITY = ("cross_sell_score", "cross_sell_support", "cross_sell_lift", "cross_sell_pair_orders")
PRODUCT_PAIR = ("antecedent.product_name", "consequent.product_name")
CATEGORY_PAIR = ("antecedent.category", "consequent.category")
MIN_SUPPORT = 0.002  # for mlxtend's apriori; the Counter implementation has no threshold


# --- baskets and the two independent implementations -----------------------------------------------


class Baskets:
    """Completed orders with their item sets and basket-level attributes."""

    def __init__(self, rows):
        self.products: dict[int, set] = defaultdict(set)
        self.categories: dict[int, set] = defaultdict(set)
        self.attrs: dict[int, tuple] = {}
        self.category_of: dict[str, str] = {}
        for order_id, product, category, segment, ordered_at in rows:
            self.products[order_id].add(product)
            self.categories[order_id].add(category)
            self.attrs[order_id] = (segment, ordered_at if isinstance(ordered_at, datetime)
                                    else datetime.fromisoformat(str(ordered_at)))
            self.category_of[product] = category

    def select(self, level: str, *, segment=None, start=None, end=None) -> dict[int, frozenset]:
        items = self.products if level == "product" else self.categories
        out = {}
        for order_id, (seg, at) in self.attrs.items():
            if segment is not None and seg != segment:
                continue
            if start is not None and at < start or end is not None and at >= end:
                continue
            out[order_id] = frozenset(items[order_id])
        return out


def counter_rules(baskets) -> dict[tuple, tuple]:
    """(A, B) -> (confidence, support, lift, pair_count) for every pair seen together, A ≠ B."""
    baskets = list(baskets)
    n = len(baskets)
    single = Counter(item for b in baskets for item in b)
    pairs = Counter(pair for b in baskets for pair in permutations(b, 2))
    return {(a, b): (k / single[a], k / n, (k / single[a]) / (single[b] / n), k) for (a, b), k in pairs.items()}


def mlxtend_rules(baskets, min_support: float = MIN_SUPPORT) -> dict[tuple, tuple]:
    from mlxtend.frequent_patterns import apriori, association_rules  # imported here: collection stays fast

    baskets = [sorted(b) for b in baskets]
    # one-hot baskets, as mlxtend's TransactionEncoder builds them (sorted items as columns, a bool per
    # basket and item), without mlxtend.preprocessing, which loads scikit-learn and SciPy (~3 s)
    columns = sorted({item for basket in baskets for item in basket})
    position = {item: i for i, item in enumerate(columns)}
    onehot = np.zeros((len(baskets), len(columns)), dtype=bool)
    for row, basket in enumerate(baskets):
        onehot[row, [position[item] for item in basket]] = True
    frame = pd.DataFrame(onehot, columns=columns)
    frequent = apriori(frame, min_support=min_support, use_colnames=True, max_len=2)
    rules = association_rules(frequent, num_itemsets=len(baskets), metric="confidence", min_threshold=0.0)
    out = {}
    for ante, cons, support, confidence, lift in zip(rules["antecedents"], rules["consequents"], rules["support"],
                                                     rules["confidence"], rules["lift"]):
        if len(ante) == 1 and len(cons) == 1:
            (a,), (b,) = ante, cons
            out[(a, b)] = (confidence, support, lift, round(support * len(baskets)))
    return out


def rows_of(rules: dict[tuple, tuple], prefix=()) -> list[list]:
    return [[*prefix, a, b, *values] for (a, b), values in rules.items()]


@pytest.fixture(scope="module")
def baskets(warehouse) -> Baskets:
    return Baskets(sql_rows(warehouse, """
        SELECT DISTINCT o.order_id, p.product_name, p.category, c.segment, o.ordered_at
        FROM orders AS o
        JOIN order_items AS oi ON oi.order_id = o.order_id
        JOIN products AS p ON p.product_id = oi.product_id
        JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE o.status = 'completed'"""))


def canon(catalog, warehouse, dims, **kw):
    return canon_rows(catalog, warehouse, QueryRequest(metrics=AFFINITY, dimensions=dims, **kw))


def keyed(rows, keys=2):
    return {tuple(r[:keys]): r[keys:] for r in rows}


# --- whole catalog -----------------------------------------------------------------------------------


@pytest.mark.parametrize("level, dims", [("product", PRODUCT_PAIR), ("category", CATEGORY_PAIR)])
def test_pairs_match_counter_implementation(catalog, warehouse, baskets, level, dims):
    got = canon(catalog, warehouse, dims)
    want = counter_rules(baskets.select(level).values())
    assert len(want) > (1000 if level == "product" else 50)
    assert all(a != b for a, b, *_ in got), "an item paired with itself"
    assert_same(got, rows_of(want), keys=2)


@pytest.mark.parametrize("level, dims", [("product", PRODUCT_PAIR), ("category", CATEGORY_PAIR)])
def test_pairs_match_mlxtend(catalog, warehouse, baskets, level, dims):
    got = keyed(canon(catalog, warehouse, dims))
    want = mlxtend_rules(baskets.select(level).values())
    assert len(want) > 20
    missing = set(want) - set(got)
    assert not missing, f"frequent pairs Canon does not return: {sorted(missing)[:10]}"
    assert_same([[*k, *got[k]] for k in want], rows_of(want), keys=2)
    # and every Canon pair at or above the threshold is one mlxtend found
    n = len(baskets.select(level))
    above = {k for k, v in got.items() if v[3] / n >= MIN_SUPPORT}
    assert above == set(want)


def test_n_counts_baskets_in_scope(catalog, warehouse, baskets):
    """support / pair_count = 1 / N with N = completed orders (that hold any item)."""
    got = canon(catalog, warehouse, CATEGORY_PAIR)
    n = len(baskets.select("category"))
    completed = sql_rows(warehouse, "SELECT COUNT(*) FROM orders WHERE status = 'completed'")[0][0]
    assert n == completed
    for _, _, _, support, _, pair_orders in got:
        assert support == pytest.approx(pair_orders / n, rel=1e-12)


def test_known_bundles_have_high_lift(catalog, warehouse, baskets):
    got = keyed(canon(catalog, warehouse, CATEGORY_PAIR))
    lifts = sorted(((v[2], k) for k, v in got.items()), reverse=True)
    assert lifts[0][0] > 1.5  # the demo has bundles (phone + case, espresso machine + beans)
    assert ("Phones", "Phone Accessories") in {k for _, k in lifts[:6]}


# --- scope: time range, basket filters, one side only, per period --------------------------------------


@pytest.mark.parametrize("level, dims", [("product", PRODUCT_PAIR), ("category", CATEGORY_PAIR)])
def test_time_range_narrows_baskets_and_n(catalog, warehouse, baskets, level, dims):
    start, end = "2025-01-01", "2025-03-31"   # a date end includes that whole day
    got = canon(catalog, warehouse, dims, start=start, end=end)
    scope = baskets.select(level, start=datetime(2025, 1, 1), end=datetime(2025, 4, 1))
    assert 0 < len(scope) < len(baskets.select(level)) / 4
    assert_same(got, rows_of(counter_rules(scope.values())), keys=2)
    assert_same([r for r in got if r[5] >= 10], rows_of({k: v for k, v in mlxtend_rules(scope.values(), 0.0005).items()
                                                         if v[3] >= 10}), keys=2)


@pytest.mark.parametrize("level, dims", [("product", PRODUCT_PAIR), ("category", CATEGORY_PAIR)])
def test_basket_filter_narrows_baskets(catalog, warehouse, baskets, level, dims):
    got = canon(catalog, warehouse, dims, where=("customer.segment = 'enterprise'",))
    scope = baskets.select(level, segment="enterprise")
    assert 0 < len(scope) < len(baskets.select(level))
    assert_same(got, rows_of(counter_rules(scope.values())), keys=2)


def test_antecedent_filter_restricts_the_antecedent_only(catalog, warehouse, baskets):
    got = canon(catalog, warehouse, PRODUCT_PAIR, where=("antecedent.category = 'Phones'",))
    everything = counter_rules(baskets.select("product").values())
    want = {k: v for k, v in everything.items() if baskets.category_of[k[0]] == "Phones"}
    assert_same(got, rows_of(want), keys=2)
    assert {baskets.category_of[r[0]] for r in got} == {"Phones"}
    assert len({baskets.category_of[r[1]] for r in got}) > 3  # consequents of any category


def test_consequent_filter_restricts_the_consequent_only(catalog, warehouse, baskets):
    got = canon(catalog, warehouse, CATEGORY_PAIR, where=("consequent.category IN ('Coffee', 'Cameras')",))
    everything = counter_rules(baskets.select("category").values())
    want = {k: v for k, v in everything.items() if k[1] in ("Coffee", "Cameras")}
    assert_same(got, rows_of(want), keys=2)


def test_n_per_quarter(catalog, warehouse, baskets):
    """Grouped by metric_time.quarter, each quarter is its own scope: N, n(A), n(B) per quarter."""
    got = canon(catalog, warehouse, ("metric_time.quarter",) + CATEGORY_PAIR)
    by_quarter = defaultdict(list)
    for order_id, items in baskets.select("category").items():
        at = baskets.attrs[order_id][1]
        by_quarter[f"{at.year}-{3 * ((at.month - 1) // 3) + 1:02d}-01"].append(items)
    assert len(by_quarter) == 8
    want = [row for q, scope in by_quarter.items() for row in rows_of(counter_rules(scope), (q,))]
    assert_same(got, want, keys=3)
    # mlxtend agrees per quarter too
    for q, scope in list(by_quarter.items())[:2]:
        mine = {k[1:]: v for k, v in keyed(got, 3).items() if k[0] == q}
        theirs = mlxtend_rules(scope, 0.01)
        assert_same([[*k, *mine[k]] for k in theirs], rows_of(theirs), keys=2)


def test_product_pairs_per_quarter_for_enterprise(catalog, warehouse, baskets):
    got = canon(catalog, warehouse, ("metric_time.quarter",) + PRODUCT_PAIR,
                where=("customer.segment = 'enterprise'",), start="2024-04-01", end="2024-09-30")
    by_quarter = defaultdict(list)
    for order_id, items in baskets.select("product", segment="enterprise", start=datetime(2024, 4, 1),
                                          end=datetime(2024, 10, 1)).items():
        at = baskets.attrs[order_id][1]
        by_quarter[f"{at.year}-{3 * ((at.month - 1) // 3) + 1:02d}-01"].append(items)
    assert sorted(by_quarter) == ["2024-04-01", "2024-07-01"]
    want = [row for q, scope in by_quarter.items() for row in rows_of(counter_rules(scope), (q,))]
    assert_same(got, want, keys=3)
