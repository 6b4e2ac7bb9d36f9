"""Build and refresh rollup tables in the warehouse.

build: every leaf's compiled request fills a new table (`<name>__new`), which replaces the old one and
its state row in one transaction, so readers see the old rollup or the new one, never half of one.

refresh: a rollup partitioned by time recomputes only some partitions, in one transaction: the last
`refresh.lookback` ones (and anything newer), plus every partition holding rows that arrived since
the last fill, found by the sources' `freshness.loaded_at` watermark (late data, restated rows) on
models whose time dimension is their own. A rollup whose definitions changed, or that was never
built, is built instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlglot import exp

from canon.compiler.calendar import TimeContext, next_period, period_start
from canon.compiler.catalog import Catalog
from canon.compiler.errors import UnknownNameError, did_you_mean
from canon.compiler.refs import time_expr
from canon.compiler.rollups import (RollupLayout, build_parts, insert_part, plan_rollups, rollup_table,
                                    time_bounds, typed_empty)

from .store import BuiltState, ensure_schema, exclusive, read_state, write_state


@dataclass(frozen=True)
class Outcome:
    name: str
    action: str  # built | refreshed
    rows: int
    bytes: int
    seconds: float
    partitions: tuple[tuple[str | None, str | None], ...] = ()  # refreshed ranges [start, end)

    def to_dict(self) -> dict:
        return {"name": self.name, "action": self.action, "rows": self.rows, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "partitions": [list(p) for p in self.partitions]}


def selected(catalog: Catalog, names) -> list[str]:
    if not catalog.rollups:
        raise UnknownNameError("the catalog declares no rollups", hint="declare them under `rollups:` in a metrics file")
    for name in names or ():
        if name not in catalog.rollups:
            raise UnknownNameError(f"unknown rollup '{name}'", hint=did_you_mean(name, catalog.rollups))
    return list(names) if names else sorted(catalog.rollups)


def build(catalog: Catalog, writer, names=()) -> list[Outcome]:
    ensure_schema(writer)
    layouts = plan_rollups(catalog, writer.dialect)
    done = []
    for name in selected(catalog, names):
        with exclusive(writer, name):
            done.append(_build(catalog, writer, layouts[name]))
    return done


def refresh(catalog: Catalog, writer, names=()) -> list[Outcome]:
    ensure_schema(writer)
    layouts = plan_rollups(catalog, writer.dialect)
    done = []
    for name in selected(catalog, names):
        lay = layouts[name]
        with exclusive(writer, name):
            built = read_state(writer).get(name)  # as of the lock: another session may just have refreshed it
            if built is None or built.fingerprint != lay.fingerprint or not lay.definition.partition_by:
                done.append(_build(catalog, writer, lay))
            else:
                done.append(_refresh(catalog, writer, lay, built))
    return done


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _build(catalog: Catalog, writer, lay: RollupLayout) -> Outcome:
    started = datetime.now()
    marks = watermarks(catalog, writer, lay)  # before reading: rows landing meanwhile are caught next time
    parts = build_parts(catalog, lay, writer.dialect)
    new, final = rollup_table(lay.name, "__new"), rollup_table(lay.name)
    writer.execute(exp.Drop(tables=[new.copy()], kind="TABLE", exists=True))
    writer.execute(exp.Create(this=new.copy(), kind="TABLE", expression=typed_empty(lay, parts)))
    for leaf, tree in parts:
        writer.execute(insert_part(new, lay, leaf, tree))
    rows = _count(writer, new)
    size = table_bytes(writer, new)
    now = _now()
    state = BuiltState(lay.name, lay.fingerprint, secrets.token_hex(8), now, now, rows, size, marks)
    with writer.transaction():
        writer.execute(exp.Drop(tables=[final.copy()], kind="TABLE", exists=True))
        writer.execute(exp.Alter(this=new.copy(), kind="TABLE",
                                 actions=[exp.AlterRename(this=exp.Table(this=final.this.copy()))]))
        write_state(writer, state)
    return Outcome(lay.name, "built", rows, size, (datetime.now() - started).total_seconds())


def _refresh(catalog: Catalog, writer, lay: RollupLayout, built: BuiltState) -> Outcome:
    started = datetime.now()
    marks = watermarks(catalog, writer, lay)
    ranges = stale_partitions(catalog, writer, lay, built)
    table = rollup_table(lay.name)
    with writer.transaction():
        for start, end in ranges:
            writer.execute(exp.delete(table.copy(), where=exp.and_(*time_bounds(lay, start, end)) if start or end else None))
            for leaf, tree in build_parts(catalog, lay, writer.dialect, start, end):
                writer.execute(insert_part(table, lay, leaf, tree))
        rows = _count(writer, table)
        state = BuiltState(lay.name, lay.fingerprint, secrets.token_hex(8), built.built_at, _now(), rows,
                           built.bytes, {**built.watermarks, **marks})
        write_state(writer, state)
    return Outcome(lay.name, "refreshed", rows, built.bytes, (datetime.now() - started).total_seconds(), tuple(ranges))


def stale_partitions(catalog: Catalog, writer, lay: RollupLayout, built: BuiltState) -> list[tuple[str | None, str | None]]:
    """[start, end) ranges to recompute: the trailing `lookback` partitions onwards, and late partitions."""
    grain, ctx = lay.definition.partition_by, _context(catalog)
    latest = writer.execute(exp.select(exp.Max(this=exp.column(lay.time.column))).from_(rollup_table(lay.name)))[0][0]
    if latest is None:
        return [(None, None)]
    start = period_start(iso(latest), grain, ctx)
    lookback = lay.definition.refresh.lookback
    if lookback == 0:
        start = next_period(start, grain, ctx)
    for _ in range(max(lookback - 1, 0)):
        start = period_start((datetime.fromisoformat(start) - timedelta(days=1)).isoformat(sep=" "), grain, ctx)
    ranges = {(start, None)}
    for model, mark in built.watermarks.items():
        for period in _late_periods(catalog, writer, model, mark, grain, ctx):
            if period < start:
                ranges.add((period, next_period(period, grain, ctx)))
    return sorted(ranges, key=lambda r: r[0])


def _late_periods(catalog: Catalog, writer, name: str, mark: str | None, grain: str, ctx: TimeContext) -> list[str]:
    """Partitions of a model's own time dimension holding rows loaded after `mark`."""
    from canon.compiler.sqlexpr import parse_definition_expr

    model = catalog.models.get(name)
    time = model.default_time if model is not None else None
    if mark is None or time is None or time.model != model.name or model.definition.freshness is None:
        return []  # its time lives on another model: the lookback window covers it
    loaded = parse_definition_expr(model.definition.freshness.loaded_at, None, what=f"freshness.loaded_at of {name}")
    loaded = loaded.transform(lambda n: exp.column(n.name, table=exp.to_identifier(name, quoted=True))
                              if isinstance(n, exp.Column) and not n.table else n)
    query = exp.select(exp.alias_(time_expr(time, grain, ctx), "p")).distinct().from_(model.source.copy()).where(
        exp.GT(this=loaded, expression=exp.cast(exp.Literal.string(mark), exp.DataType.Type.TIMESTAMP)))
    return sorted(iso(row[0]) for row in writer.execute(query) if row[0] is not None)


def watermarks(catalog: Catalog, writer, lay: RollupLayout) -> dict[str, str | None]:
    """The newest loaded_at of each monitored model the rollup reads."""
    from ..governance.freshness import freshness_query

    found = {}
    for model in sources(catalog, lay):
        value = writer.execute(freshness_query(catalog.models[model]))[0][0]
        found[model] = iso(value) if value is not None else None
    return found


def sources(catalog: Catalog, lay: RollupLayout) -> list[str]:
    """Monitored models (with `freshness:`) feeding the rollup's leaves."""
    names = {m for leaf in lay.leaves if leaf.metric in catalog.facts for m in catalog.facts[leaf.metric].models}
    return sorted(n for n in names if n in catalog.models and catalog.models[n].definition.freshness is not None)


def _context(catalog: Catalog) -> TimeContext:
    from canon.compiler.calendar import WEEKDAYS

    calendar = catalog.settings.calendar
    return TimeContext(None, WEEKDAYS.index(calendar.week_start), calendar.fiscal_year_start_month, catalog.stored_dates)


def iso(value) -> str:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if hasattr(value, "isoformat"):  # a date
        return datetime(value.year, value.month, value.day).isoformat(sep=" ")
    return str(value)


def _count(writer, table: exp.Table) -> int:
    return int(writer.execute(exp.select(exp.Count(this=exp.Star())).from_(table.copy()))[0][0])


def table_bytes(writer, table: exp.Table) -> int:
    """On-disk size: PostgreSQL's relation size; DuckDB's storage blocks the table uses (after a checkpoint)."""
    schema, name = table.db, table.name
    if writer.dialect == "postgres":
        tree = exp.select(exp.Anonymous(this="pg_total_relation_size", expressions=[
            exp.cast(exp.Literal.string(f'"{schema}"."{name}"'), exp.DataType.build("regclass", udt=True))]))
        return int(writer.execute(tree)[0][0] or 0)
    writer.execute("CHECKPOINT")
    info = exp.Anonymous(this="pragma_storage_info", expressions=[exp.Literal.string(f"{schema}.{name}")])
    tree = exp.select(exp.Count(this=exp.Distinct(expressions=[exp.column("block_id")]))).from_(info).where(
        exp.column("persistent"))
    return int(writer.execute(tree)[0][0] or 0) * 262144
