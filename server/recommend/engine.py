"""Answers from a snapshot: cross-sell, cart additions, personalized recommendations, upsell, audiences.

Pure functions over an `AffinitySnapshot` and one of its `Window`s; no I/O, no SQL. What the names
mean (which levels exist, the tier order, the price, the segments) comes from the snapshot's
`Layout`, made from the catalog's `recommendations:` block. The ranking rules, shared by every
function:
- a candidate B is scored by its best rule A → B over the antecedents A in scope (the product asked
  about, the cart, or the customer's history): highest cross_sell_score (the affinity metric, a
  confidence), then highest cross_sell_lift, then the lowest antecedent id;
- candidates rank by that score, then that lift, then the popularity metric of B in the window,
  then the lowest id;
- a rule counts only when its cross_sell_support is at least `min_support`.
A customer's history is every item the popularity metric counts for them (all time); rules and
popularity come from the window (default: the last 365 days of data).
"""

from __future__ import annotations

import hashlib

from canon.compiler.errors import QueryError, UnknownNameError, did_you_mean

from .snapshot import ITEM_LEVEL, AffinitySnapshot, Rule, Window

MAX_LIMIT = 1000
MAX_AUDIENCE = 1_000_000


# --- arguments ------------------------------------------------------------------------------------


def check_limit(limit, field: str = "limit", most: int = MAX_LIMIT) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise QueryError(f"{field}: {limit!r} must be a whole number from 1 to {most:,}")
    return limit


def check_min_support(value, field: str = "min_support") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise QueryError(f"{field}: {value!r} must be a number from 0 to 1 (a share of the baskets in the window)")
    return float(value)


def resolve_product(snapshot: AffinitySnapshot, value, field: str = "product_id") -> int:
    """A product id (int or digits) or an exact product name (any case) -> the product id; else 404."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if value in snapshot.products:
            return value
        raise UnknownNameError(f"{field}: unknown product {value}",
                               hint=f"product ids run from {min(snapshot.products)} to {max(snapshot.products)}"
                               if snapshot.products else "the catalog has no products")
    if isinstance(value, str) and value.strip().lower() in snapshot.by_name:
        return snapshot.by_name[value.strip().lower()]
    names = [p.name for p in snapshot.products.values()]
    raise UnknownNameError(f"{field}: unknown product {value!r}",
                           hint=did_you_mean(str(value), names) or "give a product id or an exact product name")


def resolve_customer(snapshot: AffinitySnapshot, customer_id, field: str = "customer_id") -> int:
    if isinstance(customer_id, str) and customer_id.strip().isdigit():
        customer_id = int(customer_id.strip())
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
        raise QueryError(f"{field}: {customer_id!r} must be a whole number (a customer id)")
    if customer_id not in snapshot.customers:
        raise UnknownNameError(f"{field}: unknown customer {customer_id}",
                               hint="no customer account has this id in the warehouse")
    return customer_id


def check_level(snapshot: AffinitySnapshot, level: str) -> str:
    levels = snapshot.layout.levels
    if level not in levels:
        raise QueryError(f"level: {level!r} is not a valid level", hint="valid choices: " + ", ".join(levels))
    return level


def _level_value(snapshot: AffinitySnapshot, level: str, value, field: str) -> object:
    check_level(snapshot, level)
    if level == ITEM_LEVEL:
        return resolve_product(snapshot, value, field)
    known = {p.levels[level] for p in snapshot.products.values()}
    lowered = {str(k).lower(): k for k in known}
    if isinstance(value, str) and value.strip().lower() in lowered:
        return lowered[value.strip().lower()]
    raise UnknownNameError(f"{field}: unknown {level} {value!r}",
                           hint="valid choices: " + ", ".join(sorted(map(str, known))))


# --- ranking --------------------------------------------------------------------------------------


def best_rules(window: Window, antecedents, *, exclude=frozenset(), min_support: float = 0.0,
               level: str = "product") -> dict:
    """{B: the best rule A → B over `antecedents`} for every B not in `exclude`."""
    best: dict = {}
    table = window.rules[level]
    for a in sorted(antecedents):
        for rule in table.get(a, ()):
            b = rule.consequent
            if b in exclude or rule.support < min_support:
                continue
            held = best.get(b)
            if held is None or (rule.confidence, rule.lift) > (held.confidence, held.lift):
                best[b] = rule  # equal score and lift: the lower antecedent id, met first, stays
    return best


def rank(window: Window, best: dict, level: str = "product") -> list[Rule]:
    pop = window.popularity[level]
    return sorted(best.values(), key=lambda r: (-r.confidence, -r.lift, -pop.get(r.consequent, 0),
                                                _key(r.consequent)))


def _key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _product(snapshot: AffinitySnapshot, product_id: int) -> dict:
    return snapshot.products[product_id].to_dict()


def _rule_entry(snapshot: AffinitySnapshot, window: Window, rule: Rule, level: str = ITEM_LEVEL) -> dict:
    item = _product(snapshot, rule.consequent) if level == ITEM_LEVEL else {level: rule.consequent}
    return {**item, **rule.metrics(),
            "product_purchase_frequency": window.popularity[level].get(rule.consequent, 0)}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def baskets(snapshot: AffinitySnapshot) -> str:
    """The catalog's word for its baskets: orders, receipts."""
    return plural(snapshot.layout.basket if snapshot.layout else "order")


def explain(snapshot: AffinitySnapshot, rule: Rule) -> str:
    """In the catalog's words: its basket entity (orders, receipts) and affinity metric."""
    a = snapshot.products[rule.antecedent].name
    b = snapshot.products[rule.consequent].name
    layout = snapshot.layout
    baskets_, metric = baskets(snapshot), layout.affinity if layout else "cross_sell_score"
    return (f"bought {a}: {_pct(rule.confidence)} of the {rule.antecedent_orders} {baskets_} with {a} also held {b} "
            f"({metric} {rule.confidence:.3f}, lift {rule.lift:.2f}, {rule.pair_orders} {baskets_} with both)")


def plural(noun: str) -> str:
    """order → orders, basket → baskets, box → boxes, delivery → deliveries (an entity name in a sentence)."""
    noun = noun.replace("_", " ")
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


# --- cross-sell ------------------------------------------------------------------------------------


def cross_sell(snapshot: AffinitySnapshot, window: Window, value, *, level: str = "product", limit: int = 10,
               min_support: float = 0.0, field: str | None = None) -> dict:
    check_limit(limit)
    min_support = check_min_support(min_support)
    key = _level_value(snapshot, level, value, field or ("product_id" if level == "product" else "value"))
    ranked = rank(window, best_rules(window, [key], min_support=min_support, level=level), level)[:limit]
    antecedent = _product(snapshot, key) if level == ITEM_LEVEL else {level: key}
    return {"level": level, "antecedent": {**antecedent,
                                           "product_purchase_frequency": window.popularity[level].get(key, 0)},
            "window": window.describe(), "min_support": min_support, "snapshot_built_at": snapshot.built_at,
            "items": [_rule_entry(snapshot, window, r, level) for r in ranked]}


def cart_additions(snapshot: AffinitySnapshot, window: Window, product_ids, *, limit: int = 10,
                   min_support: float = 0.0) -> dict:
    check_limit(limit)
    min_support = check_min_support(min_support)
    if not product_ids:
        raise QueryError("product_ids: the cart is empty", hint="send the ids of the products in the cart")
    cart, unknown = [], []
    for value in product_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise QueryError(f"product_ids: {value!r} is not a product id (a whole number)")
        (cart if value in snapshot.products else unknown).append(value)
    if unknown:
        raise UnknownNameError("product_ids: unknown product" + ("s " if len(unknown) > 1 else " ")
                               + ", ".join(map(str, unknown)),
                               hint="remove them from the cart; product ids run from "
                                    f"{min(snapshot.products)} to {max(snapshot.products)}")
    in_cart = frozenset(cart)
    ranked = rank(window, best_rules(window, in_cart, exclude=in_cart, min_support=min_support))[:limit]
    return {"cart": sorted(in_cart), "window": window.describe(), "min_support": min_support,
            "snapshot_built_at": snapshot.built_at,
            "items": [{**_rule_entry(snapshot, window, r), "antecedent": _product(snapshot, r.antecedent),
                       "reason": explain(snapshot, r).replace("bought ", "in the cart: ", 1)} for r in ranked]}


# --- personalized recommendations ------------------------------------------------------------------


def recommend(snapshot: AffinitySnapshot, window: Window, customer_id, *, limit: int = 10,
              min_support: float = 0.0) -> dict:
    check_limit(limit)
    min_support = check_min_support(min_support)
    cid = resolve_customer(snapshot, customer_id)
    customer = snapshot.customers[cid]
    history = snapshot.history.get(cid, frozenset())
    body = {"customer_id": cid, **customer.shown, "purchased_products": len(history),
            "window": window.describe(), "min_support": min_support, "snapshot_built_at": snapshot.built_at}
    if history:
        ranked = rank(window, best_rules(window, history, exclude=history, min_support=min_support))[:limit]
        body["strategy"] = "affinity"
        body["items"] = [{**_rule_entry(snapshot, window, r), "antecedent": _product(snapshot, r.antecedent),
                          "recommendation_id": recommendation_id(cid, r.consequent, snapshot),
                          "reason": explain(snapshot, r)} for r in ranked]
        return body
    body["strategy"] = "popular_in_segment"
    body["items"] = popular_for(snapshot, window, customer, limit)
    for item in body["items"]:
        item["recommendation_id"] = recommendation_id(cid, item["product_id"], snapshot)
    return body


def popular_for(snapshot: AffinitySnapshot, window: Window, customer, limit: int) -> list[dict]:
    """The most bought products (the popularity metric in the window) among customers of the same
    cold-start group (segment and country in the demo); topped up from all customers when that group
    buys fewer products."""
    group = window.group_popularity.get(customer.group, ())
    who = (f"{customer.group[0]} customers" + "".join(f" in {v}" for v in customer.group[1:])
           if customer.group else "all customers")
    items, seen = [], set()
    for pid, freq in group:
        if len(items) >= limit:
            break
        if pid in snapshot.products:
            seen.add(pid)
            items.append({**_product(snapshot, pid), "product_purchase_frequency_in_group": freq,
                          "product_purchase_frequency": window.popularity["product"].get(pid, 0), "antecedent": None,
                          "reason": f"no completed {baskets(snapshot)} yet: among the most bought products of "
                                    f"{who} ({freq} {baskets(snapshot)} in the window)"})
    overall = sorted(window.popularity["product"].items(), key=lambda kv: (-kv[1], kv[0]))
    for pid, freq in overall:
        if len(items) >= limit:
            break
        if pid not in seen and pid in snapshot.products and freq:
            seen.add(pid)
            items.append({**_product(snapshot, pid), "product_purchase_frequency_in_group": 0,
                          "product_purchase_frequency": freq, "antecedent": None,
                          "reason": f"no completed {baskets(snapshot)} yet: among the most bought products "
                                    f"overall ({freq} {baskets(snapshot)} in the window)"})
    return items


def recommendation_id(customer_id: int, product_id: int, snapshot: AffinitySnapshot) -> str:
    """Stable per customer, product and snapshot day, so feedback can name what was shown."""
    text = f"{customer_id}:{product_id}:{snapshot.window.end}:{snapshot.window.days}"
    return "rec_" + hashlib.sha256(text.encode()).hexdigest()[:16]


# --- upsell ---------------------------------------------------------------------------------------


def upsell(snapshot: AffinitySnapshot, window: Window, customer_id, *, limit: int = 5) -> dict:
    """Per upsell group (category) the customer bought in: items of a higher tier than the highest
    they bought there (by the block's tier order, or by price when it names no tier), by popularity
    in the window, with price − the highest price of what they bought in the group as the expected
    uplift."""
    check_limit(limit)
    layout = snapshot.layout
    if layout.group_key is None:
        raise UnknownNameError("upsell is not configured: the `recommendations:` block has no `upsell:`",
                               hint="add upsell: {group: <item dimension>, tier: ..., order: [...], price: ...}")
    cid = resolve_customer(snapshot, customer_id)
    history = snapshot.history.get(cid, frozenset())
    by_group: dict = {}
    for pid in history:
        product = snapshot.products.get(pid)
        if product is not None:
            by_group.setdefault(product.group, []).append(product)
    pop = window.popularity[ITEM_LEVEL]
    order, price_key = layout.tier_order, layout.price_key
    groups = []
    for group in sorted(by_group, key=_key):
        bought = by_group[group]
        top_rank = max(p.tier_rank for p in bought)
        prices = [p.price for p in bought if p.price is not None]
        top_price = max(prices) if prices else None
        candidates = [p for p in snapshot.products.values()
                      if p.group == group and p.tier_rank > top_rank and p.product_id not in history]
        candidates.sort(key=lambda p: (-pop.get(p.product_id, 0), p.product_id))
        entry = {layout.group_key: group, "highest_tier_bought": order[top_rank] if order and top_rank >= 0 else None}
        if price_key:
            entry[f"highest_{price_key}_bought"] = top_price
        entry["items"] = [_upsell_item(p, pop, group, order, top_rank, top_price, baskets(snapshot))
                          for p in candidates[:limit]]
        groups.append(entry)
    return {"customer_id": cid, "window": window.describe(), "snapshot_built_at": snapshot.built_at,
            "categories": groups}


def _upsell_item(p, pop: dict, group, order: tuple, top_rank, top_price, baskets_: str) -> dict:
    n = pop.get(p.product_id, 0)
    item = {**p.to_dict(), "product_purchase_frequency": n}
    if top_price is not None and p.price is not None:
        item["expected_uplift"] = round(p.price - top_price, 2)
    if order:
        bought = order[top_rank] if top_rank >= 0 else "unranked"
        up_to = f" (up to {top_price:.2f})" if top_price is not None else ""
        item["reason"] = f"bought {bought} tier in {group}{up_to}; {p.tier} tier, bought in {n} {baskets_} in the window"
    else:
        item["reason"] = f"bought in {group} up to {top_price:.2f}; {p.price:.2f}, bought in {n} {baskets_} in the window"
    return item


# --- audiences ------------------------------------------------------------------------------------


def email_safe_id(customer_id: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:20]


def audience_for_product(snapshot: AffinitySnapshot, window: Window, product, *, salt: str, limit: int = 1000,
                         min_support: float = 0.0) -> list[dict]:
    """Customers who have not bought the product, ranked by their best rule A → product over their
    history (score, then lift, then the lowest customer id)."""
    check_limit(limit, most=MAX_AUDIENCE)
    pid = resolve_product(snapshot, product)
    name = snapshot.products[pid].name
    into = {a: r for a, rules in window.rules["product"].items() for r in rules
            if r.consequent == pid and r.support >= min_support}  # A -> the rule A → product
    found = []
    for cid, history in snapshot.history.items():
        if pid in history:
            continue
        best = None
        for a in sorted(history):
            rule = into.get(a)
            if rule is not None and (best is None or (rule.confidence, rule.lift) > (best.confidence, best.lift)):
                best = rule
        if best is not None:
            found.append((cid, best))
    found.sort(key=lambda x: (-x[1].confidence, -x[1].lift, x[0]))
    return [{"customer_id": cid, "email_id": email_safe_id(cid, salt), "recommended_products": [name],
             "recommended_product_ids": [pid], "score": rule.confidence, "reason": explain(snapshot, rule)}
            for cid, rule in found[:limit]]


def audience_for_segment(snapshot: AffinitySnapshot, window: Window, segment: str, *, salt: str,
                         limit: int = 1000, per_customer: int = 3, min_support: float = 0.0) -> list[dict]:
    """Customers whose first audience-segment dimension (in the block's order) that holds the value
    `segment` has it (the demo: an RFM segment, else an account segment), by customer id, each with
    their top recommendations."""
    check_limit(limit, most=MAX_AUDIENCE)
    keys = snapshot.layout.audience_keys
    customers = snapshot.customers
    values = [{v for v in customers.segment_values(i) if v} for i in range(len(keys))]
    at = next((i for i, known in enumerate(values) if segment in known), None)
    if at is None:
        choices = [str(v) for known in values for v in sorted(known, key=str)]
        raise UnknownNameError(f"segment: unknown segment {segment!r}",
                               hint="valid choices: " + ", ".join(choices) if choices else
                               "the `recommendations:` block names no customers.audience_segments")
    members = customers.with_segment(at, segment)
    rows = []
    for cid in members[:limit]:
        body = recommend(snapshot, window, cid, limit=per_customer, min_support=min_support)
        items = body["items"]
        rows.append({"customer_id": cid, "email_id": email_safe_id(cid, salt),
                     "recommended_products": [i["product_name"] for i in items],
                     "recommended_product_ids": [i["product_id"] for i in items],
                     "reason": items[0]["reason"] if items else "no recommendation"})
    return rows
