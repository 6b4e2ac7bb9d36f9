"""Saved-query exports: a reviewed question's answer written on a schedule (issue 18).

A saved query's `exports:` name where its rows go — a file in the project (Parquet or CSV) or a
warehouse table — and how often `canon serve` refreshes them (`every: 24h`); `canon exports run`
runs them by hand. Each run replaces the target whole, atomically: a file is written beside the old
one and renamed over it; a table is created under a new name and swapped in one transaction. Exports
run as Canon itself (the catalog reviewed them), never capped.

What each export last did is kept in `.canon/exports.json`, so `/v1/status` and `canon exports
status` show every export's freshness (fresh, stale, failed, never run) across restarts.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlglot import exp

from canon.compiler.catalog import Catalog
from canon.compiler.errors import CanonError, UnknownNameError, WarehouseError, did_you_mean
from canon.compiler.model import Export, duration_seconds
from canon.compiler.saved import saved_query_request

from .access import SYSTEM
from ..periodic import Periodic, RunLog, epoch as _epoch, is_due, now_iso as _now

log = logging.getLogger("canon.exports")
STATE_FILE = ".canon/exports.json"


@dataclass
class ExportRun:
    name: str
    saved_query: str
    target: str
    started_at: str
    seconds: float
    rows: int | None = None
    error: str | None = None


def exports_of(catalog: Catalog) -> dict[str, tuple[str, Export]]:
    """Every export of the catalog by name: (saved query, export)."""
    return {e.name: (name, e) for name, sq in catalog.saved_queries.items() for e in sq.exports}


def target_of(export: Export) -> str:
    return f"file:{export.file}" if export.file else f"table:{export.table}"


class Exports:
    """Runs exports and remembers what they did; `start()` runs the scheduled ones in the background."""

    def __init__(self, runtime, project: Path | None):
        self._runtime = runtime
        self._project = Path(project) if project is not None else None
        self._log = RunLog(self._project, STATE_FILE)
        self._schedule: Periodic | None = None

    # --- running --------------------------------------------------------------------------------

    def run(self, names=()) -> list[ExportRun]:
        """Run the named exports (all of them when none is named), one after the other."""
        found = exports_of(self._runtime.catalog)
        if not found:
            raise UnknownNameError("the catalog declares no exports",
                                   hint="add `exports:` to a saved query, e.g. [{name: spend_file, file: exports/spend.parquet}]")
        for name in names:
            if name not in found:
                raise UnknownNameError(f"unknown export '{name}'", hint=did_you_mean(name, found))
        order = names or sorted(found, key=lambda n: (found[n][1].table is None, n))  # tables first
        return [self._run_one(name, *found[name]) for name in order]

    def _run_one(self, name: str, saved: str, export: Export) -> ExportRun:
        started, clock = _now(), time.perf_counter()
        run = ExportRun(name, saved, target_of(export), started, 0.0)
        try:
            catalog = self._runtime.catalog
            request = saved_query_request(catalog, saved)
            run.rows = self._to_file(request, export.file) if export.file else self._to_table(request, export.table)
        except CanonError as error:
            run.error = error.message
        except OSError as error:
            run.error = f"cannot write {export.file}: {error.strerror or error}"
        run.seconds = round(time.perf_counter() - clock, 3)
        (log.warning if run.error else log.info)("export %s -> %s: %s", name, run.target, run.error or f"{run.rows} rows")
        self._remember(run)
        return run

    def _to_file(self, request, file: str) -> int:
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq

        from ..arrow_answer import arrow_table

        if self._project is None:
            raise WarehouseError("a file export needs a project folder")
        result = self._runtime.query(request, identity=SYSTEM, capped=False, use_cache=False)
        table = arrow_table(result)
        path = self._project / file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        if file.endswith(".parquet"):
            pq.write_table(table, partial)
        else:
            pa_csv.write_csv(table, partial)
        os.replace(partial, path)  # readers see the old file or the new one, never half of one
        return table.num_rows

    def _to_table(self, request, target: str) -> int:
        # the raw tables (no rollup lookup), so compiling touches no warehouse connection of its own
        request = replace(request, extra={**request.extra, "use_rollups": False})
        prepared = self._runtime.prepare(request, identity=SYSTEM, capped=False)
        schema, name = target.split(".")
        final = exp.table_(name, db=schema, quoted=True)
        fresh = exp.table_(f"{name}__canon_new", db=schema, quoted=True)
        with self._runtime.writer() as writer:  # a DuckDB file the server reads: reopened for writing
            writer.execute(exp.Create(this=exp.Table(db=exp.to_identifier(schema, quoted=True)), kind="SCHEMA", exists=True))
            writer.execute(exp.Drop(tables=[fresh.copy()], kind="TABLE", exists=True))
            writer.execute(exp.Create(this=fresh.copy(), kind="TABLE", expression=prepared.compiled.tree.copy()))
            rows = writer.execute(exp.select(exp.func("COUNT", exp.Star())).from_(fresh.copy()))[0][0]
            with writer.transaction():
                writer.execute(exp.Drop(tables=[final.copy()], kind="TABLE", exists=True))
                writer.execute(exp.Alter(this=fresh.copy(), kind="TABLE",
                                         actions=[exp.AlterRename(this=exp.table_(name, quoted=True))]))
        return int(rows)

    # --- what they did ---------------------------------------------------------------------------

    def status(self, catalog: Catalog | None = None, now: float | None = None) -> list[dict]:
        """Each declared export: target, schedule, last run and success, rows, and its freshness."""
        catalog = catalog or self._runtime.catalog
        now = time.time() if now is None else now
        answer = []
        for name, (saved, export) in sorted(exports_of(catalog).items()):
            last = self._log.get(name)
            success = last.get("last_success_at")
            every = duration_seconds(export.every) if export.every else None
            if not last:
                state = "never"
            elif last.get("error"):
                state = "failed"
            elif every is not None and success and now - _epoch(success) > 2 * every:
                state = "stale"
            else:
                state = "fresh"
            answer.append({"name": name, "saved_query": saved, "target": target_of(export), "every": export.every,
                           "status": state, "last_run_at": last.get("started_at"), "last_success_at": success,
                           "rows": last.get("rows"), "seconds": last.get("seconds"), "error": last.get("error")})
        return answer

    def _remember(self, run: ExportRun) -> None:
        previous = self._log.get(run.name)
        entry = {**asdict(run), "last_success_at": run.started_at if run.error is None
                 else previous.get("last_success_at")}
        if run.error is not None:
            entry["rows"] = previous.get("rows")
        self._log.put(run.name, entry)

    # --- the schedule ----------------------------------------------------------------------------

    def due(self, now: float | None = None) -> list[str]:
        """Scheduled exports whose period has passed since their last success (a failure waits
        periodic.RETRY_S, or the period if shorter, before the next try)."""
        now = time.time() if now is None else now
        names = []
        for name, (_, export) in sorted(exports_of(self._runtime.catalog).items()):
            last = self._log.get(name)
            if export.every and is_due(duration_seconds(export.every), last.get("last_success_at"),
                                       last.get("started_at"), bool(last.get("error")), now):
                names.append(name)
        return names

    def start(self, tick_s: float = 30.0) -> "Exports":
        def tick(stopping):
            for name in self.due():
                if stopping.is_set():
                    return
                self._run_one(name, *exports_of(self._runtime.catalog)[name])

        self._schedule = Periodic("canon-exports", tick, tick_s).start()
        return self

    def stop(self) -> None:
        if self._schedule is not None:
            self._schedule.stop()
