"""The runtime's rollup router: which built rollups may answer, and the rewrite of a request onto one.

A rollup answers only if its table was built from the current definitions (its fingerprint), its
sources have no rows newer than its last fill (freshness watermarks: stale rollups are skipped, not
trusted), and compiler/rollups.answer finds the request exact over it. A request never queries the
warehouse for that state: a server reads it in the background every `interval_s` (`start`); a one-shot
caller (the CLI, a notebook) calls `read(catalog)` first. Until a read, every request goes raw.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from canon.compiler.catalog import Catalog
from canon.compiler.errors import CanonError
from canon.compiler.request import QueryRequest
from canon.compiler.rollups import RollupLayout, Routed, answer, plan_rollups, rollup_table

from .store import BuiltState, parse_rows, read_query

log = logging.getLogger("canon.rollups")
ROUTES_KEPT = 512


@dataclass(frozen=True)
class Route:
    routed: Routed
    name: str
    stamp: str


class RollupRouter:
    def __init__(self, run_sql, interval_s: float = 5.0):
        self._run_sql = run_sql  # Canon-built SQL on the runtime's warehouse (read-only)
        self.interval_s = interval_s
        self._state: tuple[float, dict[str, BuiltState], dict[str, str | None]] | None = None
        self._layouts: dict[tuple, dict[str, RollupLayout]] = {}
        self._routes: OrderedDict = OrderedDict()  # dashboards repeat their requests: (request, builds) -> route
        self._routes_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what is built ---------------------------------------------------------------------------

    def state(self, catalog: Catalog) -> tuple[dict[str, BuiltState], dict[str, str | None]]:
        """(built rollups, current watermarks of their monitored sources) as last read."""
        current = self._state
        return (current[1], current[2]) if current is not None else ({}, {})

    def read(self, catalog: Catalog):
        from .build import iso

        started = time.monotonic()
        built: dict[str, BuiltState] = {}
        marks: dict[str, str | None] = {}
        if catalog.rollups:
            try:
                built = parse_rows(self._run_sql(read_query())[1])
                for model in sorted({m for s in built.values() for m in s.watermarks}):
                    if model in catalog.models and catalog.models[model].definition.freshness is not None:
                        from ..governance.freshness import freshness_query

                        value = self._run_sql(freshness_query(catalog.models[model]))[1][0][0]
                        marks[model] = iso(value) if value is not None else None
            except CanonError as error:  # not built yet, or the warehouse is away: the raw path answers
                log.debug("rollup state not read: %s", error.message)
                built, marks = {}, {}
            except (TypeError, ValueError, IndexError) as error:  # a state table not in our shape: none usable
                log.warning("rollup state unreadable (%s); answering from the raw tables", error)
                built, marks = {}, {}
        with self._lock:  # a read that began before another one (say, before a refresh committed) is older
            if self._state is None or self._state[0] <= started:
                self._state = (started, built, marks)
            return self._state

    def layouts(self, catalog: Catalog, dialect: str) -> dict[str, RollupLayout]:
        key = (id(catalog), catalog.version, dialect)
        found = self._layouts.get(key)
        if found is None:
            with self._lock:
                found = self._layouts.get(key)
                if found is None:
                    found = plan_rollups(catalog, dialect)
                    self._layouts = {key: found}  # one catalog version at a time
        return found

    def usable(self, catalog: Catalog, dialect: str) -> list[tuple[RollupLayout, BuiltState]]:
        """Built, current and fresh rollups, smallest first."""
        built, marks = self.state(catalog)
        found = []
        for name, lay in self.layouts(catalog, dialect).items():
            state = built.get(name)
            if state is None or state.fingerprint != lay.fingerprint:
                continue
            if any(marks.get(m) is not None and (mark is None or marks[m] > mark) for m, mark in state.watermarks.items()):
                continue  # new source rows since the last fill: stale until refreshed
            found.append((lay, state))
        return sorted(found, key=lambda pair: (pair[1].rows, pair[0].name))

    # --- routing -----------------------------------------------------------------------------------

    def route(self, catalog: Catalog, request: QueryRequest, dialect: str) -> Route | None:
        if not catalog.rollups:
            return None
        usable = self.usable(catalog, dialect)
        if not usable:
            return None
        # a relative range moves with the clock unless "today" is pinned: not remembered then
        remember = not request.time_range or request.today or catalog.settings.calendar.now
        key = (id(catalog), catalog.version, request, dialect, tuple((lay.name, s.stamp) for lay, s in usable))
        if remember:
            with self._routes_lock:
                if key in self._routes:
                    self._routes.move_to_end(key)
                    return self._routes[key]
        found = None
        for lay, state in usable:
            routed = answer(catalog, request, lay, rollup_table(lay.name), dialect)
            if isinstance(routed, Routed):
                found = Route(routed, lay.name, state.stamp)
                break
        if remember:
            with self._routes_lock:
                self._routes[key] = found
                while len(self._routes) > ROUTES_KEPT:
                    self._routes.popitem(last=False)
        return found

    def why_not(self, catalog: Catalog, request: QueryRequest, dialect: str) -> dict[str, str]:
        """Per rollup, why it does not answer the request (status and tests)."""
        built, _ = self.state(catalog)
        usable = {lay.name for lay, _ in self.usable(catalog, dialect)}
        reasons = {}
        for name, lay in self.layouts(catalog, dialect).items():
            if name not in built:
                reasons[name] = "not built"
            elif name not in usable:
                reasons[name] = "stale (definitions or source data changed since it was built)"
            else:
                routed = answer(catalog, request, lay, rollup_table(name), dialect)
                reasons[name] = routed if isinstance(routed, str) else "answers"
        return reasons

    # --- servers: keep the state current in the background ---------------------------------------

    def start(self, catalog_of) -> "RollupRouter":
        def run():
            while not self._stop.is_set():
                try:
                    self.read(catalog_of())
                except Exception:  # noqa: BLE001 — the router must survive a warehouse that is down
                    log.warning("reading the rollup state failed", exc_info=True)
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=run, name="canon-rollups", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
