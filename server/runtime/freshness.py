"""Source freshness, checked in the background: a query reads the last report and never waits for one.

The monitor runs one small query per monitored source (through the runtime's internal runner, so
the time cap applies) when the catalog changes and every `interval_s` after. Stale-source warnings
are looked up per (catalog version, report, metrics) so a stale source costs a query nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from canon.compiler.catalog import Catalog

log = logging.getLogger("canon.freshness")


def freshness_now(catalog: Catalog) -> dt.datetime | None:
    """The moment ages are measured from: the end of the project's pinned `calendar.now`, or the clock."""
    pinned = catalog.settings.calendar.now
    if pinned:
        day = dt.date.fromisoformat(str(pinned)[:10])
        return dt.datetime.combine(day, dt.time(23, 59, 59))
    return None


def monitors_sources(catalog: Catalog) -> bool:
    return any(m.definition.freshness for m in catalog.models.values())


class FreshnessMonitor:
    """Keeps the latest freshness report; `refresh()` computes one now (a background thread calls it)."""

    def __init__(self, catalog_of, runner, interval_s: float = 60.0):
        self._catalog_of, self._runner = catalog_of, runner
        self.interval_s = interval_s
        self._report: tuple | None = None  # (catalog version, report)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: dict = {}  # (version, report, metrics) -> warnings

    def report(self, catalog: Catalog) -> list | None:
        """The last report for this catalog version, or None while none has been made."""
        current = self._report
        if current is None or current[0] != catalog.version:
            self._wake.set()  # a new catalog: check soon, in the background
            return current[1] if current else None
        return current[1]

    def refresh(self) -> list | None:
        catalog = self._catalog_of()
        if not monitors_sources(catalog):
            self._report = (catalog.version, None)
            return None
        from ..governance.freshness import freshness_report

        with self._lock:
            report = tuple(freshness_report(catalog, self._runner, now=freshness_now(catalog)))
            self._report = (catalog.version, report)
        return list(report)

    def warnings(self, catalog: Catalog, metrics: tuple[str, ...]) -> list[str]:
        report = self.report(catalog)
        if not report or all(s.state == "fresh" for s in report):
            return []
        key = (catalog.version, report, tuple(metrics))
        found = self._warned.get(key)
        if found is None:
            from ..governance.freshness import freshness_warnings

            found = freshness_warnings(catalog, list(report), metrics)
            if len(self._warned) > 1024:
                self._warned.clear()
            self._warned[key] = found
        return list(found)

    def start(self) -> "FreshnessMonitor":
        self._thread = threading.Thread(target=self._run, name="canon-freshness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 — the monitor must survive a warehouse that is down
                log.warning("freshness check failed", exc_info=True)
            self._wake.wait(self.interval_s)
            self._wake.clear()
