"""Deterministic demo warehouse generator for Canon.

`build_demo` writes a DuckDB file with a small e-commerce + marketing schema
(customers, products, orders, order_items, campaigns, ad_spend, leads) whose
contents depend only on `seed` and `scale`.  The data carries real structure so
that metrics and cross-sell features have something to find:

* products come in category x tier price bands (premium > mid > entry);
* a few anchor products pull a fixed companion into the basket (bundles);
* paid customers, leads and campaign-attributed orders follow ad spend;
* ad_spend contains restated rows (latest ``_etl_loaded_at`` wins).

All times are naive UTC and handled internally as int64 seconds since START.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from sqlglot import exp

from .demo_schema import TABLES, TIME_SPINE_DAYS, count_sql, create_sql  # noqa: F401 (TABLES: public)

DEFAULT_SCALE_ORDERS = 20_000  # orders at scale 1.0
CUSTOMERS_PER_ORDER = 0.5  # ~10k customers at scale 1 (some never order)
LEADS_PER_ORDER = 0.3  # ~6k leads at scale 1
PAID_CUSTOMER_SHARE = 0.6  # customers acquired through a campaign
BATCH_ORDERS = 250_000  # bounds memory of the order/item generation

START = np.datetime64("2024-01-01T00:00:00", "s")
N_DAYS = 731  # 2024-01-01 .. 2025-12-31 inclusive (2024 is a leap year)
DAY = 86_400
HOUR = 3_600
END_SEC = N_DAYS * DAY

COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "SE", "CA", "AU", "JP")
COUNTRY_WEIGHTS = (0.34, 0.12, 0.12, 0.08, 0.05, 0.05, 0.04, 0.08, 0.07, 0.05)
SEGMENTS = ("consumer", "small_business", "enterprise")
SEGMENT_ORDER_RATE = (1.0, 1.5, 2.5)  # relative purchase frequency
ACQ_CHANNELS = ("facebook", "google", "linkedin", "email", "organic", "referral")
FUNNELS = ("self_service", "sales_assisted")
SALES_CHANNELS = ("web", "sales_assisted", "app")
ENTERPRISE = SEGMENTS.index("enterprise")
LINKEDIN = ACQ_CHANNELS.index("linkedin")
SALES_ASSISTED = FUNNELS.index("sales_assisted")
STATUSES = ("completed", "cancelled", "returned")
STATUS_WEIGHTS = (0.85, 0.10, 0.05)
LEAD_SOURCES = ("contact_form", "signup", "webinar")
LEAD_MEETING_RATE = (0.75, 0.38, 0.6)  # by LEAD_SOURCES, before channel effects
# Month-of-year demand (Nov/Dec peak); index 0 = January.
SEASONALITY = (0.85, 0.8, 0.9, 0.92, 0.95, 0.93, 0.9, 0.9, 1.0, 1.05, 1.45, 1.7)
ANNUAL_GROWTH = 0.4  # demand grows ~40% a year
# Orders ramp up over the first weeks while the customer base forms; without
# it the first few customers would absorb all early orders.
ORDER_LAUNCH_RAMP_DAYS = 30
CUSTOMER_LIFETIME_DAYS = 240  # a customer's order rate decays with time since signup


@dataclass(frozen=True)
class Channel:
    """Economics of one paid marketing channel (all relative or per scale 1)."""

    name: str
    cpc: float  # mean cost per click, USD
    ctr: float  # click-through rate
    daily_budget: float  # per campaign in its home country, USD at scale 1
    self_service: float  # share of its campaigns in the self_service funnel
    campaign_share: float  # share of non-always-on campaigns
    lead_rate: float  # relative leads per click
    meeting: float  # multiplier on a lead's meeting probability
    close: float  # multiplier on lead -> customer conversion
    direct: float  # relative direct (lead-less) signups per click


# linkedin: expensive clicks but leads that meet and close; email: cheap clicks.
CHANNELS = (
    Channel("facebook", 0.85, 0.012, 90.0, 0.85, 0.32, 1.0, 0.75, 0.7, 1.0),
    Channel("google", 1.90, 0.045, 130.0, 0.75, 0.32, 1.4, 1.0, 1.0, 1.3),
    Channel("linkedin", 7.50, 0.006, 70.0, 0.2, 0.18, 4.0, 1.3, 1.5, 0.6),
    Channel("email", 0.06, 0.030, 8.0, 0.8, 0.18, 0.3, 0.9, 0.9, 0.5),
)
N_CAMPAIGNS = 40
FIRST_CAMPAIGN_ID = 101  # own id ranges keep ids of different tables apart when reading results
FIRST_PRODUCT_ID = 1001
# Campaign channel codes double as customer acquisition_channel codes.
assert tuple(c.name for c in CHANNELS) == ACQ_CHANNELS[: len(CHANNELS)]

TIERS = ("entry", "mid", "premium")
TIER_LABELS = ("Go", "Plus", "Pro")
TIER_PRICE = (1.0, 2.1, 4.2)  # x category base; bands never overlap
TIER_DEMAND = (0.5, 0.32, 0.18)

# (category, base price USD, demand weight,
#  ((subcategory, item name, price factor in [0.8, 1.25], brands), ...))
CATALOG = (
    ("Phones", 320, 0.6, (
        ("Smartphones", "Smartphone", 1.0, ("Lumen", "Vertex", "Orbit")),
        ("Rugged Phones", "Rugged Phone", 1.2, ("Vertex",)))),
    ("Phone Accessories", 14, 1.4, (
        ("Cases", "Phone Case", 1.0, ("Lumen", "Vertex", "Orbit")),
        ("Chargers", "Fast Charger", 1.25, ("Voltix", "Lumen")),
        ("Screen Protectors", "Screen Protector", 0.8, ("Shellcraft",)))),
    ("Coffee", 11, 1.8, (
        ("Espresso Beans", "Espresso Beans", 1.1, ("Crema Co", "Alto Roasters")),
        ("Filter Coffee", "Filter Roast", 1.0, ("Alto Roasters", "Northbean")),
        ("Capsules", "Capsule Pack", 0.85, ("Crema Co",)))),
    ("Coffee Machines", 130, 0.5, (
        ("Espresso Machines", "Espresso Machine", 1.25, ("Vapora", "Crema Co")),
        ("Grinders", "Burr Grinder", 0.85, ("Vapora", "Millstone")),
        ("Drip Brewers", "Drip Brewer", 0.8, ("Northbean",)))),
    ("Laptops", 560, 0.45, (
        ("Ultrabooks", "Ultrabook", 1.1, ("Kestrel", "Novatek")),
        ("Business Laptops", "Business Laptop", 1.0, ("Novatek", "Ironleaf")),
        ("Gaming Laptops", "Gaming Laptop", 1.25, ("Kestrel",)))),
    ("Computer Accessories", 22, 1.2, (
        ("Mice", "Wireless Mouse", 0.85, ("Kestrel", "Clickwise")),
        ("Laptop Bags", "Laptop Bag", 1.2, ("Carryall",)),
        ("Keyboards", "Keyboard", 1.1, ("Clickwise",)),
        ("USB Hubs", "USB-C Hub", 0.9, ("Voltix",)))),
    ("Cameras", 420, 0.35, (
        ("Mirrorless", "Mirrorless Camera", 1.25, ("Optica", "Brightline")),
        ("Compact Cameras", "Compact Camera", 0.85, ("Optica",)),
        ("Action Cameras", "Action Camera", 0.8, ("Brightline",)))),
    ("Camera Accessories", 19, 0.7, (
        ("Memory Cards", "Memory Card", 0.8, ("Optica", "Datacard")),
        ("Tripods", "Tripod", 1.2, ("Steadi",)),
        ("Camera Bags", "Camera Bag", 1.1, ("Carryall",)))),
    ("Audio", 48, 1.0, (
        ("Headphones", "Headphones", 1.2, ("Sonora", "Lumen")),
        ("Earbuds", "Earbuds", 0.9, ("Sonora", "Vertex")),
        ("Speakers", "Speaker", 1.0, ("Sonora",)))),
)
# Anchor subcategory pulls the same-tier companion (same brand where it makes
# one) into the basket with this probability: the planted cross-sell pairs.
BUNDLES = (
    ("Smartphones", "Cases", 0.45),
    ("Smartphones", "Chargers", 0.25),
    ("Espresso Machines", "Espresso Beans", 0.55),
    ("Ultrabooks", "Mice", 0.35),
    ("Business Laptops", "Laptop Bags", 0.40),
    ("Mirrorless", "Memory Cards", 0.50),
    ("Action Cameras", "Memory Cards", 0.40),
)
BASKET_PRIMARY = (0.32, 0.29, 0.20, 0.11, 0.08)  # P(1..5 independently picked lines)
MAX_LINES = 6


# --------------------------------------------------------------------------
# public API


def build_demo(
    path: str | os.PathLike, scale: float = 1.0, seed: int = 42, progress: bool = False
) -> dict[str, int]:
    """Build the demo DuckDB warehouse at `path` (overwrites). Returns {table_name: row_count}."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target so os.replace is an atomic rename on one filesystem.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp, Path(f"{tmp}.wal"))
    try:
        with duckdb.connect(str(tmp)) as con:
            _create_tables(con)
            _populate(con, float(scale), np.random.default_rng(seed), progress)
            # the (empty) table recommendation feedback lands in, so its metrics answer 0 rows from day one
            from .recommend.feedback import create_table_sql

            con.execute(create_table_sql("duckdb"))
            con.execute("CHECKPOINT")
            counts = {t: con.execute(count_sql(t)).fetchone()[0] for t, _ in TABLES}
        _remove(Path(f"{path}.wal"))  # a stale WAL of the old file must not replay onto the new one
        os.replace(tmp, path)
    finally:
        _remove(tmp, Path(f"{tmp}.wal"))
    return counts


# --------------------------------------------------------------------------
# orchestration


def _populate(con: duckdb.DuckDBPyConnection, scale: float, rng: np.random.Generator, progress: bool) -> None:
    cal = Calendar.build()
    products = _make_products(rng)
    campaigns = _make_campaigns(rng, cal)
    spend = _make_ad_spend(rng, campaigns, cal, scale)
    leads = _make_leads(rng, campaigns, spend, round(LEADS_PER_ORDER * DEFAULT_SCALE_ORDERS * scale))
    customers = _make_customers(rng, campaigns, spend, leads, cal, scale)

    _insert(con, "products", _products_table(products))
    _insert(con, "campaigns", _campaigns_table(campaigns))
    _insert(con, "ad_spend", _ad_spend_table(rng, spend))
    _insert(con, "leads", _leads_table(leads, customers["lead_customer_id"]))
    _insert(con, "customers", _customers_table(customers))
    _insert(con, "time_spine", _time_spine_table())

    order_cal = Calendar.build(launch_ramp_days=ORDER_LAUNCH_RAMP_DAYS)
    skeleton = _order_skeleton(rng, customers, order_cal, round(DEFAULT_SCALE_ORDERS * scale))
    touch = _campaign_touch_weights(spend, len(campaigns["channel"]))
    n_orders = len(skeleton["t"])
    starts = range(0, n_orders, BATCH_ORDERS)
    next_item_id = 1
    with _progress_bar(progress, len(starts)) as advance:
        for lo in starts:
            batch = {k: v[lo:lo + BATCH_ORDERS] for k, v in skeleton.items()}
            orders, items = _order_batch(rng, batch, lo + 1, next_item_id, customers, products, campaigns, touch)
            _insert(con, "orders", orders)
            _insert(con, "order_items", items)
            next_item_id += len(items["order_item_id"])
            advance()
    # last: drawing it moves no other table's random numbers
    _insert(con, "customer_segment_history", _segment_history_table(rng, customers))


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress  # only the CLI's large builds need it

    with Progress() as bar:
        task = bar.add_task("orders & order_items", total=total)
        yield lambda: bar.advance(task)


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


# --------------------------------------------------------------------------
# time


@dataclass(frozen=True)
class Calendar:
    """Daily demand curve (growth x seasonality x weekday) and its CDF.

    Event times are drawn by inverting the piecewise-linear CDF, which also
    lets us sample "after time s" exactly (orders never precede signup).
    """

    weight: np.ndarray  # relative demand per day, mean 1
    cdf: np.ndarray  # cumulative share at each day boundary, len N_DAYS + 1
    month: np.ndarray  # 0-based month of each day

    @staticmethod
    def build(launch_ramp_days: float = 0.0) -> Calendar:
        """Demand curve; `launch_ramp_days` > 0 damps the first weeks after launch."""
        days = START.astype("datetime64[D]") + np.arange(N_DAYS)
        month = days.astype("datetime64[M]").astype(np.int64) % 12
        weekday = (days.astype(np.int64) + 3) % 7  # 0 = Monday
        w = (1 + ANNUAL_GROWTH * np.arange(N_DAYS) / 365) * np.asarray(SEASONALITY)[month]
        w = w * np.where(weekday >= 5, 0.9, 1.0)
        if launch_ramp_days:
            w = w * (1 - np.exp(-np.arange(1, N_DAYS + 1) / launch_ramp_days))
        w = w / w.mean()
        cdf = np.concatenate([[0.0], np.cumsum(w)]) / w.sum()
        return Calendar(w, cdf, month)

    def cdf_at(self, sec: np.ndarray) -> np.ndarray:
        t = np.clip(sec / DAY, 0, N_DAYS)
        d = np.minimum(t.astype(np.int64), N_DAYS - 1)
        return self.cdf[d] + (t - d) * (self.cdf[d + 1] - self.cdf[d])

    def sample_after(self, rng: np.random.Generator, after_sec: np.ndarray) -> np.ndarray:
        """Seconds drawn from the demand curve, conditioned on >= after_sec."""
        lo = self.cdf_at(after_sec)
        u = lo + rng.random(len(lo)) * (1 - lo)
        d = np.clip(np.searchsorted(self.cdf, u, side="right") - 1, 0, N_DAYS - 1)
        frac = np.clip((u - self.cdf[d]) / (self.cdf[d + 1] - self.cdf[d]), 0, 1 - 1e-9)
        sec = ((d + frac) * DAY).astype(np.int64)
        return np.clip(sec, after_sec, END_SEC - 1)  # guards float round-off


# --------------------------------------------------------------------------
# dimensions


def _make_products(rng: np.random.Generator) -> dict[str, np.ndarray]:
    rows = []  # (category, subcategory, item, brand, tier index, price, demand)
    for category, base, demand, subcats in CATALOG:
        for subcat, item, factor, brands in subcats:
            for brand in brands:
                for tier in range(len(TIERS)):
                    rows.append((category, subcat, item, brand, tier, base * factor * TIER_PRICE[tier], demand))
    n = len(rows)
    col = list(zip(*rows))
    # +-8% jitter keeps tiers in disjoint price bands (max entry 1.35x < min premium 3.1x base).
    price = np.asarray(col[5]) * rng.uniform(0.92, 1.08, n)
    price_cents = np.floor(price).astype(np.int64) * 100 + 99
    cost_cents = np.round(price_cents * rng.uniform(0.42, 0.72, n)).astype(np.int64)
    tier = np.asarray(col[4])
    popularity = np.asarray(col[6]) * np.asarray(TIER_DEMAND)[tier] * rng.lognormal(0, 0.35, n)
    names = [f"{b} {i} {TIER_LABELS[t]}" for _, _, i, b, t, _, _ in rows]
    products = {
        "product_id": np.arange(FIRST_PRODUCT_ID, FIRST_PRODUCT_ID + n),
        "product_name": np.asarray(names, dtype=object),
        "category": np.asarray(col[0], dtype=object),
        "subcategory": np.asarray(col[1], dtype=object),
        "brand": np.asarray(col[3], dtype=object),
        "tier": tier,
        "price_cents": price_cents,
        "cost_cents": cost_cents,
        "popularity": popularity / popularity.sum(),
    }
    products["companion"], products["attach_prob"] = _bundle_companions(products)
    return products


def _bundle_companions(products: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """[slot, product] companion index (-1: none) and attach probability.

    An anchor has at most one companion per slot; smartphones fill two slots
    (case and charger), every other anchor one.  The companion has the anchor's
    tier and brand, or failing that a fixed brand of the companion subcategory.
    """
    n = len(products["product_id"])
    sub, brand, tier = products["subcategory"], products["brand"], products["tier"]
    companion = np.full((len(BUNDLES), n), -1)
    attach = np.zeros((len(BUNDLES), n))
    for anchor, target, prob in BUNDLES:
        slot = next(k for k in range(len(BUNDLES)) if (companion[k, sub == anchor] < 0).all())
        target_brands = list(dict.fromkeys(brand[sub == target]))
        anchor_brands = list(dict.fromkeys(brand[sub == anchor]))
        for i in np.flatnonzero(sub == anchor):
            b = brand[i]
            if b not in target_brands:
                b = target_brands[anchor_brands.index(b) % len(target_brands)]
            companion[slot, i] = np.flatnonzero((sub == target) & (brand == b) & (tier == tier[i]))[0]
            attach[slot, i] = prob
    used = (companion >= 0).any(axis=1)
    return companion[used], attach[used]


def _make_campaigns(rng: np.random.Generator, cal: Calendar) -> dict[str, np.ndarray]:
    """~40 campaigns; the first one per channel is always on so every day has
    an active campaign of every channel to attribute to."""
    n_ch = len(CHANNELS)
    n = N_CAMPAIGNS
    channel = np.concatenate([np.arange(n_ch), rng.choice(n_ch, n - n_ch, p=[c.campaign_share for c in CHANNELS])])
    always_on = np.arange(n) < n_ch
    self_share = np.asarray([c.self_service for c in CHANNELS])[channel]
    funnel = np.where(rng.random(n) < self_share, 0, 1)
    funnel[always_on] = [int(c.self_service < 0.5) for c in CHANNELS]  # linkedin's is sales_assisted
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS)
    country[always_on] = 0
    start = rng.integers(0, N_DAYS - 45, n)
    start[always_on] = 0
    end = np.minimum(start + rng.integers(30, 200, n), N_DAYS - 1)
    end[always_on] = N_DAYS - 1
    # Share of the home-country budget spent in each market it runs in.
    share = np.zeros((n, len(COUNTRIES)))
    share[np.arange(n), country] = 1.0
    for i in range(n):
        extra = 4 if always_on[i] else rng.integers(0, 3)
        others = rng.permutation(np.flatnonzero(share[i] == 0))[:extra]
        share[i, others] = rng.uniform(0.25, 0.6, len(others))
    order = np.lexsort((np.arange(n), start))  # ids follow start date
    campaigns = {
        "campaign_id": np.arange(FIRST_CAMPAIGN_ID, FIRST_CAMPAIGN_ID + n),
        "channel": channel[order],
        "funnel": funnel[order],
        "country": country[order],
        "start": start[order],
        "end": end[order],
        "share": share[order],
        "budget": rng.lognormal(0, 0.4, n),
        "cpc": rng.lognormal(0, 0.2, n),
        "ctr": rng.lognormal(0, 0.2, n),
        "quality": rng.lognormal(0, 0.3, n),  # campaign-specific lead quality
    }
    campaigns["always_on"] = always_on[order]
    campaigns["name"] = _campaign_names(campaigns, cal)
    return campaigns


def _campaign_names(c: dict[str, np.ndarray], cal: Calendar) -> np.ndarray:
    themes = ("new_year", "winter", "spring", "spring", "spring", "summer", "summer",
              "summer", "back_to_school", "launch", "black_friday", "holiday")
    names, seen = [], set()
    for i in range(len(c["channel"])):
        month = cal.month[c["start"][i]]
        theme = "always_on" if c["always_on"][i] else themes[month]
        date = str(START.astype("datetime64[D]") + c["start"][i])[:7].replace("-", "")
        parts = (CHANNELS[c["channel"][i]].name, FUNNELS[c["funnel"][i]], COUNTRIES[c["country"][i]].lower())
        name = "_".join((*parts, theme, date))
        k, unique = 2, name
        while unique in seen:
            unique, k = f"{name}_{k}", k + 1
        seen.add(unique)
        names.append(unique)
    return np.asarray(names, dtype=object)


# --------------------------------------------------------------------------
# marketing facts


def _make_ad_spend(rng: np.random.Generator, c: dict[str, np.ndarray], cal: Calendar,
                   scale: float) -> dict[str, np.ndarray]:
    """The true (final) ad_spend rows: one per campaign x active day x market.

    Row count does not scale; spend/impressions/clicks do, so cost per
    customer stays comparable across scales.
    """
    parts = []
    for i in range(len(c["channel"])):
        days = np.arange(c["start"][i], c["end"][i] + 1)
        markets = np.flatnonzero(c["share"][i])
        campaign = np.full(len(days) * len(markets), i)
        parts.append((campaign, np.repeat(days, len(markets)), np.tile(markets, len(days))))
    camp, day, country = (np.concatenate(p) for p in zip(*parts))
    ch = c["channel"][camp]
    budget = np.asarray([x.daily_budget for x in CHANNELS])[ch] * c["budget"][camp] * c["share"][camp, country]
    spend = budget * cal.weight[day] * rng.lognormal(0, 0.25, len(camp)) * scale
    spend[rng.random(len(camp)) < 0.02] = 0  # paused days
    spend_cents = np.round(spend * 100).astype(np.int64)
    cpc = np.asarray([x.cpc for x in CHANNELS])[ch] * c["cpc"][camp] * rng.lognormal(0, 0.1, len(camp))
    ctr = np.asarray([x.ctr for x in CHANNELS])[ch] * c["ctr"][camp] * rng.lognormal(0, 0.1, len(camp))
    impressions = rng.poisson(spend_cents / 100 / (cpc * ctr))
    clicks = rng.binomial(impressions, np.minimum(ctr, 1.0))
    return {"campaign": camp, "day": day, "country": country,
            "spend_cents": spend_cents, "impressions": impressions, "clicks": clicks}


def _make_leads(rng: np.random.Generator, c: dict[str, np.ndarray], spend: dict[str, np.ndarray],
                target: int) -> dict[str, np.ndarray]:
    """Leads arrive in proportion to clicks x channel lead rate; meetings and
    conversions depend on source, channel and campaign quality."""
    camp_of_row = spend["campaign"]
    ch_of_row = c["channel"][camp_of_row]
    lam = spend["clicks"] * np.asarray([x.lead_rate for x in CHANNELS])[ch_of_row] * c["quality"][camp_of_row]
    lam *= target / max(lam.sum(), 1e-9)
    row = np.repeat(np.arange(len(lam)), rng.poisson(lam))
    n = len(row)
    camp = camp_of_row[row]
    ch, funnel, quality = c["channel"][camp], c["funnel"][camp], c["quality"][camp]
    created = spend["day"][row] * DAY + rng.integers(0, DAY, n)
    # self_service funnels mostly produce product signups, sales_assisted ones forms/webinars.
    u = rng.random(n)
    source = np.where(funnel != SALES_ASSISTED, np.where(u < 0.75, 1, np.where(u < 0.9, 2, 0)),
                      np.where(u < 0.55, 0, np.where(u < 0.95, 2, 1)))
    p_meet = np.asarray(LEAD_MEETING_RATE)[source] * np.asarray([x.meeting for x in CHANNELS])[ch] * np.sqrt(quality)
    meeting = created + HOUR // 2 + (rng.lognormal(np.log(4), 0.8, n) * DAY).astype(np.int64)
    has_meeting = (rng.random(n) < np.minimum(p_meet, 0.95)) & (meeting < END_SEC)
    meeting = np.where(has_meeting, meeting, -1)
    p_close = np.where(has_meeting, 0.3, 0.03) * np.asarray([x.close for x in CHANNELS])[ch] * quality
    signup = np.where(has_meeting, meeting, created) + HOUR + (rng.exponential(1.5, n) * DAY).astype(np.int64)
    converted = (rng.random(n) < np.minimum(p_close, 0.9)) & (signup < END_SEC)
    order = np.argsort(created, kind="stable")  # lead ids follow creation time
    return {"campaign": camp[order], "created": created[order], "country": spend["country"][row][order],
            "source": source[order], "meeting": meeting[order], "converted": converted[order],
            "signup": np.where(converted, signup, -1)[order]}


def _make_customers(rng: np.random.Generator, c: dict[str, np.ndarray], spend: dict[str, np.ndarray],
                    leads: dict[str, np.ndarray], cal: Calendar, scale: float) -> dict[str, np.ndarray]:
    """Three acquisition paths: converted leads, direct paid signups (drawn
    from ad_spend rows by clicks) and organic/referral (demand curve)."""
    from_lead = np.flatnonzero(leads["converted"])
    n_total = max(round(CUSTOMERS_PER_ORDER * DEFAULT_SCALE_ORDERS * scale), len(from_lead) + 1)
    n_paid = max(round(PAID_CUSTOMER_SHARE * n_total) - len(from_lead), 0)
    n_free = n_total - len(from_lead) - n_paid

    camp_of_row = spend["campaign"]
    w = spend["clicks"] * np.asarray([x.direct for x in CHANNELS])[c["channel"][camp_of_row]]
    row = rng.choice(len(w), n_paid, p=w / w.sum())
    paid_signup = spend["day"][row] * DAY + rng.integers(0, DAY, n_paid)
    free_signup = cal.sample_after(rng, np.zeros(n_free, dtype=np.int64))

    signup = np.concatenate([leads["signup"][from_lead], paid_signup, free_signup])
    campaign = np.concatenate([leads["campaign"][from_lead], camp_of_row[row], np.full(n_free, -1)])
    country = np.concatenate([leads["country"][from_lead], spend["country"][row],
                              rng.choice(len(COUNTRIES), n_free, p=COUNTRY_WEIGHTS)])
    paid = campaign >= 0
    # CHANNELS and ACQ_CHANNELS share their leading paid entries; 4/5 = organic/referral.
    organic = np.where(rng.random(n_total) < 0.68, ACQ_CHANNELS.index("organic"), ACQ_CHANNELS.index("referral"))
    channel = np.where(paid, c["channel"][campaign], organic)
    funnel = np.where(paid, c["funnel"][campaign], 0)
    is_lead = np.arange(n_total) < len(from_lead)
    segment = _draw_segments(rng, channel, funnel)

    order = np.argsort(signup, kind="stable")  # customer ids follow signup time
    lead_customer_id = np.full(len(leads["created"]), -1)
    lead_customer_id[from_lead] = np.argsort(order)[: len(from_lead)] + 1
    return {"customer_id": np.arange(1, n_total + 1), "signup": signup[order], "country": country[order],
            "segment": segment[order], "channel": channel[order], "campaign": campaign[order],
            "from_lead": is_lead[order], "lead_customer_id": lead_customer_id}


def _draw_segments(rng: np.random.Generator, channel: np.ndarray, funnel: np.ndarray) -> np.ndarray:
    # Rows: consumer-ish sources, linkedin self-service, any sales_assisted funnel.
    probs = np.asarray([[0.78, 0.18, 0.04], [0.40, 0.45, 0.15], [0.15, 0.45, 0.40]])
    kind = np.where(funnel == SALES_ASSISTED, 2, np.where(channel == LINKEDIN, 1, 0))
    cum = np.cumsum(probs, axis=1)[kind]
    return (rng.random(len(kind))[:, None] > cum).sum(axis=1)


# --------------------------------------------------------------------------
# orders


def _order_skeleton(rng: np.random.Generator, cust: dict[str, np.ndarray], cal: Calendar,
                    target: int) -> dict[str, np.ndarray]:
    """Who orders when, for all orders at once (3 ints per order), sorted by
    time so order ids are chronological."""
    n_cust = len(cust["signup"])
    # Heavy-tailed propensity gives repeat buyers; ~15% never buy.
    propensity = rng.lognormal(0, 0.9, n_cust) * np.asarray(SEGMENT_ORDER_RATE)[cust["segment"]]
    propensity[rng.random(n_cust) < 0.15] = 0
    # Many first orders follow signup within days, converted leads especially.
    p_quick = np.where(cust["from_lead"], 0.8, 0.45) * (propensity > 0)
    quick_t = cust["signup"] + 600 + (rng.exponential(4, n_cust) * DAY).astype(np.int64)
    quick = np.flatnonzero((rng.random(n_cust) < p_quick) & (quick_t < END_SEC))
    rest_who, rest_t = _assign_orders(rng, cust["signup"], propensity, cal, max(target - len(quick), 0))

    who = np.concatenate([quick, rest_who])
    t = np.concatenate([quick_t[quick], rest_t])
    is_quick = np.arange(len(who)) < len(quick)
    order = np.lexsort((who, t))
    return {"customer": who[order], "t": t[order], "quick": is_quick[order]}


def _assign_orders(rng: np.random.Generator, signup: np.ndarray, propensity: np.ndarray, cal: Calendar,
                   n: int) -> tuple[np.ndarray, np.ndarray]:
    """Order times follow the order curve; each order goes to a customer who
    signed up by then with weight propensity * exp(-(t - signup) / lifetime).

    exp(-t / lifetime) is shared by every candidate at time t, so the weight
    reduces to propensity * exp(signup / lifetime) and a prefix sum over
    customers (sorted by signup) samples among exactly the eligible ones.
    """
    weight = propensity * np.exp(signup / (CUSTOMER_LIFETIME_DAYS * DAY))
    if n == 0 or not weight.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cum = np.cumsum(weight)
    first_buyer = signup[np.flatnonzero(weight > 0)[0]]
    t = cal.sample_after(rng, np.full(n, first_buyer))
    eligible = np.searchsorted(signup, t, side="right")
    who = np.searchsorted(cum, rng.random(n) * cum[eligible - 1], side="right")
    return np.minimum(who, eligible - 1), t


def _campaign_touch_weights(spend: dict[str, np.ndarray], n_campaigns: int) -> np.ndarray:
    """[day, country, campaign] spend, so touched orders go to campaigns in
    proportion to what they spent in the buyer's market that day."""
    w = np.zeros((N_DAYS, len(COUNTRIES), n_campaigns), dtype=np.float32)
    np.add.at(w, (spend["day"], spend["country"], spend["campaign"]), spend["spend_cents"])
    return w


def _attribute_campaigns(rng: np.random.Generator, day: np.ndarray, country: np.ndarray,
                         first_campaign: np.ndarray, quick: np.ndarray, touch: np.ndarray) -> np.ndarray:
    """Campaign index per order or -1: a quick first order keeps the customer's
    acquiring campaign; any order may be touched by a campaign live that day."""
    n = len(day)
    campaign = np.full(n, -1)
    keep_first = quick & (first_campaign >= 0) & (rng.random(n) < 0.85)
    campaign[keep_first] = first_campaign[keep_first]
    touched = np.flatnonzero(~keep_first & (rng.random(n) < 0.33))
    rows = touch[day[touched], country[touched]]
    no_local = rows.sum(axis=1) == 0
    rows[no_local] = touch[day[touched[no_local]]].sum(axis=1)  # fall back to any market
    cum = np.cumsum(rows, axis=1, dtype=np.float64)
    pick = (cum < (rng.random(len(touched)) * cum[:, -1])[:, None]).sum(axis=1)
    campaign[touched] = np.where(cum[:, -1] > 0, pick, -1)
    return campaign


def _order_batch(rng: np.random.Generator, batch: dict[str, np.ndarray], first_order_id: int, first_item_id: int,
                 cust: dict[str, np.ndarray], products: dict[str, np.ndarray], campaigns: dict[str, np.ndarray],
                 touch: np.ndarray) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    n = len(batch["t"])
    who = batch["customer"]
    segment, country = cust["segment"][who], cust["country"][who]
    campaign = _attribute_campaigns(rng, batch["t"] // DAY, country, cust["campaign"][who], batch["quick"], touch)
    sales_channel = _draw_sales_channel(rng, segment)
    status = rng.choice(len(STATUSES), n, p=STATUS_WEIGHTS)

    line_order, product = _baskets(rng, n, products)
    n_lines = len(line_order)
    quantity = rng.choice(4, n_lines, p=(0.8, 0.14, 0.05, 0.01)) + 1
    enterprise = segment[line_order] == ENTERPRISE
    quantity = quantity + np.where(enterprise, rng.poisson(2.0, n_lines), 0)  # bulk buyers
    price = products["price_cents"][product]
    # Campaign-driven orders are discounted more often.
    p_disc = np.where(campaign[line_order] >= 0, 0.45, 0.18)
    pct = rng.choice((0.05, 0.10, 0.15, 0.20, 0.25), n_lines)
    discount = np.where(rng.random(n_lines) < p_disc, np.round(quantity * price * pct), 0).astype(np.int64)

    subtotal = np.bincount(line_order, weights=quantity * price - discount, minlength=n)
    lines = np.bincount(line_order, minlength=n)
    shipping = rng.choice((499, 599, 799, 999), n) + 150 * (lines - 1)
    free = (subtotal >= 15_000) & (rng.random(n) < 0.8)  # free shipping on large orders
    negotiated = (sales_channel == SALES_CHANNELS.index("sales_assisted")) & (rng.random(n) < 0.5)
    shipping = np.where(free | negotiated, 0, shipping)

    order_id = np.arange(first_order_id, first_order_id + n)
    orders = {
        "order_id": _int(order_id),
        "customer_id": _int(cust["customer_id"][who]),
        "ordered_at": _ts(batch["t"]),
        "status": _dict(status, STATUSES),
        "sales_channel": _dict(sales_channel, SALES_CHANNELS),
        "campaign_id": _int(_lookup(campaigns["campaign_id"], campaign)),
        "shipping_amount": _decimal(shipping),
    }
    items = {
        "order_item_id": _int(np.arange(first_item_id, first_item_id + n_lines)),
        "order_id": _int(order_id[line_order]),
        "product_id": _int(products["product_id"][product]),
        "quantity": pa.array(quantity.astype(np.int32)),
        "unit_price": _decimal(price),
        "discount_amount": _decimal(discount),
    }
    return orders, items


def _draw_sales_channel(rng: np.random.Generator, segment: np.ndarray) -> np.ndarray:
    # Columns follow SALES_CHANNELS (web, sales_assisted, app); rows SEGMENTS.
    probs = np.asarray([[0.72, 0.0, 0.28], [0.72, 0.14, 0.14], [0.22, 0.70, 0.08]])
    cum = np.cumsum(probs, axis=1)[segment]
    return np.minimum((rng.random(len(segment))[:, None] > cum).sum(axis=1), 2)


def _baskets(rng: np.random.Generator, n: int, products: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(order index, product index) per line, grouped by order.

    Up to five independently drawn lines per order, each followed by its bundle
    companions when they attach; duplicates are dropped (first one wins) and
    baskets are capped at MAX_LINES.
    """
    k = len(BASKET_PRIMARY)
    n_primary = rng.choice(k, n, p=BASKET_PRIMARY) + 1
    primary = rng.choice(len(products["popularity"]), (n, k), p=products["popularity"])
    columns, valid = [], []
    for j in range(k):
        used = n_primary > j
        columns.append(primary[:, j])
        valid.append(used)
        for comp, prob in zip(products["companion"], products["attach_prob"]):
            c = comp[primary[:, j]]
            columns.append(c)
            valid.append(used & (c >= 0) & (rng.random(n) < prob[primary[:, j]]))
    cand, ok = np.stack(columns, axis=1), np.stack(valid, axis=1)
    for j in range(1, cand.shape[1]):
        dup = ((cand[:, :j] == cand[:, j:j + 1]) & ok[:, :j]).any(axis=1)
        ok[:, j] &= ~dup
    ok &= np.cumsum(ok, axis=1) <= MAX_LINES
    line_order, slot = np.nonzero(ok)  # row-major: lines stay grouped by order
    return line_order, cand[line_order, slot]


# --------------------------------------------------------------------------
# arrow tables


def _products_table(p: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    return {
        "product_id": _int(p["product_id"]),
        "product_name": pa.array(p["product_name"], pa.string()),
        "category": pa.array(p["category"], pa.string()),
        "subcategory": pa.array(p["subcategory"], pa.string()),
        "brand": pa.array(p["brand"], pa.string()),
        "tier": _dict(p["tier"], TIERS),
        "list_price": _decimal(p["price_cents"]),
        "unit_cost": _decimal(p["cost_cents"]),
    }


def _campaigns_table(c: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    return {
        "campaign_id": _int(c["campaign_id"]),
        "campaign_name": pa.array(c["name"], pa.string()),
        "channel": _dict(c["channel"], tuple(x.name for x in CHANNELS)),
        "funnel": _dict(c["funnel"], FUNNELS),
        "country_code": _dict(c["country"], COUNTRIES),
        "started_on": _date(c["start"]),
    }


def _ad_spend_table(rng: np.random.Generator, s: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    """True rows plus superseded earlier loads for ~5% of keys.

    The first load lands the night after spend_date; restatements follow 1-5
    days apart, so load times of one key are strictly increasing and the
    latest one carries the true numbers.
    """
    n = len(s["day"])
    restated = (rng.random(n) < 0.05) & (s["impressions"] > 0)  # paused days have nothing to correct
    versions = np.where(restated, rng.choice((2, 3), n), 1)
    key = np.repeat(np.arange(n), versions)
    rank = np.arange(len(key)) - np.repeat(np.cumsum(versions) - versions, versions)  # 0 = first load
    is_final = rank == versions[key] - 1
    first_load = (s["day"] + 1) * DAY + 2 * HOUR + rng.integers(0, 4 * HOUR, n)
    gaps = np.where(rank > 0, rng.integers(DAY, 5 * DAY, len(key)), 0)
    loaded = first_load[key] + _cumsum_within(gaps, versions)

    def restate(values: np.ndarray, max_error: float) -> np.ndarray:
        # Preliminary numbers are off by 3%..max_error either way, never exact.
        error = rng.choice((-1, 1), len(key)) * rng.uniform(0.03, max_error, len(key))
        noisy = np.round(values[key] * (1 + error)).astype(np.int64)
        return np.where(is_final, values[key], noisy)

    spend = restate(s["spend_cents"], 0.2)
    impressions = restate(s["impressions"], 0.15)
    clicks = np.minimum(restate(s["clicks"], 0.15), impressions)
    return {
        "campaign_id": _int(s["campaign"][key] + FIRST_CAMPAIGN_ID),
        "spend_date": _date(s["day"][key]),
        "country_code": _dict(s["country"][key], COUNTRIES),
        "spend": _decimal(spend),
        "impressions": _int(impressions),
        "clicks": _int(clicks),
        "_etl_loaded_at": _ts(loaded),
    }


def _time_spine_table() -> dict[str, pa.Array]:
    first, last = TIME_SPINE_DAYS
    days = np.arange(np.datetime64(first), np.datetime64(last) + 1, dtype="datetime64[D]")
    return {"date_day": pa.array(days, type=pa.date32())}


def _cumsum_within(values: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    ends = np.cumsum(group_sizes)
    before = np.concatenate([[0], total[ends[:-1] - 1]]) if len(ends) else np.zeros(0, dtype=total.dtype)
    return total - np.repeat(before, group_sizes)


def _leads_table(leads: dict[str, np.ndarray], customer_id: np.ndarray) -> dict[str, pa.Array]:
    n = len(leads["created"])
    return {
        "lead_id": _int(np.arange(1, n + 1)),
        "campaign_id": _int(leads["campaign"] + FIRST_CAMPAIGN_ID),
        "created_at": _ts(leads["created"]),
        "country_code": _dict(leads["country"], COUNTRIES),
        "source": _dict(leads["source"], LEAD_SOURCES),
        "meeting_at": _ts(leads["meeting"]),
        "converted_customer_id": _int(customer_id),
    }


def _customers_table(c: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    return {
        "customer_id": _int(c["customer_id"]),
        "signup_at": _ts(c["signup"]),
        "country_code": _dict(c["country"], COUNTRIES),
        "segment": _dict(c["segment"], SEGMENTS),
        "acquisition_channel": _dict(c["channel"], ACQ_CHANNELS),
        "first_campaign_id": _int(np.where(c["campaign"] >= 0, c["campaign"] + FIRST_CAMPAIGN_ID, -1)),
    }


def _segment_history_table(rng: np.random.Generator, c: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    """Type II history: some customers changed segment once or twice after signing up, mostly moving up
    from the next smaller segment (the upsell a sales team wants credited); the last row of each
    customer is open (valid_to NULL) and holds today's segment in customers."""
    n = len(c["customer_id"])
    # consumers rarely changed; business customers often came up from a smaller segment
    stay = np.asarray((0.92, 0.55, 0.45))[c["segment"]]
    once = np.asarray((0.07, 0.35, 0.40))[c["segment"]]
    u = rng.random(n)
    changes = (u >= stay).astype(np.int64) + (u >= stay + once)
    rows = changes + 1
    cust = np.repeat(np.arange(n), rows)
    first = np.repeat(np.cumsum(rows) - rows, rows)
    idx = np.arange(len(cust)) - first
    # change times: uniform between signup and the end of the data, in order within each customer
    u = np.where(idx == 0, -1.0, rng.random(len(cust)))
    u = u[np.lexsort((u, cust))]
    signup = c["signup"][cust]
    valid_from = np.where(idx == 0, signup, signup + ((END_SEC - signup) * u).astype(np.int64))
    last = idx == rows[cust] - 1
    valid_to = np.where(last, -1, np.roll(valid_from, -1))
    segment = np.where(last, c["segment"][cust], -1)
    up = rng.random(len(cust)) < 0.8
    other = rng.integers(1, len(SEGMENTS), len(cust))
    for back in (1, 2):  # fill each earlier row from the row after it
        at = np.flatnonzero(idx == rows[cust] - 1 - back)
        after = segment[at + 1]
        segment[at] = np.where(up[at] & (after > 0), after - 1, (after + other[at]) % len(SEGMENTS))
    return {
        "history_id": _int(np.arange(1, len(cust) + 1)),
        "customer_id": _int(c["customer_id"][cust]),
        "segment": _dict(segment, SEGMENTS),
        "valid_from": _ts(valid_from),
        "valid_to": _ts(valid_to),
    }


def _lookup(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """ids[index], keeping -1 (missing) as -1."""
    return np.where(index >= 0, ids[np.maximum(index, 0)], -1)


# Arrow builders.  Negative values encode NULL: every id, time and amount the
# generator produces is >= 0.


def _int(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.int64)
    return pa.array(values, pa.int64(), mask=values < 0)


def _ts(seconds: np.ndarray) -> pa.Array:
    seconds = np.asarray(seconds, dtype=np.int64)
    micros = (seconds + START.astype(np.int64)) * 1_000_000
    return pa.array(micros, pa.timestamp("us"), mask=seconds < 0)


def _date(days: np.ndarray) -> pa.Array:
    epoch_days = np.asarray(days, dtype=np.int32) + START.astype("datetime64[D]").astype(np.int32)
    return pa.array(epoch_days, pa.date32())


def _decimal(cents: np.ndarray) -> pa.Array:
    """DECIMAL(12,2) straight from int cents: decimal128 is a 16-byte
    little-endian two's complement integer, i.e. (low=cents, high=sign)."""
    cents = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])


def _dict(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Dictionary-encoded strings: cheap to build, duckdb stores them as VARCHAR."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), pa.array(labels))


# --------------------------------------------------------------------------
# duckdb


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in TABLES:
        con.execute(create_sql(table, columns))


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, pa.Array]) -> None:
    # the batch is registered under a fixed name and inserted by column name
    con.register("_demo_batch", pa.table(columns))
    try:
        insert = exp.Insert(this=exp.to_table(table), expression=exp.select(exp.Star()).from_("_demo_batch"),
                            by_name=True)
        con.execute(insert.sql("duckdb"))
    finally:
        con.unregister("_demo_batch")

# --------------------------------------------------------------------------
# the demo catalog, shipped in the package (pyproject.toml maps it to canon/demo_project/)


def packaged_project() -> Path:
    """The demo catalog: canon/demo_project/ in an installed wheel, the repository root in a checkout."""
    import canon

    for folder in (Path(canon.__file__).resolve().parent / "demo_project", Path(__file__).resolve().parents[1]):
        if (folder / "semantic_models").is_dir() and (folder / "metrics").is_dir():
            return folder
    raise FileNotFoundError("the demo catalog is not installed (canon/demo_project/ is missing)")


def install_demo_project(target: Path) -> list[Path]:
    """Copy the demo catalog (semantic_models/, metrics/, canon.yml) into `target`, a folder without a
    project, so `canon demo` then `canon query` work anywhere after a plain `pip install`."""
    import shutil

    from canon.compiler.errors import ConfigError

    target = Path(target)
    partial = [name for name in ("semantic_models", "metrics") if (target / name).exists()]
    if partial:
        raise ConfigError(f"{target} has {partial[0]}/ but is not a complete Canon project",
                          hint="run `canon demo` in an empty folder, or pass --project DIR of a project")
    source = packaged_project()
    written = []
    for name in ("semantic_models", "metrics"):
        shutil.copytree(source / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.py*"))
        written.append(target / name)
    if not (target / "canon.yml").exists():
        shutil.copyfile(source / "canon.yml", target / "canon.yml")
        written.append(target / "canon.yml")
    return written
