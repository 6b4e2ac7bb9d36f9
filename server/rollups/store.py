"""The state of built rollups, kept in the warehouse beside them (canon_rollups._canon_state), so every
process on the same warehouse (CLI, servers) sees the same builds.

One row per rollup: the fingerprint of the definitions it was built from (a changed metric makes the
table stale, never wrong), a stamp that changes with every build and refresh (result caches key on
it), when it was built and refreshed, its rows and bytes, and the sources' freshness watermarks
(the newest `loaded_at` of each monitored model) as of its last fill.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from canon.compiler.errors import WarehouseError
from canon.compiler.rollups import SCHEMA, STATE_TABLE
from canon.compiler.render.build import ident

COLUMNS = ("name", "fingerprint", "stamp", "built_at", "refreshed_at", "row_count", "byte_count", "watermarks")
_DDL = (f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{STATE_TABLE} (name TEXT PRIMARY KEY, fingerprint TEXT, stamp TEXT, "
        "built_at TEXT, refreshed_at TEXT, row_count BIGINT, byte_count BIGINT, watermarks TEXT)")


@dataclass(frozen=True)
class BuiltState:
    name: str
    fingerprint: str
    stamp: str
    built_at: str
    refreshed_at: str
    rows: int
    bytes: int
    watermarks: dict = field(default_factory=dict, hash=False, compare=False)  # model -> ISO max loaded_at


def state_table() -> exp.Table:
    return exp.Table(this=ident(STATE_TABLE), db=ident(SCHEMA))


def ensure_schema(writer) -> None:
    writer.execute(exp.Create(this=exp.Table(this=ident(SCHEMA)), kind="SCHEMA", exists=True))
    writer.execute(sqlglot.parse_one(_DDL, read="postgres"))


def read_query() -> exp.Select:
    return exp.select(*[exp.column(c) for c in COLUMNS]).from_(state_table())


def parse_rows(rows) -> dict[str, BuiltState]:
    found = {}
    for name, fingerprint, stamp, built, refreshed, count, size, marks in rows:
        found[name] = BuiltState(name, fingerprint, stamp, built, refreshed, int(count or 0), int(size or 0),
                                 json.loads(marks or "{}"))
    return found


def read_state(writer) -> dict[str, BuiltState]:
    return parse_rows(writer.execute(read_query()))


def write_state(writer, state: BuiltState) -> None:
    """Replace the rollup's row (inside the caller's transaction, with the table swap)."""
    table = state_table()
    writer.execute(exp.delete(table.copy(), where=exp.EQ(this=exp.column("name"), expression=exp.convert(state.name))))
    values = (state.name, state.fingerprint, state.stamp, state.built_at, state.refreshed_at, state.rows, state.bytes,
              json.dumps(state.watermarks, sort_keys=True))
    writer.execute(exp.insert(exp.values([tuple(exp.convert(v) for v in values)]), table.copy(), columns=list(COLUMNS)))


@contextmanager
def exclusive(writer, name: str):
    """One build or refresh of a rollup at a time across processes (the server's schedule, cron's CLI):
    a PostgreSQL advisory lock on the rollup's name, or fail at once naming it. A DuckDB file admits one
    writing process, and a server's writes go one at a time (DuckDBWarehouse.writing)."""
    if writer.dialect != "postgres":
        yield
        return
    key = exp.Literal.number(int.from_bytes(hashlib.sha256(f"canon_rollups.{name}".encode()).digest()[:8], "big", signed=True))
    if not writer.execute(exp.select(exp.Anonymous(this="pg_try_advisory_lock", expressions=[key.copy()])))[0][0]:
        raise WarehouseError(f"rollup '{name}' is being built or refreshed by another session",
                             hint="it ends on its own; run the refresh again afterwards")
    try:
        yield
    finally:
        writer.execute(exp.select(exp.Anonymous(this="pg_advisory_unlock", expressions=[key])))


def forget(writer, name: str) -> None:
    writer.execute(exp.delete(state_table(), where=exp.EQ(this=exp.column("name"), expression=exp.convert(name))))
