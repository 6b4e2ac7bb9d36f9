"""Recommendation feedback: never lost.

How an event reaches the warehouse table `recommendation_feedback`
(semantic_models/recommendation_feedback.yml, metrics in metrics/recommendations.yml):

1. `FeedbackJournal.append` writes the event as one JSON line to
   `<project>/.canon/recommendation_feedback.jsonl` and fsyncs it (and, for a new file, the folder)
   BEFORE the HTTP handler answers 2xx. An accepted event is on disk even if the process is killed
   the next instant.
2. `load_into_warehouse` copies journal events into the table, idempotently on `event_id`
   (events already in the table are skipped), creating the table when it is missing:
   - PostgreSQL: `PostgresFeedbackSync` inserts each accepted event right after it is journalled.
     When that fails (PostgreSQL down or unreachable) the event stays in the journal and the sync
     falls "behind": a background thread replays the whole journal every RETRY_S seconds until it
     succeeds, so events accepted during an outage reach the table once PostgreSQL is back, without a
     restart. A server start replays the journal too (events accepted before a crash);
   - DuckDB: the query processes hold the file read-only, so the journal is loaded when the server
     starts (before it opens the warehouse) and by `canon recommendations load-feedback`; a running
     DuckDB-backed server counts new events after its next start.
All SQL is built with sqlglot expressions; values reach it only as literals.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from pathlib import Path

from sqlglot import exp

from canon.compiler.errors import QueryError, WarehouseError

log = logging.getLogger("canon.recommend.feedback")

JOURNAL_FILE = Path(".canon") / "recommendation_feedback.jsonl"
TABLE = "recommendation_feedback"
EVENTS = ("shown", "clicked", "purchased", "dismissed")
COLUMNS = (("event_id", "VARCHAR"), ("customer_id", "BIGINT"), ("product_id", "BIGINT"), ("event", "VARCHAR"),
           ("recommendation_id", "VARCHAR"), ("occurred_at", "TIMESTAMP"), ("received_at", "TIMESTAMP"))
BATCH = 500
RETRY_S = 5.0  # how often a sync that is behind replays the journal into PostgreSQL


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def make_event(customer_id: int, product_id: int, event: str, recommendation_id: str | None = None,
               at: dt.datetime | None = None) -> dict:
    if event not in EVENTS:
        raise QueryError(f"event: {event!r} is not a valid event", hint="valid choices: " + ", ".join(EVENTS))
    now = _utc_naive(dt.datetime.now(dt.timezone.utc))
    occurred = _utc_naive(at) if at is not None else now
    return {"event_id": uuid.uuid4().hex, "customer_id": int(customer_id), "product_id": int(product_id),
            "event": event, "recommendation_id": recommendation_id,
            "occurred_at": occurred.isoformat(sep=" ", timespec="microseconds"),
            "received_at": now.isoformat(sep=" ", timespec="microseconds")}


class FeedbackJournal:
    """Append-only, fsync'd JSON lines; one writer lock per process."""

    def __init__(self, project: Path):
        self.path = Path(project) / JOURNAL_FILE
        self._lock = threading.Lock()

    def append(self, event: dict) -> None:
        line = (json.dumps(event, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with self._lock:
            new = not self.path.exists()
            if new:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:  # the file's directory entry must survive a crash too
                _fsync_dir(self.path.parent)

    def events(self) -> list[dict]:
        """Every complete event; a torn last line (a crash mid-write, before any 2xx) is skipped."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw))
            except ValueError:
                log.warning("skipping a torn line in %s", self.path)
        return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# --- into the warehouse ---------------------------------------------------------------------------


def create_table_sql(dialect: str) -> str:
    schema = exp.Schema(this=exp.to_table(TABLE),
                        expressions=[exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build(kind))
                                     for name, kind in COLUMNS])
    return exp.Create(this=schema, kind="TABLE", exists=True).sql(dialect=dialect)


def existing_ids_sql(dialect: str) -> str:
    return exp.select("event_id").from_(TABLE).sql(dialect=dialect)


def insert_sql(events: list[dict], dialect: str) -> str:
    rows = []
    for e in events:
        values = []
        for name, kind in COLUMNS:
            value = e.get(name)
            literal = exp.convert(value) if value is not None else exp.null()
            values.append(exp.cast(literal, kind) if kind == "TIMESTAMP" and value is not None else literal)
        rows.append(exp.Tuple(expressions=values))
    insert = exp.insert(exp.Values(expressions=rows), exp.Schema(
        this=exp.to_table(TABLE), expressions=[exp.to_identifier(n) for n, _ in COLUMNS]))
    return insert.sql(dialect=dialect)


def load_events(execute, dialect: str, events: list[dict]) -> int:
    """Create the table if needed and insert the events not yet in it. Returns how many were inserted."""
    execute(create_table_sql(dialect))
    _, rows = execute(existing_ids_sql(dialect))
    have = {r[0] for r in rows}
    todo, seen = [], set()
    for e in events:
        if e.get("event_id") and e["event_id"] not in have and e["event_id"] not in seen:
            seen.add(e["event_id"])
            todo.append(e)
    for i in range(0, len(todo), BATCH):
        execute(insert_sql(todo[i:i + BATCH], dialect))
    return len(todo)


def load_into_warehouse(url: str, journal: FeedbackJournal) -> int:
    """Load the whole journal into the warehouse at `url` (a DuckDB file is opened read-write, so no
    other process may hold it)."""
    from ..warehouses.postgres import is_postgres_url

    events = journal.events()
    if is_postgres_url(url):
        from ..warehouses.postgres import PostgresWarehouse

        warehouse = PostgresWarehouse(url)
        try:
            return load_events(warehouse.execute, "postgres", events)
        finally:
            warehouse.close()
    import duckdb

    if not Path(url).is_file():
        raise WarehouseError(f"warehouse {url} does not exist", hint="run `canon demo` first")
    try:
        connection = duckdb.connect(str(url))
    except duckdb.Error as error:
        raise WarehouseError(f"cannot open {url} for writing: {str(error).splitlines()[0]}",
                             hint="another process (canon serve, canon pg) holds the DuckDB file; the journal "
                                  "is loaded when the server starts") from None
    try:
        def execute(sql):
            result = connection.execute(sql)
            return [], (result.fetchall() if result.description else [])

        connection.execute(exp.Transaction().sql(dialect="duckdb"))
        inserted = load_events(execute, "duckdb", events)
        connection.execute(exp.Commit().sql(dialect="duckdb"))
        return inserted
    finally:
        connection.close()


class PostgresFeedbackSync:
    """Keeps the PostgreSQL table in step with the journal, through outages.

        sync = PostgresFeedbackSync(journal, url).start()   # replays the journal at once, in the background
        in_warehouse = sync.deliver(event)                    # after journal.append(event)
        sync.stop()

    Every write (one event, or a replay of the whole journal) holds one lock, so a replay and a delivery
    never insert the same event twice, and "behind" is only cleared by a replay that started after the
    last failure. Replays are idempotent on event_id, so one that overlaps a delivery is harmless."""

    def __init__(self, journal: FeedbackJournal, url: str, *, retry_s: float | None = None):
        self.journal = journal
        self.url = url
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self.replayed = 0  # events the replays have inserted (the ones deliveries could not)
        self.last_error: str | None = None
        self._writer = None
        self._lock = threading.Lock()
        self._behind = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="canon-feedback-sync", daemon=True)

    @property
    def behind(self) -> bool:
        """Some journalled events may not be in the table yet."""
        return self._behind.is_set()

    def start(self, *, replay: bool = True) -> "PostgresFeedbackSync":
        """`replay`: the journal may hold events not in the table (the caller has not just loaded it)."""
        if replay and self.journal.path.exists():
            self._behind.set()  # events accepted before this start: replay them (at once)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._behind.set()  # wake the thread
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def deliver(self, event: dict) -> bool:
        """Insert one journalled event; False when PostgreSQL could not take it (a replay will)."""
        with self._lock:
            try:
                load_events(self._connection().execute, "postgres", [event])
                return True
            except Exception as error:  # noqa: BLE001 — in the journal; the replay thread loads it later
                self._failed(error)
                log.warning("feedback %s journalled, not yet in the warehouse (replayed when it is back): %s",
                            event.get("event_id"), error)
                return False

    def replay(self) -> int:
        """Load the whole journal now; raises when PostgreSQL cannot take it (then still behind)."""
        with self._lock:
            try:
                inserted = load_events(self._connection().execute, "postgres", self.journal.events())
            except Exception as error:
                self._failed(error)
                raise
            self._behind.clear()
            self.last_error = None
            self.replayed += inserted
            return inserted

    def _connection(self):
        if self._writer is None:
            from ..warehouses.postgres import PostgresWarehouse

            self._writer = PostgresWarehouse(self.url)  # read-write (queries use read-only connections)
        return self._writer

    def _failed(self, error: Exception) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        self._behind.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._behind.wait()
            if self._stop.is_set():
                return
            try:
                inserted = self.replay()
                if inserted:
                    log.warning("recommendation feedback: %d journalled event(s) replayed into the warehouse",
                                inserted)
                continue
            except Exception as error:  # noqa: BLE001 — PostgreSQL still away: try again later
                log.info("recommendation feedback replay failed, retrying in %g s: %s", self.retry_s, error)
            self._stop.wait(self.retry_s)
