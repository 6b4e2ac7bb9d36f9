"""A straightforward reference implementation of cross-sell, cart additions, recommendations, upsell and
RFM segments: raw SQL over the demo tables plus pandas / plain Python, never Canon's compiler. The
recommendation tests compare Canon's answers with these.

Rules (as documented in server/recommend/engine.py): the window is the last `days` days ending on
the day of the last completed order; baskets are completed orders in the window; for a candidate B
the best rule A → B over the antecedents in scope wins by (confidence, lift, lowest A); candidates
rank by confidence, lift, orders holding B in the window, lowest id.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import duckdb
import pandas as pd

from tests.support.project import copy_project, demo_copy
TIERS = ("entry", "mid", "premium")


def make_project(tmp_path_factory, name: str, scale: float = 0.5, seed: int = 7) -> Path:
    """A copy of the project's definitions with its own demo warehouse in <project>/.canon/demo.duckdb."""
    project = copy_project(tmp_path_factory.mktemp(name))
    demo_copy(project / ".canon" / "demo.duckdb", scale=scale, seed=seed)
    return project


class Reference:
    def __init__(self, warehouse: Path, days: int = 365):
        with duckdb.connect(str(warehouse), read_only=True) as con:
            self.lines = con.execute("""
                SELECT DISTINCT o.order_id, o.customer_id, CAST(o.ordered_at AS DATE) AS day, i.product_id
                FROM orders o JOIN order_items i ON i.order_id = o.order_id
                WHERE o.status = 'completed'""").df()
            self.products = con.execute(
                "SELECT product_id, product_name, category, brand, tier, CAST(list_price AS DOUBLE) AS list_price "
                "FROM products").df().set_index("product_id")
            self.customers = con.execute("SELECT customer_id, segment, country_code FROM customers").df() \
                .set_index("customer_id")
            self.per_customer = con.execute("""
                WITH completed AS (
                  SELECT o.customer_id, o.order_id, o.ordered_at,
                         SUM(i.quantity * i.unit_price - i.discount_amount) AS revenue
                  FROM orders o JOIN order_items i ON i.order_id = o.order_id
                  WHERE o.status = 'completed' GROUP BY 1, 2, 3)
                SELECT customer_id, MAX(ordered_at) AS last_order_at, COUNT(*) AS order_count,
                       SUM(revenue) AS lifetime_revenue
                FROM completed GROUP BY customer_id""").df()
        self.lines["day"] = pd.to_datetime(self.lines["day"]).dt.date
        self.last_day = max(self.lines["day"])
        self.start = self.last_day - dt.timedelta(days=days - 1)
        window = self.lines[(self.lines["day"] >= self.start) & (self.lines["day"] <= self.last_day)]
        baskets = window[["order_id", "product_id"]].drop_duplicates()
        self.baskets = baskets
        self.n = baskets["order_id"].nunique()
        self.count = baskets.groupby("product_id")["order_id"].nunique().to_dict()
        pairs = baskets.merge(baskets, on="order_id", suffixes=("_a", "_b"))
        pairs = pairs[pairs["product_id_a"] != pairs["product_id_b"]]
        n_ab = pairs.groupby(["product_id_a", "product_id_b"])["order_id"].nunique()
        self.rules = defaultdict(dict)  # A -> {B: (confidence, support, lift, n_ab)}
        for (a, b), k in n_ab.items():
            a, b, k = int(a), int(b), int(k)
            na, nb = self.count[a], self.count[b]
            self.rules[a][b] = (k / na, k / self.n, (k * self.n) / (na * nb), k)
        self.history = {int(c): set(map(int, g)) for c, g in self.lines.groupby("customer_id")["product_id"]}
        self.window_lines = window

    # --- ranking ---
    def _best(self, antecedents, exclude=(), min_support=0.0) -> dict:
        best = {}
        for a in sorted(antecedents):
            for b, (conf, sup, lift, k) in self.rules.get(a, {}).items():
                if b in exclude or sup < min_support:
                    continue
                if b not in best or (conf, lift) > best[b][:2]:
                    best[b] = (conf, lift, a)
        return best

    def _rank(self, best: dict, limit: int) -> list[tuple[int, int, float, float]]:
        order = sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], -self.count.get(kv[0], 0), kv[0]))
        return [(b, a, conf, lift) for b, (conf, lift, a) in order[:limit]]

    def cross_sell(self, product_id: int, limit: int = 10, min_support: float = 0.0):
        return self._rank(self._best([product_id], min_support=min_support), limit)

    def cart(self, product_ids, limit: int = 10):
        cart = set(product_ids)
        return self._rank(self._best(cart, exclude=cart), limit)

    def recommend(self, customer_id: int, limit: int = 10):
        history = self.history.get(customer_id, set())
        return self._rank(self._best(history, exclude=history), limit)

    def popular_for(self, customer_id: int, limit: int = 10) -> list[int]:
        segment, country = self.customers.loc[customer_id, ["segment", "country_code"]]
        members = self.customers[(self.customers["segment"] == segment) & (self.customers["country_code"] == country)]
        lines = self.window_lines[self.window_lines["customer_id"].isin(members.index)]
        freq = lines.groupby("product_id")["order_id"].nunique()
        ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
        out = [int(p) for p, _ in ranked][:limit]
        for p, _ in sorted(self.count.items(), key=lambda kv: (-kv[1], kv[0])):
            if len(out) >= limit:
                break
            if p not in out:
                out.append(int(p))
        return out

    def upsell(self, customer_id: int, limit: int = 5) -> dict:
        bought = self.products.loc[sorted(self.history.get(customer_id, set()))]
        out = {}
        for category, group in bought.groupby("category"):
            top = max(TIERS.index(t) for t in group["tier"])
            top_price = group["list_price"].max()
            candidates = self.products[(self.products["category"] == category)
                                       & (self.products["tier"].map(TIERS.index) > top)]
            ranked = sorted(candidates.index, key=lambda p: (-self.count.get(p, 0), p))[:limit]
            out[category] = [(int(p), round(float(self.products.loc[p, "list_price"] - top_price), 2)) for p in ranked]
        return out

    def rfm_segments(self) -> dict[int, str]:
        df = self.per_customer.copy()
        n = len(df)

        def score(column):
            pct = (df[column].rank(method="min") - 1) / (n - 1)
            return (1 + (5 * pct).apply(lambda x: int(x // 1))).clip(upper=5)

        r, f, m = score("last_order_at"), score("order_count"), score("lifetime_revenue")
        out = {}
        for cid, R, F, M in zip(df["customer_id"], r, f, m):
            if R >= 4 and F >= 4 and M >= 4:
                seg = "champions"
            elif R >= 3 and F >= 4:
                seg = "loyal"
            elif R >= 4 and F == 1:
                seg = "new"
            elif R >= 4:
                seg = "potential_loyalist"
            elif R <= 2 and F >= 3:
                seg = "at_risk"
            elif R == 1 and F <= 2:
                seg = "lost"
            else:
                seg = "hibernating"
            out[int(cid)] = seg
        return out


def test_reference_rules_are_the_association_rule_definitions(tmp_path_factory):
    """The reference itself, on a hand-made basket set: {1,2}, {1,2,3}, {1}, {3}."""
    ref = Reference.__new__(Reference)
    baskets = pd.DataFrame({"order_id": [1, 1, 2, 2, 2, 3, 4], "product_id": [1, 2, 1, 2, 3, 1, 3]})
    ref.n = 4
    ref.count = baskets.groupby("product_id")["order_id"].nunique().to_dict()
    ref.rules = defaultdict(dict)
    pairs = baskets.merge(baskets, on="order_id", suffixes=("_a", "_b"))
    pairs = pairs[pairs["product_id_a"] != pairs["product_id_b"]]
    for (a, b), k in pairs.groupby(["product_id_a", "product_id_b"])["order_id"].nunique().items():
        ref.rules[a][b] = (k / ref.count[a], k / ref.n, k * ref.n / (ref.count[a] * ref.count[b]), k)
    assert ref.rules[1][2] == (2 / 3, 0.5, 2 * 4 / (3 * 2), 2)
    assert [b for b, *_ in ref.cross_sell(1)] == [2, 3]
    assert ref.cart([1, 2]) == [(3, 2, 0.5, 1.0)]
