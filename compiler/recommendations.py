"""The `recommendations:` block: which catalog definitions the recommendation service reads.

    recommendations:                      # a top-level key of a metrics file (metrics/recommendations.yml)
      affinity: cross_sell_score          # an affinity metric, returns: confidence
      popularity: product_purchase_frequency
      time: order.ordered_at              # the basket model's default time
      timezone: Europe/Berlin             # optional: windows count this zone's days (else the stored time's)
      items: {id: product.product_id, name: product.product_name, show: [...], levels: [product.category]}
      customers: {id: customer.customer_id, show: [...], cold_start: [...], audience_segments: [...]}
      upsell: {group: product.category, tier: product.tier, order: [entry, mid, premium], price: product.list_price}

`check_recommendations` binds every name against the catalog at `canon validate` time (file:line,
"did you mean") and compiles every request the snapshot will send, so a block that validates
answers. `rule_catalog` adds the rule numbers (support, lift, counts) as siblings of the affinity
metric, so a catalog needs no helper metric of its own for them. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses

from .calendar import check_timezone
from .catalog import Catalog
from .errors import CanonError, did_you_mean
from .model import AffinityMetric, Recommendations
from .refs import parse_ref
from .request import QueryRequest

# the numbers behind a rule A → B, each the affinity metric with another `returns`
RULE_RETURNS = ("confidence", "support", "lift", "pair_count", "antecedent_count", "consequent_count", "basket_count")


def check_recommendations(catalog: Catalog, blocks: list[tuple[Recommendations, str]], problems) -> Recommendations | None:
    """The catalog's block once every name in it resolves and every snapshot request compiles; else
    None, with each problem recorded in `problems` (validate.Problems)."""
    if not blocks:
        return None
    block = blocks[0][0]
    for other, _ in blocks[1:]:
        problems.add("the `recommendations:` block is defined twice", other.location,
                     f"first defined at {block.location}; keep one")
    before = len(problems.errors)
    problems.check(lambda: window_zone(block), block.location_of("timezone"), "recommendations.timezone: ")
    _check_names(catalog, block, problems)
    if not problems.errors:  # the requests compile only over a catalog without other errors
        derived = rule_catalog(catalog, block)
        for request in snapshot_requests(block):
            problems.check(lambda: _compile(derived, request), block.location, "recommendations: ")
    return block if len(problems.errors) == before else None


def _check_names(catalog: Catalog, block: Recommendations, problems) -> None:
    metric = catalog.metrics.get(block.affinity)
    confidence = sorted(n for n, x in catalog.metrics.items()
                        if isinstance(x, AffinityMetric) and x.returns == "confidence")
    if not isinstance(metric, AffinityMetric) or metric.returns != "confidence":
        why = "is not a metric" if metric is None else "is not an affinity metric with `returns: confidence`"
        problems.add(f"recommendations.affinity: '{block.affinity}' {why}", block.location_of("affinity"),
                     did_you_mean(block.affinity, confidence) if confidence else
                     "define an affinity metric (type: affinity, returns: confidence) and name it here")
        return
    info = catalog.affinities.get(block.affinity)
    if info is None:
        return  # the metric's own error is already reported
    if block.popularity not in catalog.metrics:
        problems.add(f"recommendations.popularity: unknown metric '{block.popularity}'",
                     block.location_of("popularity"), did_you_mean(block.popularity, catalog.metrics))
    item_model = info.item_model
    items, customers, upsell = block.items, block.customers, block.upsell
    on_items = [("items.id", items.id, items.location_of("id")), ("items.name", items.name, items.location_of("name"))]
    on_items += [("items.show", r, items.location_of("show")) for r in items.show]
    on_items += [("items.levels", r, items.location_of("levels")) for r in items.levels]
    if upsell is not None:
        on_items += [(f"upsell.{f}", getattr(upsell, f), upsell.location_of(f))
                     for f in ("group", "tier", "price") if getattr(upsell, f) is not None]
    for where, ref, location in on_items:
        dim = _dimension(catalog, where, ref, location, problems)
        if dim is not None and dim.model != item_model:
            problems.add(f"recommendations.{where}: '{ref}' is a dimension of '{dim.model}', not of the items "
                         f"('{item_model}', the item of '{block.affinity}')", location,
                         did_you_mean(ref.split(".")[-1], [f"{item_model}.{d}" for d in catalog.models[item_model].dimensions]))
    seen_levels = set()
    for ref in items.levels:
        name = ref.split(".")[-1]
        if name == "product" or name in seen_levels:
            problems.add(f"recommendations.items.levels: level '{name}' is named twice (or is the reserved 'product')",
                         items.location_of("levels"), "name each level once")
        seen_levels.add(name)
    for where, refs in (("id", (customers.id,)), ("show", customers.show), ("cold_start", customers.cold_start),
                        ("audience_segments", customers.audience_segments)):
        for ref in refs:
            _dimension(catalog, f"customers.{where}", ref, customers.location_of(where), problems)
    time = _dimension(catalog, "time", block.time, block.location_of("time"), problems)
    if time is not None:
        default = catalog.models[info.basket_model].default_time
        if time.type != "time" or default is None or default.ref != time.ref:
            problems.add(f"recommendations.time: '{block.time}' is not the default time of the baskets "
                         f"('{info.basket_model}')", block.location_of("time"),
                         f"windows are counted along each metric's own time: name {info.basket_model}.{default.name}"
                         if default is not None else f"give '{info.basket_model}' a default_time")
    if upsell is not None:
        if upsell.tier is None and upsell.price is None:
            problems.add("recommendations.upsell: name a `tier` (with its `order`) or a `price`", upsell.location,
                         "e.g. tier: product.tier, order: [entry, mid, premium]")
        if upsell.tier is not None and len(upsell.order) < 2:
            problems.add("recommendations.upsell.order: list the tier values, lowest first (at least two)",
                         upsell.location_of("order"), "e.g. order: [entry, mid, premium]")
        if len(set(upsell.order)) != len(upsell.order):
            problems.add("recommendations.upsell.order: a tier value is listed twice", upsell.location_of("order"))
        if upsell.order and upsell.tier is None:
            problems.add("recommendations.upsell.order: given without a `tier` dimension to rank",
                         upsell.location_of("order"), "add tier: <the item dimension holding these values>")


def _dimension(catalog: Catalog, where: str, ref: str, location, problems):
    """The dimension a reference names (no grain, no date part); else None with a problem recorded."""
    try:
        found = parse_ref(catalog, ref)
    except CanonError as error:
        problems.add(f"recommendations.{where}: {error.message}", location, error.hint)
        return None
    if found.kind != "dimension" or found.grain or found.part:
        problems.add(f"recommendations.{where}: '{ref}' must name a dimension, without a grain", location,
                     f"e.g. {ref.split('.')[0]}.<dimension>")
        return None
    return found.dimension


def level_name(ref: str) -> str:
    """`product.category` -> `category`: the name requests use for a level and answers use for a column."""
    return ref.split(".")[-1]


def rule_metric(block: Recommendations, returns: str) -> str:
    """The name the rule number `returns` is queried as in `rule_catalog` (the affinity metric itself for
    confidence)."""
    return block.affinity if returns == "confidence" else f"{block.affinity}__{returns}"


def rule_catalog(catalog: Catalog, block: Recommendations) -> Catalog:
    """The catalog plus the affinity metric's siblings, one per rule number: the same basket, item and
    filter with another `returns` (so their SQL is the affinity metric's, with another ratio)."""
    from .facts import build_facts

    base = catalog.metrics[block.affinity]
    info = catalog.affinities[block.affinity]
    metrics, affinities = dict(catalog.metrics), dict(catalog.affinities)
    for returns in RULE_RETURNS[1:]:
        name = rule_metric(block, returns)
        sibling = base.model_copy(update={"name": name, "returns": returns})
        metrics[name] = sibling
        affinities[name] = dataclasses.replace(info, definition=sibling)
    derived = dataclasses.replace(catalog, metrics=metrics, affinities=affinities)
    derived.facts = build_facts(derived)
    return derived


def window_zone(block: Recommendations) -> str | None:
    """The zone whose days the windows count (None: the stored time's days); QueryError for an unknown one."""
    return check_timezone(block.timezone)


def snapshot_requests(block: Recommendations) -> list[QueryRequest]:
    """Every request `server/recommend/snapshot.py` sends; the windowed ones over a stand-in window, since a
    window needs a time axis on every model they read (item lines without a default_time fail here). The
    windowed ones and the last day's carry the block's zone; the all-time ones (items, customers, history)
    need none."""
    items, customers = block.items, block.customers
    zone = window_zone(block)
    window = {"start": "2000-01-01", "end": "2000-12-31", "timezone": zone}
    item_dims = _unique((items.id, items.name, *items.show, *items.levels,
                         *(f for f in _upsell_refs(block))))
    rules = tuple(rule_metric(block, r) for r in RULE_RETURNS)
    requests = [
        QueryRequest(metrics=(), dimensions=item_dims),
        QueryRequest(metrics=(), dimensions=_unique((customers.id, *customers.show, *customers.cold_start,
                                                     *customers.audience_segments))),
        QueryRequest(metrics=(block.popularity,), dimensions=(f"{block.time}.day",), timezone=zone),
        QueryRequest(metrics=(block.popularity,), dimensions=(customers.id, items.id)),
        QueryRequest(metrics=(block.popularity,), dimensions=(*customers.cold_start, items.id), **window),
    ]
    for ref in (items.id, *items.levels):
        name = level_name(ref)
        requests.append(QueryRequest(metrics=rules, dimensions=(f"antecedent.{name}", f"consequent.{name}"), **window))
        requests.append(QueryRequest(metrics=(block.popularity,), dimensions=(ref,), **window))
    return requests


def _upsell_refs(block: Recommendations) -> tuple[str, ...]:
    upsell = block.upsell
    return tuple(r for r in (upsell.group, upsell.tier, upsell.price) if r) if upsell else ()


def _unique(refs) -> tuple[str, ...]:
    return tuple(dict.fromkeys(refs))


def item_dimensions(block: Recommendations) -> tuple[str, ...]:
    """The item listing's columns, in order: id, name, shown, levels, upsell (each once)."""
    return _unique((block.items.id, block.items.name, *block.items.show, *block.items.levels, *_upsell_refs(block)))


def customer_dimensions(block: Recommendations) -> tuple[str, ...]:
    c = block.customers
    return _unique((c.id, *c.show, *c.cold_start, *c.audience_segments))


def _compile(catalog: Catalog, request: QueryRequest) -> None:
    from .listing import is_listing, listing_query
    from .plan import plan
    from .resolve import resolve

    if is_listing(request):
        listing_query(catalog, request)
    else:
        plan(catalog, resolve(catalog, request))
