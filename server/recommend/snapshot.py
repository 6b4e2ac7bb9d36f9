"""The affinity snapshot: every number the recommendation endpoints need, read from the governed
metrics through the compiler, kept in memory and swapped atomically.

What it is read from is the catalog's `recommendations:` block (compiler/recommendations.py): the
affinity metric (rules A → B, with its siblings for support, lift and the counts behind them), the
popularity metric, the item and customer dimensions and the upsell tiers. A snapshot holds, for one
time window (by default the last 365 days of data, counted back from the last day on which the
popularity metric counts a basket; days are the block's `timezone`'s when it names one, else the
stored time's):
- the association rules A → B at item level and at each of the block's `items.levels`;
- the popularity of each item and level value, and of each item within each cold-start group of
  customers (the fallback for customers without history);
and, over all time, the items (a dimension-only listing of the block's item dimensions), every
customer's shown, cold-start and audience dimensions, and every customer's purchased items.

`SnapshotStore` builds one (`refresh`), publishes it with a single reference assignment (readers
see the old or the new snapshot, never a half-built one), persists it to
`<project>/.canon/recommend/snapshot.pickle` (write to a temporary file, fsync, rename) and can
refresh it on a schedule from a background thread. Snapshots for other windows are built on demand
and cached until the next refresh.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import pickle
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from canon.compiler.errors import QueryError, UnknownNameError
from canon.compiler.recommendations import (RULE_RETURNS, customer_dimensions, item_dimensions, level_name,
                                            rule_catalog, rule_metric, window_zone)
from canon.compiler.request import QueryRequest
from canon.server.results import json_value

from .compact import CustomerTable, HistoryTable


log = logging.getLogger("canon.recommend")

ITEM_LEVEL = "product"  # the item level's name in requests (`level=product`) and answers (`product_id`)
DEFAULT_WINDOW_DAYS = 365
MAX_WINDOW_DAYS = 3660
SNAPSHOT_FILE = Path(".canon") / "recommend" / "snapshot.pickle"
FORMAT = 5  # 2: built from the `recommendations:` block; 3: customers in columns (compact.py); 4: window zone; 5: reasons in the catalog's words


class NotConfiguredError(UnknownNameError):
    """The catalog has no `recommendations:` block: there is nothing to recommend from (404)."""

    def __init__(self):
        super().__init__("recommendations are not configured: the catalog has no `recommendations:` block",
                         hint="add a `recommendations:` block to a metrics file (it names the affinity metric, "
                              "the item and customer dimensions; see docs/recommendations.md), then reload")


def block_of(catalog):
    """The catalog's `recommendations:` block; NotConfiguredError without one."""
    block = getattr(catalog, "recommendations", None)
    if block is None:
        raise NotConfiguredError()
    return block


@dataclass(frozen=True)
class Layout:
    """What the engine needs to know of the block, kept with the snapshot it shaped."""

    levels: tuple[str, ...]  # ITEM_LEVEL, then the names of items.levels
    popularity: str  # the popularity metric's name
    group_key: str | None = None  # upsell: the name of the group dimension (category)
    tier_order: tuple[str, ...] = ()  # upsell: tier values, lowest first; () ranks by price
    price_key: str | None = None  # upsell: the name of the price dimension (list_price)
    audience_keys: tuple[str, ...] = ()  # names of customers.audience_segments
    affinity: str = "cross_sell_score"  # the affinity metric's name, and its basket entity (reasons' words)
    basket: str = "order"

    @classmethod
    def of(cls, block, catalog=None) -> "Layout":
        upsell = block.upsell
        metric = catalog.metrics.get(block.affinity) if catalog is not None else None
        return cls(affinity=block.affinity, basket=getattr(metric, "basket", None) or "basket",
                   levels=(ITEM_LEVEL, *(level_name(r) for r in block.items.levels)), popularity=block.popularity,
                   group_key=level_name(upsell.group) if upsell else None,
                   tier_order=tuple(upsell.order) if upsell and upsell.tier else (),
                   price_key=level_name(upsell.price) if upsell and upsell.price else None,
                   audience_keys=tuple(level_name(r) for r in block.customers.audience_segments))


@dataclass(frozen=True, slots=True)
class Product:
    """An item: its id and name, the dimensions shown with it, its level values and upsell place."""

    product_id: int
    name: str
    shown: dict  # dimension name -> value, in the block's `items.show` order
    levels: dict  # level name -> value
    group: object = None  # upsell group value
    tier: str | None = None
    tier_rank: float = -1  # index in upsell.order (-1: not in it); the price when upsell has no tier
    price: float | None = None

    def to_dict(self) -> dict:
        return {"product_id": self.product_id, "product_name": self.name, **self.shown}


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: int
    shown: dict  # dimension name -> value, in the block's `customers.show` order
    group: tuple  # the cold-start dimensions' values
    segments: tuple  # the audience_segments dimensions' values


@dataclass(frozen=True, slots=True)
class Rule:
    """A → B with the governed metric values behind it."""

    antecedent: object
    consequent: object
    confidence: float  # the affinity metric
    support: float
    lift: float
    pair_orders: int  # n(A and B)
    antecedent_orders: int  # n(A)
    consequent_orders: int  # n(B)
    baskets: int  # N

    def metrics(self) -> dict:
        return {"cross_sell_score": self.confidence, "cross_sell_support": self.support,
                "cross_sell_lift": self.lift, "cross_sell_pair_orders": self.pair_orders,
                "antecedent_orders": self.antecedent_orders, "consequent_orders": self.consequent_orders,
                "baskets": self.baskets}


@dataclass(frozen=True)
class Window:
    """The windowed part: rules and popularity over [start, end] (inclusive days, in `timezone`'s days)."""

    days: int
    start: str
    end: str
    rules: dict  # level -> {antecedent key: tuple[Rule, ...] sorted best first}
    popularity: dict  # level -> {key: popularity}
    group_popularity: dict  # cold-start values -> tuple[(product_id, popularity), ...] best first
    timezone: str | None = None  # the block's zone; None: the stored time's days

    def describe(self) -> dict:
        zone = {"timezone": self.timezone} if self.timezone else {}  # said only when the days are a zone's
        return {"days": self.days, "start": self.start, "end": self.end, **zone}


@dataclass(frozen=True)
class AffinitySnapshot:
    built_at: str
    build_ms: float
    catalog_version: str
    warehouse: str
    last_order_date: str
    products: dict  # product_id -> Product
    customers: Mapping  # customer_id -> Customer (a CustomerTable: in columns)
    history: Mapping  # customer_id -> frozenset of product ids bought, all time (a HistoryTable)
    window: Window  # the default window
    key: tuple = ()  # what the snapshot was built from, to tell whether a persisted one is current
    by_name: dict = field(default_factory=dict)  # lower-case product name -> product_id
    layout: Layout | None = None

    def describe(self) -> dict:
        return {"built_at": self.built_at, "build_ms": self.build_ms, "catalog_version": self.catalog_version,
                "last_order_date": self.last_order_date, "window": self.window.describe(),
                "products": len(self.products), "customers": len(self.customers),
                "rules": sum(len(v) for v in self.window.rules[ITEM_LEVEL].values())}


# --- building -------------------------------------------------------------------------------------


def _rows(catalog, runtime, **request) -> list[list]:
    """Rows of a governed metric query, through the runtime (no row cap: the snapshot needs them all)."""
    return runtime.query(QueryRequest(**request), catalog=catalog, capped=False).rows


def _stream(catalog, runtime, **request) -> Iterator[list]:
    """The same rows batch by batch: the per-customer reads (millions of rows) never sit in memory whole."""
    stream = runtime.stream(runtime.prepare(QueryRequest(**request), catalog=catalog, capped=False))
    try:
        for batch in stream:
            for row in batch:
                yield [json_value(v) for v in row]
    finally:
        stream.close()


def last_order_date(catalog, warehouse, block) -> str:
    """The last day of `time` (in the block's zone) on which the popularity metric counts a basket."""
    day = f"{block.time}.day"
    rows = _rows(catalog, warehouse, metrics=(block.popularity,), dimensions=(day,), order=(f"-{day}",),
                 having=(f"{block.popularity} > 0",), limit=1, timezone=window_zone(block))
    if not rows:
        raise QueryError(f"the warehouse has no baskets that {block.popularity} counts: nothing to recommend from",
                         hint="load orders into the warehouse (canon demo builds a demo), then refresh")
    return str(rows[0][0])[:10]


def window_bounds(last_day: str, days: int) -> tuple[str, str]:
    end = dt.date.fromisoformat(last_day)
    return (end - dt.timedelta(days=days - 1)).isoformat(), end.isoformat()


def build_window(catalog, warehouse, last_day: str, days: int) -> Window:
    """`catalog` is a rule catalog (compiler.recommendations.rule_catalog): the block's metrics and the
    affinity metric's siblings."""
    block = block_of(catalog)
    start, end = window_bounds(last_day, days)
    zone = window_zone(block)
    span = {"start": start, "end": end, "timezone": zone}  # the zone's days: start, end and the filter on them
    rule_metrics = tuple(rule_metric(block, r) for r in RULE_RETURNS)
    rules, popularity = {}, {}
    for level, ref in ((ITEM_LEVEL, block.items.id), *((level_name(r), r) for r in block.items.levels)):
        dim = level_name(ref)
        by_antecedent = defaultdict(list)
        for a, b, *values in _rows(catalog, warehouse, metrics=rule_metrics,
                                   dimensions=(f"antecedent.{dim}", f"consequent.{dim}"), **span):
            conf, sup, lift, n_ab, n_a, n_b, n = values
            if n_ab:
                by_antecedent[a].append(Rule(a, b, float(conf), float(sup), float(lift or 0.0), int(n_ab),
                                             int(n_a), int(n_b), int(n)))
        pop = {k: int(v or 0) for k, v in _rows(catalog, warehouse, metrics=(block.popularity,),
                                                dimensions=(ref,), **span)}
        rules[level] = {a: tuple(sorted(rs, key=lambda r: (-r.confidence, -r.lift, -pop.get(r.consequent, 0),
                                                           _sort_key(r.consequent))))
                        for a, rs in by_antecedent.items()}
        popularity[level] = pop
    groups = defaultdict(list)
    cold = block.customers.cold_start
    for *group, product_id, freq in _rows(catalog, warehouse, metrics=(block.popularity,),
                                          dimensions=(*cold, block.items.id), **span):
        if freq:
            groups[tuple(group)].append((product_id, int(freq)))
    group_popularity = {k: tuple(sorted(v, key=lambda x: (-x[1], x[0]))) for k, v in groups.items()}
    return Window(days, start, end, rules, popularity, group_popularity, zone)


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _whole(value, what: str) -> int:
    """Ids are whole numbers: the HTTP API, the cart and the feedback table carry them as BIGINT."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number != value and str(number) != str(value).strip():
        raise QueryError(f"recommendations: {what} {value!r} is not a whole number",
                         hint=f"name a dimension holding whole-number ids as {what}")
    return number


def _items(catalog, warehouse, block) -> dict:
    refs = item_dimensions(block)
    at = {ref: i for i, ref in enumerate(refs)}
    upsell = block.upsell
    order = tuple(upsell.order) if upsell and upsell.tier else ()
    products = {}
    for row in _rows(catalog, warehouse, metrics=(), dimensions=refs):
        pid = _whole(row[at[block.items.id]], "items.id")
        price = row[at[upsell.price]] if upsell and upsell.price else None
        price = float(price) if price is not None else None
        tier = row[at[upsell.tier]] if upsell and upsell.tier else None
        rank = (order.index(tier) if tier in order else -1) if order else (price if price is not None else -1)
        products[pid] = Product(pid, row[at[block.items.name]],
                                {level_name(r): _shown(row[at[r]], r, upsell) for r in block.items.show},
                                {level_name(r): row[at[r]] for r in block.items.levels},
                                row[at[upsell.group]] if upsell else None, tier, rank, price)
    return products


def _shown(value, ref, upsell):
    # the price as a float, as upsell computes with it (a DECIMAL column arrives as a string or Decimal)
    return float(value) if upsell and ref == upsell.price and value is not None else value


def _customers(catalog, warehouse, block) -> CustomerTable:
    c = block.customers
    refs = customer_dimensions(block)
    at = {ref: i for i, ref in enumerate(refs)}
    customers = CustomerTable([level_name(r) for r in c.show], len(c.cold_start), len(c.audience_segments))
    for row in _stream(catalog, warehouse, metrics=(), dimensions=refs, order=(c.id,)):
        if row[at[c.id]] is None:
            continue
        customers.add(_whole(row[at[c.id]], "customers.id"), [row[at[r]] for r in c.show],
                      [row[at[r]] for r in c.cold_start], [row[at[r]] for r in c.audience_segments])
    return customers.done()


def build_snapshot(catalog, warehouse, days: int = DEFAULT_WINDOW_DAYS, key: tuple = ()) -> AffinitySnapshot:
    """`catalog`: the served catalog; its block says what to read."""
    started = time.perf_counter()
    block = block_of(catalog)
    rules = rule_catalog(catalog, block)
    last_day = last_order_date(rules, warehouse, block)
    products = _items(rules, warehouse, block)
    customers = _customers(rules, warehouse, block)
    pairs = (block.customers.id, block.items.id)
    bought = HistoryTable((int(cid), int(pid)) for cid, pid, freq in _stream(
        rules, warehouse, metrics=(block.popularity,), dimensions=pairs, order=pairs) if freq and cid is not None)
    window = build_window(rules, warehouse, last_day, days)
    return AffinitySnapshot(
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        build_ms=round((time.perf_counter() - started) * 1000, 1),
        catalog_version=str(getattr(catalog, "version", "")),
        warehouse=_safe(getattr(warehouse, "url", "")),
        last_order_date=last_day,
        products=products, customers=customers,
        history=bought,
        window=window, key=key,
        by_name={str(p.name).lower(): p.product_id for p in products.values()},
        layout=Layout.of(block, catalog),
    )


def _safe(url: str) -> str:
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


# --- the store ------------------------------------------------------------------------------------


def warehouse_key(url: str) -> tuple:
    """What identifies the data a snapshot was built from: the URL, and for a DuckDB file its mtime and size."""
    try:
        stat = os.stat(url)
        return (url, stat.st_mtime_ns, stat.st_size)
    except OSError:
        return (url,)


class SnapshotStore:
    """Holds the current snapshot; `refresh` builds a new one and swaps it in atomically.

    `catalog` and `warehouse` are callables returning the catalog and the runtime to query at refresh
    time (the server's hot-reloaded catalog and its runtime)."""

    def __init__(self, project: Path | None, catalog: Callable, warehouse: Callable, *,
                 days: int = DEFAULT_WINDOW_DAYS, persist: bool = True, freeze_gc: bool = False):
        self.project = Path(project) if project else None
        self._catalog = catalog
        self._warehouse = warehouse
        self.days = days
        self.persist = persist and self.project is not None
        self.freeze_gc = freeze_gc  # servers: keep the long-lived snapshot out of the cyclic GC's scans
        self._snapshot: AffinitySnapshot | None = None
        self._windows: dict[int, Window] = {}
        self._refresh_lock = threading.Lock()
        self._window_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.refreshes = 0
        self.last_error: str | None = None
        self._attempts = 0  # builds ended, published or failed: what `wait` waits for
        self._settled = threading.Condition()  # notified when a build ends or a snapshot is published
        self._settle_wait = threading.Event()  # set by a publish or stop: a deferred first build is not needed

    @property
    def path(self) -> Path | None:
        return self.project / SNAPSHOT_FILE if self.project else None

    @property
    def snapshot(self) -> AffinitySnapshot | None:
        return self._snapshot

    def key(self) -> tuple:
        warehouse, catalog = self._warehouse(), self._catalog()
        # the block's zone is in the catalog version too (its text is); named so the key says what it holds
        zone = getattr(getattr(catalog, "recommendations", None), "timezone", None)
        return (FORMAT, str(getattr(catalog, "version", "")), warehouse_key(str(getattr(warehouse, "url", ""))),
                self.days, zone)

    def refresh(self) -> AffinitySnapshot:
        try:
            return self._refresh()
        finally:  # published or failed: wake the requests waiting for this build (`wait`)
            with self._settled:
                self._attempts += 1
                self._settled.notify_all()

    def _refresh(self) -> AffinitySnapshot:
        block_of(self._catalog())  # no block, nothing to build (and nothing to warn about)
        with self._refresh_lock:  # one build at a time; readers keep the old snapshot meanwhile
            catalog, warehouse = self._catalog(), self._warehouse()
            try:
                key = self.key()
                snapshot = build_snapshot(catalog, warehouse, self.days, key=key)
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                raise
            if self.persist:  # stored first: once published, the build's work (pickling included) is done
                self._store(snapshot)
            self._publish(snapshot)
            self.refreshes += 1
            self.last_error = None
            log.info("recommendation snapshot built in %.0f ms (%d products, %d customers, window %s..%s)",
                     snapshot.build_ms, len(snapshot.products), len(snapshot.customers),
                     snapshot.window.start, snapshot.window.end)
            return snapshot

    def _publish(self, snapshot: AffinitySnapshot) -> None:
        if self.freeze_gc:  # the full collection before the swap: requests that see the snapshot run unpaused
            gc.collect()
        with self._window_lock:
            self._windows = {snapshot.window.days: snapshot.window}
            self._snapshot = snapshot  # one reference assignment: the swap
        if self.freeze_gc:
            gc.freeze()  # ~10^5 snapshot objects no longer scanned on every gen-2 pass (tail latency)
        self._settle_wait.set()
        with self._settled:
            self._settled.notify_all()

    def wait(self, timeout_s: float) -> AffinitySnapshot | None:
        """The current snapshot; without one, the end of a build (the one running, else one started here),
        waiting up to `timeout_s`. None when that build failed (`last_error` says why) or is still running:
        a build that fails at once answers at once, not after the whole timeout."""
        with self._settled:
            seen = self._attempts
        if self._snapshot is None and not self.building:
            self.start_refresh()
        with self._settled:
            self._settled.wait_for(lambda: self._snapshot is not None or self._attempts > seen, timeout_s)
        return self._snapshot

    def publish_persisted_if_current(self) -> bool:
        """Serve the persisted snapshot at once when it was built from this very catalog and DuckDB
        file (same version, mtime and size); a warehouse without a file identity is always rebuilt."""
        if not self.persist:
            return False
        try:
            key = self.key()
        except Exception:  # noqa: BLE001 — warehouse unreachable: nothing to compare with
            return False
        if len(key[2]) < 3:
            return False
        loaded = self.load_persisted()
        if loaded is not None and loaded.key == key:
            self._publish(loaded)
            return True
        return False

    def start_refresh(self, *, quiet=None) -> threading.Thread:
        """Refresh in a background thread (errors are logged; the current snapshot keeps serving).
        `quiet(stop)`: blocks until the warehouse is quiet or `stop` is set (a server's first build waits
        for a moment without queries); a build that a request started meanwhile, or the store's stop,
        makes this one unneeded."""
        def work():
            try:
                if quiet is not None:
                    quiet(self._settle_wait)
                    if self._snapshot is not None or self.building or self._stop.is_set():
                        return
                    threading.current_thread().name = "canon-recommend-build"  # waited; builds now
                self.refresh()
            except Exception as error:  # noqa: BLE001
                log.warning("recommendation snapshot refresh failed: %s", error)
        thread = threading.Thread(target=work, daemon=True,
                                  name="canon-recommend-wait" if quiet is not None else "canon-recommend-build")
        thread.start()
        return thread

    def current(self, *, build: bool = True) -> AffinitySnapshot:
        """The current snapshot; else a persisted one built from the same data; else build one."""
        block_of(self._catalog())
        if self._snapshot is not None:
            return self._snapshot
        if self.persist:
            loaded = self.load_persisted()
            if loaded is not None and loaded.key == self.key():
                self._publish(loaded)
                return loaded
        if not build:
            raise LookupError("no recommendation snapshot yet")
        return self.refresh()

    def window(self, days: int | None) -> tuple[AffinitySnapshot, Window]:
        snapshot = self.current()
        if days is None or days == snapshot.window.days:
            return snapshot, snapshot.window
        cached = self._windows.get(days)
        if cached is not None and self._snapshot is snapshot:
            return snapshot, cached
        catalog = self._catalog()
        window = build_window(rule_catalog(catalog, block_of(catalog)), self._warehouse(), snapshot.last_order_date,
                              days)
        with self._window_lock:
            if self._snapshot is snapshot:
                if len(self._windows) > 16:
                    self._windows = {snapshot.window.days: snapshot.window}
                self._windows[days] = window
        return snapshot, window

    # persistence: temp file + fsync + rename, so a reader never sees a half-written file
    def _store(self, snapshot: AffinitySnapshot) -> None:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    pickle.dump(snapshot, handle, protocol=pickle.HIGHEST_PROTOCOL)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as error:
            log.warning("cannot persist the recommendation snapshot to %s: %s", path, error)

    def load_persisted(self) -> AffinitySnapshot | None:
        try:
            with self.path.open("rb") as handle:
                snapshot = pickle.load(handle)
            return snapshot if isinstance(snapshot, AffinitySnapshot) else None
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
            return None

    # the schedule
    def start(self, interval_s: float) -> "SnapshotStore":
        if interval_s and interval_s > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, args=(interval_s,), daemon=True,
                                            name="canon-recommend-refresh")
            self._thread.start()
        return self

    @property
    def configured(self) -> bool:
        """Whether the current catalog has a `recommendations:` block."""
        return getattr(self._catalog(), "recommendations", None) is not None

    @property
    def building(self) -> bool:
        return self._refresh_lock.locked()

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            if not self.configured:
                continue  # the block may come with a catalog reload
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 — keep serving the previous snapshot
                log.warning("recommendation snapshot refresh failed, keeping the previous one: %s", error)

    def stop(self) -> None:
        self._stop.set()
        self._settle_wait.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
