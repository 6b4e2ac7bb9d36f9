"""`canon rollups build|refresh|status|suggest`: pre-aggregations in the warehouse (server/rollups/).

    canon rollups build [NAME]...      materialise them as tables canon_rollups.<name>
    canon rollups refresh [NAME]...    recompute trailing and late partitions (builds what changed)
    canon rollups status               built at, rows, bytes, stale? and the server's refresh schedule
    canon rollups suggest              rollups proposed from the audit log, as YAML

A DuckDB file is written by one process at a time: build while no `canon serve` holds it open (a
running server sees the new tables within seconds once it reopens the file). `canon serve` itself
refreshes built rollups on their `refresh.every` (server/rollups/schedule.py).
"""

from __future__ import annotations

import json

import click

_WAREHOUSE = "DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo)."


def _options(f):
    f = click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)(f)
    f = click.option("--warehouse", default=None, help=_WAREHOUSE)(f)
    return click.option("--project", type=click.Path(file_okay=False), default=None,
                        help="Project folder (holds semantic_models/ and metrics/). Default: here or a parent.")(f)


def _open(project, warehouse, names=()):
    """The catalog and a writing session; names are checked first (a typo never touches the warehouse)."""
    from canon.compiler.compile import load_catalog
    from canon.server.project import find_project, warehouse_url
    from canon.server.rollups.build import selected
    from canon.server.rollups.writer import Writer

    root = find_project(project)
    catalog = load_catalog(root)
    selected(catalog, names)
    return catalog, Writer(warehouse_url(root, warehouse)), root


@click.group(name="rollups")
def rollups_group():
    """Rollups (pre-aggregations): build, refresh, status, suggest."""


def _run(action, project, warehouse, names, fmt):
    catalog, writer, _ = _open(project, warehouse, names)
    with writer:
        outcomes = action(catalog, writer, names)
    if fmt == "json":
        click.echo(json.dumps([o.to_dict() for o in outcomes]))
        return
    for o in outcomes:
        ranges = "" if not o.partitions else " (partitions " + ", ".join(
            f"{s or '…'}..{e or '…'}" for s, e in o.partitions) + ")"
        click.echo(f"{o.name}: {o.action}, {o.rows:,} rows, {o.bytes:,} bytes in {o.seconds:.2f} s{ranges}")


@rollups_group.command(name="build")
@_options
@click.argument("names", nargs=-1)
def build_command(project, warehouse, fmt, names):
    """Build rollups (all, or those named) as tables canon_rollups.<name>."""
    from canon.server.rollups.build import build

    _run(build, project, warehouse, names, fmt)


@rollups_group.command(name="refresh")
@_options
@click.argument("names", nargs=-1)
def refresh_command(project, warehouse, fmt, names):
    """Recompute the trailing and late partitions; build rollups that are new or changed."""
    from canon.server.rollups.build import refresh

    _run(refresh, project, warehouse, names, fmt)


@rollups_group.command(name="status")
@_options
def status_command(project, warehouse, fmt):
    """Each rollup: built at, rows, bytes, stale?"""
    from canon.server.rollups.status import status

    catalog, writer, root = _open(project, warehouse)
    with writer:
        rows = status(catalog, writer)
        schedules = _schedules(catalog, writer, root)
    for r in rows:
        r["schedule"] = schedules[r["name"]]
    if fmt == "json":
        click.echo(json.dumps(rows))
        return
    for r in rows:
        plan = _schedule_text(r["schedule"])
        if not r["built"]:
            click.echo(f"{r['name']}: not built{plan}")
            continue
        state = f"STALE: {r['why']}" if r["stale"] else "fresh"
        click.echo(f"{r['name']}: built {r['built_at']}, refreshed {r['refreshed_at']}, {r['rows']:,} rows, "
                   f"{r['bytes']:,} bytes, {state}{plan}")


def _schedules(catalog, writer, root) -> dict:
    """Each rollup's refresh schedule as `canon serve` runs it (its last runs kept in .canon/rollups.json)."""
    import time

    from canon.compiler.errors import CanonError
    from canon.server.project import load_config
    from canon.server.rollups.schedule import ScheduleSettings, entry, recorded
    from canon.server.rollups.store import read_state

    try:
        built = read_state(writer)
    except CanonError:  # no state table: nothing built yet
        built = {}
    enabled, runs, now = ScheduleSettings.from_config(load_config(root)).enabled, recorded(root), time.time()
    return {name: entry(catalog, name, built.get(name), runs.get(name, {}), enabled, now) for name in catalog.rollups}


def _schedule_text(s: dict) -> str:
    if s["status"] in ("off", "unscheduled", "not built"):
        return f"; schedule: {s['status']}"
    text = f"; every {s['every']}, next due {s['next_due_at']}"
    if s["last_run_at"]:
        text += f", server's last run {s['last_run_at']}"
    return text + (f", FAILED: {s['last_error']}" if s["last_error"] else "")


@rollups_group.command(name="suggest")
@click.option("--project", type=click.Path(file_okay=False), default=None,
              help="Project folder (holds semantic_models/ and metrics/). Default: here or a parent.")
@click.option("--limit", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--format", "-f", "fmt", type=click.Choice(("yaml", "json")), default="yaml", show_default=True)
def suggest_command(project, limit, fmt):
    """Rollups proposed from the audit log (what is asked often and no rollup answers)."""
    import yaml

    from canon.compiler.compile import load_catalog
    from canon.compiler.errors import ConfigError
    from canon.server.project import find_project, load_config
    from canon.server.rollups.suggest import suggest
    from canon.server.runtime.audit import AuditSettings, read_audit

    root = find_project(project)
    settings = AuditSettings.from_config(load_config(root), root)
    if settings.path is None or not settings.path.is_file():
        raise ConfigError(f"no audit log at {settings.path}", hint="queries are logged by `canon serve` and "
                          "`canon query` while canon.yml `audit:` is enabled (the default)")
    proposals = suggest(load_catalog(root), read_audit(settings.path), limit=limit)
    if fmt == "json":
        click.echo(json.dumps(proposals))
        return
    if not proposals:
        click.echo("# every frequent query is answered by a declared rollup (or none can be stored)")
        return
    for p in proposals:
        note = f"  # {p['queries']} queries, {p['total_ms']:.0f} ms in all"
        if p["left_out"]:
            note += f"; left out (not storable): {', '.join(p['left_out'])}"
        click.echo(note)
        click.echo(yaml.safe_dump([p["rollup"]], sort_keys=False, default_flow_style=None).rstrip())
