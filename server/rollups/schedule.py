"""Rollups refreshed by the server on their schedule (Cube's refresh worker, `scheduledRefresh`).

`canon serve` refreshes every built rollup whose `refresh.every` has passed since its last refresh (by
anyone: the state table's `refreshed_at`, so a cron `canon rollups refresh` counts too), in a
background thread, with the same incremental refresh as the CLI (build.refresh: trailing and late
partitions; a rollup whose definitions changed is rebuilt). A rollup never built is left alone: its
first build is `canon rollups build`, a decision about warehouse space. The schedule is opt-in, canon.yml
`rollups: {schedule: true}` (otherwise cron runs `canon rollups refresh`): on a DuckDB file the server
reopens the file read-write for each refresh, and queries still running 5 s into that switch are
interrupted (their callers are told to run them again); PostgreSQL has no such pause.

A failed refresh is logged, kept in `.canon/rollups.json` (last run, last error; tried again after
min(every, 5 min)) and shown by `/v1/status` and `canon rollups status`; the router keeps answering
from the table as it was (or raw, when its sources moved on). One refresh of a rollup at a time: in the
process a lock per rollup, across processes the warehouse (store.exclusive: a PostgreSQL advisory lock;
a DuckDB file admits one writing process). After a refresh the router re-reads the state at once, so
the next request sees the new stamp (and misses the result cache).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from canon.compiler.catalog import Catalog
from canon.compiler.errors import CanonError, ConfigError, did_you_mean
from canon.compiler.model import duration_seconds

from ..periodic import Periodic, RunLog, epoch, next_due, now_iso

log = logging.getLogger("canon.rollups")
STATE_FILE = ".canon/rollups.json"
TICK_S = 30.0  # how often the server looks for due rollups
SETTINGS = {"schedule": "true: `canon serve` refreshes built rollups on their `refresh.every` (default false)"}


@dataclass(frozen=True)
class ScheduleSettings:
    enabled: bool = False  # opt-in: a DuckDB refresh pauses the server's queries (module docstring)

    @classmethod
    def from_config(cls, config: dict) -> "ScheduleSettings":
        section = config.get("rollups")
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `rollups` must be a mapping", hint="rollups: {schedule: false}")
        for key in section:
            if key not in SETTINGS:
                raise ConfigError(f"canon.yml: rollups.{key} is not a known setting",
                                  hint=did_you_mean(str(key), SETTINGS) or "valid: " + ", ".join(SETTINGS))
        enabled = section.get("schedule", False)
        if not isinstance(enabled, bool):
            raise ConfigError(f"canon.yml: rollups.schedule must be true or false, not {enabled!r}")
        return cls(enabled)


def scheduled(catalog: Catalog) -> dict[str, float]:
    """Rollups with `refresh.every`, and that period in seconds."""
    return {name: duration_seconds(r.refresh.every) for name, r in sorted(catalog.rollups.items()) if r.refresh.every}


def entry(catalog: Catalog, name: str, built, last: dict, enabled: bool, now: float) -> dict:
    """One rollup's schedule: its period, last run and error, when it is due next, and a status
    (off | unscheduled | not built | scheduled | failed); whether its data is current is `canon rollups
    status`'s `stale`, and the router's business."""
    every = catalog.rollups[name].refresh.every
    refreshed = built.refreshed_at if built is not None else None  # by anyone: this server, cron's CLI
    failed = bool(last.get("error")) and not (refreshed and last.get("started_at") and
                                               epoch(refreshed) > epoch(last["started_at"]))
    due = None
    if not enabled:
        status = "off"
    elif not every:
        status = "unscheduled"
    elif built is None:
        status = "not built"
    else:
        at = next_due(duration_seconds(every), refreshed, last.get("started_at"), failed)
        due = _iso(at if at is not None else now)
        status = "failed" if failed else "scheduled"
    return {"name": name, "every": every, "status": status, "built": built is not None, "refreshed_at": refreshed,
            "last_run_at": last.get("started_at"), "last_success_at": last.get("last_success_at"),
            "last_action": last.get("action"), "partitions": last.get("partitions"), "seconds": last.get("seconds"),
            "last_error": last.get("error") if failed else None, "next_due_at": due}


class RollupSchedule:
    """Refreshes the runtime's rollups when due; `start()` runs it in the background."""

    def __init__(self, runtime, project, settings: ScheduleSettings = ScheduleSettings()):
        self._runtime = runtime
        self.settings = settings
        self._log = RunLog(project, STATE_FILE)
        self._busy: dict[str, threading.Lock] = {}
        self._busy_lock = threading.Lock()
        self._periodic: Periodic | None = None

    def _built(self, catalog: Catalog) -> dict:
        built, _ = self._runtime.rollups.state(catalog)  # as the router last read it
        return built

    def due(self, now: float | None = None, catalog: Catalog | None = None) -> list[str]:
        catalog = catalog or self._runtime.catalog
        now = time.time() if now is None else now
        built = self._built(catalog)
        found = []
        for name in scheduled(catalog):
            row = entry(catalog, name, built.get(name), self._log.get(name), True, now)
            if row["next_due_at"] is not None and epoch(row["next_due_at"]) <= now:
                found.append(name)
        return found

    def status(self, catalog: Catalog | None = None, now: float | None = None) -> list[dict]:
        catalog = catalog or self._runtime.catalog
        now = time.time() if now is None else now
        built = self._built(catalog)
        return [entry(catalog, name, built.get(name), self._log.get(name), self.settings.enabled, now)
                for name in sorted(catalog.rollups)]

    def refresh(self, name: str) -> dict:
        """Refresh one rollup now (unless it is being refreshed already) and record what happened."""
        from .build import refresh

        with self._busy_lock:
            busy = self._busy.setdefault(name, threading.Lock())
        if not busy.acquire(blocking=False):
            return {"name": name, "skipped": "a refresh of it is running"}
        try:
            catalog = self._runtime.catalog
            started, clock = now_iso(), time.perf_counter()
            run = {"started_at": started, "error": None, "action": None, "rows": None, "partitions": None}
            try:
                self._runtime.warehouse()  # open (read-only) first: a DuckDB file is then reopened for the write
                with self._runtime.writer() as writer:
                    [outcome] = refresh(catalog, writer, [name])
                run.update(action=outcome.action, rows=outcome.rows,
                           partitions=[list(p) for p in outcome.partitions])
            except CanonError as error:
                run["error"] = error.message
            except Exception as error:  # noqa: BLE001 — a bug in one refresh must not stop the schedule
                log.exception("refreshing rollup %s failed", name)
                run["error"] = f"internal error: {type(error).__name__}: {error}"
            run["seconds"] = round(time.perf_counter() - clock, 3)
            self._runtime.rollups.read(catalog)  # the new stamp, for the very next request (and status)
            previous = self._log.get(name)
            run["last_success_at"] = started if run["error"] is None else previous.get("last_success_at")
            self._log.put(name, {**previous, **run})
            if run["error"]:
                log.warning("scheduled refresh of rollup %s failed: %s", name, run["error"])
            else:
                log.info("rollup %s %s in %.2f s", name, run["action"], run["seconds"])
            return {"name": name, **run}
        finally:
            busy.release()

    def run_due(self, now: float | None = None, stopping: threading.Event | None = None) -> list[dict]:
        """One pass of the schedule: read the built state, refresh what is due."""
        if not self.settings.enabled:
            return []
        catalog = self._runtime.catalog
        if not scheduled(catalog):
            return []
        self._runtime.rollups.read(catalog)
        done = []
        for name in self.due(now, catalog):
            if stopping is not None and stopping.is_set():
                break
            done.append(self.refresh(name))
        return done

    def start(self, tick_s: float | None = None) -> "RollupSchedule":
        if self.settings.enabled:
            self._periodic = Periodic("canon-rollup-refresh", lambda stopping: self.run_due(stopping=stopping),
                                      tick_s or TICK_S).start()
        return self

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.stop()


def recorded(project) -> dict[str, dict]:
    """What the server's schedule last did, per rollup (for `canon rollups status`)."""
    return RunLog(project, STATE_FILE).runs


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
