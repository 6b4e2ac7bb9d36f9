"""The affinity snapshot: every number the recommendation endpoints need, read from the governed
metrics through the compiler, kept in memory and swapped atomically.

A snapshot holds, for one time window (by default the last 365 days of data, counted back from the
last completed order's day):
- the association rules A → B at product, category and brand level, with cross_sell_score
  (confidence), cross_sell_support, cross_sell_lift, cross_sell_pair_orders and the basket counts
  behind them (cross_sell_antecedent_orders, cross_sell_consequent_orders, cross_sell_baskets);
- product_purchase_frequency per product, category and brand, and per product within each customer
  segment × country (the fallback for customers without history);
and, over all time, the product catalog (catalog_product_count by product dimensions), every
customer's segment, country and RFM segment (customer_account_count by customer dimensions) and
every customer's purchased products (product_purchase_frequency by customer and product).

`SnapshotStore` builds one (`refresh`), publishes it with a single reference assignment (readers
see the old or the new snapshot, never a half-built one), persists it to
`<project>/.canon/recommend/snapshot.pickle` (write to a temporary file, fsync, rename) and can
refresh it on a schedule from a background thread. Snapshots for other windows are built on demand
and cached until the next refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from canon.compiler.errors import QueryError
from canon.compiler.request import QueryRequest


log = logging.getLogger("canon.recommend")

TIERS = ("entry", "mid", "premium")
LEVELS = ("product", "category", "brand")
DEFAULT_WINDOW_DAYS = 365
MAX_WINDOW_DAYS = 3660
SNAPSHOT_FILE = Path(".canon") / "recommend" / "snapshot.pickle"
FORMAT = 1

RULE_METRICS = ("cross_sell_score", "cross_sell_support", "cross_sell_lift", "cross_sell_pair_orders",
                "cross_sell_antecedent_orders", "cross_sell_consequent_orders", "cross_sell_baskets")


@dataclass(frozen=True, slots=True)
class Product:
    product_id: int
    name: str
    category: str
    subcategory: str
    brand: str
    tier: str
    list_price: float

    @property
    def tier_rank(self) -> int:
        return TIERS.index(self.tier) if self.tier in TIERS else -1

    def to_dict(self) -> dict:
        return {"product_id": self.product_id, "product_name": self.name, "category": self.category,
                "subcategory": self.subcategory, "brand": self.brand, "tier": self.tier,
                "list_price": self.list_price}


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: int
    segment: str | None
    country_code: str | None
    rfm_segment: str | None


@dataclass(frozen=True, slots=True)
class Rule:
    """A → B with the governed metric values behind it."""

    antecedent: object
    consequent: object
    confidence: float  # cross_sell_score
    support: float  # cross_sell_support
    lift: float  # cross_sell_lift
    pair_orders: int  # cross_sell_pair_orders: n(A and B)
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
    """The windowed part: rules and popularity over [start, end] (inclusive days)."""

    days: int
    start: str
    end: str
    rules: dict  # level -> {antecedent key: tuple[Rule, ...] sorted best first}
    popularity: dict  # level -> {key: product_purchase_frequency}
    group_popularity: dict  # (segment, country_code) -> tuple[(product_id, frequency), ...] best first

    def describe(self) -> dict:
        return {"days": self.days, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class AffinitySnapshot:
    built_at: str
    build_ms: float
    catalog_version: str
    warehouse: str
    last_order_date: str
    products: dict  # product_id -> Product
    customers: dict  # customer_id -> Customer
    history: dict  # customer_id -> frozenset of product ids bought on completed orders (all time)
    window: Window  # the default window
    key: tuple = ()  # what the snapshot was built from, to tell whether a persisted one is current
    by_name: dict = field(default_factory=dict)  # lower-case product name -> product_id

    def describe(self) -> dict:
        return {"built_at": self.built_at, "build_ms": self.build_ms, "catalog_version": self.catalog_version,
                "last_order_date": self.last_order_date, "window": self.window.describe(),
                "products": len(self.products), "customers": len(self.customers),
                "rules": sum(len(v) for v in self.window.rules["product"].values())}


# --- building -------------------------------------------------------------------------------------


def _rows(catalog, runtime, **request) -> list[list]:
    """Rows of a governed metric query, through the runtime (no row cap: the snapshot needs them all)."""
    return runtime.query(QueryRequest(**request), catalog=catalog, capped=False).rows


def last_order_date(catalog, warehouse) -> str:
    rows = _rows(catalog, warehouse, metrics=("order_count",), dimensions=("order.ordered_at.day",),
                 order=("-order.ordered_at.day",), having=("order_count > 0",), limit=1)
    if not rows:
        raise QueryError("the warehouse has no completed orders: nothing to recommend from",
                         hint="load orders into the warehouse (canon demo builds a demo), then refresh")
    return str(rows[0][0])[:10]


def window_bounds(last_day: str, days: int) -> tuple[str, str]:
    end = dt.date.fromisoformat(last_day)
    return (end - dt.timedelta(days=days - 1)).isoformat(), end.isoformat()


def build_window(catalog, warehouse, last_day: str, days: int) -> Window:
    start, end = window_bounds(last_day, days)
    span = {"start": start, "end": end}
    rules, popularity = {}, {}
    for level in LEVELS:
        dim = "product_id" if level == "product" else level
        by_antecedent = defaultdict(list)
        for a, b, *values in _rows(catalog, warehouse, metrics=RULE_METRICS,
                                   dimensions=(f"antecedent.{dim}", f"consequent.{dim}"), **span):
            conf, sup, lift, n_ab, n_a, n_b, n = values
            if n_ab:
                by_antecedent[a].append(Rule(a, b, float(conf), float(sup), float(lift or 0.0), int(n_ab),
                                             int(n_a), int(n_b), int(n)))
        pop = {k: int(v or 0) for k, v in _rows(catalog, warehouse, metrics=("product_purchase_frequency",),
                                                dimensions=(f"product.{dim}",), **span)}
        rules[level] = {a: tuple(sorted(rs, key=lambda r: (-r.confidence, -r.lift, -pop.get(r.consequent, 0),
                                                           _sort_key(r.consequent))))
                        for a, rs in by_antecedent.items()}
        popularity[level] = pop
    groups = defaultdict(list)
    for segment, country, product_id, freq in _rows(
            catalog, warehouse, metrics=("product_purchase_frequency",),
            dimensions=("customer.segment", "customer.country_code", "product.product_id"), **span):
        if freq:
            groups[(segment, country)].append((product_id, int(freq)))
    group_popularity = {k: tuple(sorted(v, key=lambda x: (-x[1], x[0]))) for k, v in groups.items()}
    return Window(days, start, end, rules, popularity, group_popularity)


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def build_snapshot(catalog, warehouse, days: int = DEFAULT_WINDOW_DAYS, key: tuple = ()) -> AffinitySnapshot:
    started = time.perf_counter()
    last_day = last_order_date(catalog, warehouse)
    products = {}
    for pid, name, category, subcategory, brand, tier, price, _ in _rows(
            catalog, warehouse, metrics=("catalog_product_count",),
            dimensions=("product.product_id", "product.product_name", "product.category", "product.subcategory",
                        "product.brand", "product.tier", "product.list_price")):
        products[int(pid)] = Product(int(pid), name, category, subcategory, brand, tier, float(price))
    customers = {}
    for cid, segment, country, rfm, _ in _rows(
            catalog, warehouse, metrics=("customer_account_count",),
            dimensions=("customer.customer_id", "customer.segment", "customer.country_code", "customer.rfm_segment")):
        customers[int(cid)] = Customer(int(cid), segment, country, rfm)
    bought = defaultdict(set)
    for cid, pid, freq in _rows(catalog, warehouse, metrics=("product_purchase_frequency",),
                                dimensions=("customer.customer_id", "product.product_id")):
        if freq and cid is not None:
            bought[int(cid)].add(int(pid))
    window = build_window(catalog, warehouse, last_day, days)
    return AffinitySnapshot(
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        build_ms=round((time.perf_counter() - started) * 1000, 1),
        catalog_version=str(getattr(catalog, "version", "")),
        warehouse=_safe(getattr(warehouse, "url", "")),
        last_order_date=last_day,
        products=products, customers=customers,
        history={c: frozenset(p) for c, p in bought.items()},
        window=window, key=key,
        by_name={p.name.lower(): p.product_id for p in products.values()},
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
        self._ready = threading.Event()  # set once a snapshot is published

    @property
    def path(self) -> Path | None:
        return self.project / SNAPSHOT_FILE if self.project else None

    @property
    def snapshot(self) -> AffinitySnapshot | None:
        return self._snapshot

    def key(self) -> tuple:
        warehouse = self._warehouse()
        return (FORMAT, str(getattr(self._catalog(), "version", "")), warehouse_key(str(getattr(warehouse, "url", ""))),
                self.days)

    def refresh(self) -> AffinitySnapshot:
        with self._refresh_lock:  # one build at a time; readers keep the old snapshot meanwhile
            catalog, warehouse = self._catalog(), self._warehouse()
            try:
                key = self.key()
                snapshot = build_snapshot(catalog, warehouse, self.days, key=key)
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                raise
            self._publish(snapshot)
            self.refreshes += 1
            self.last_error = None
            if self.persist:
                self._store(snapshot)
            log.info("recommendation snapshot built in %.0f ms (%d products, %d customers, window %s..%s)",
                     snapshot.build_ms, len(snapshot.products), len(snapshot.customers),
                     snapshot.window.start, snapshot.window.end)
            return snapshot

    def _publish(self, snapshot: AffinitySnapshot) -> None:
        with self._window_lock:
            self._windows = {snapshot.window.days: snapshot.window}
            self._snapshot = snapshot  # one reference assignment: the swap
        self._ready.set()
        if self.freeze_gc:
            import gc

            gc.collect()
            gc.freeze()  # ~10^5 snapshot objects no longer scanned on every gen-2 pass (tail latency)

    def wait(self, timeout_s: float) -> AffinitySnapshot | None:
        """The current snapshot, waiting up to `timeout_s` for the first one."""
        self._ready.wait(timeout_s)
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

    def start_refresh(self) -> threading.Thread:
        """Refresh in a background thread (errors are logged; the current snapshot keeps serving)."""
        def work():
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001
                log.warning("recommendation snapshot refresh failed: %s", error)
        thread = threading.Thread(target=work, daemon=True, name="canon-recommend-build")
        thread.start()
        return thread

    def current(self, *, build: bool = True) -> AffinitySnapshot:
        """The current snapshot; else a persisted one built from the same data; else build one."""
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
        window = build_window(self._catalog(), self._warehouse(), snapshot.last_order_date, days)
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

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 — keep serving the previous snapshot
                log.warning("recommendation snapshot refresh failed, keeping the previous one: %s", error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
