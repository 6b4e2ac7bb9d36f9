"""Recommendation feedback: never lost.

How an event reaches the warehouse table `recommendation_feedback`
(semantic_models/recommendation_feedback.yml, metrics in metrics/recommendations.yml):

1. `FeedbackJournal.append` writes the event as one JSON line to
   `<project>/.canon/recommendation_feedback.jsonl` and fsyncs it (and, for a new file, the folder)
   BEFORE the HTTP handler answers 2xx. An accepted event is on disk even if the process is killed
   the next instant.
2. `load_into_warehouse` copies journal events into the table, idempotently on `event_id`
   (events already in the table are skipped), creating the table when it is missing:
   - PostgreSQL: right after each accepted event (an INSERT), and the whole journal on server start,
     so events accepted before a crash are loaded when the server comes back;
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
