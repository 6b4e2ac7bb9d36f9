"""`canon exports run|status`: saved-query exports to files and warehouse tables (server/runtime/exports.py).

    canon exports run [NAME]...     run them now (all when none is named); non-zero exit if one failed
    canon exports status            each export's target, schedule, last run, rows and freshness

`canon serve` runs the exports that have `every:` on their schedule. A table export writes to the
warehouse: on a DuckDB file that needs the file free of other processes (stop `canon serve`, or
export to a file instead).
"""

from __future__ import annotations

import json
import sys

import click


def _options(f):
    f = click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)(f)
    f = click.option("--warehouse", default=None,
                     help="DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo).")(f)
    return click.option("--project", type=click.Path(file_okay=False), default=None,
                        help="Project folder (holds semantic_models/ and metrics/). Default: here or a parent.")(f)


@click.group(name="exports")
def exports_group():
    """Saved-query exports: run them, see how fresh they are."""


@exports_group.command(name="run")
@_options
@click.argument("names", nargs=-1)
def run_command(project, warehouse, fmt, names):
    """Run exports now (all when no NAME is given)."""
    from canon.server.runtime import Runtime

    with Runtime.open(project, warehouse) as runtime:
        runs = runtime.exports.run(tuple(names))
    if fmt == "json":
        click.echo(json.dumps([vars(r) for r in runs]))
    for r in runs if fmt == "text" else ():
        outcome = f"failed: {r.error}" if r.error else f"{r.rows:,} rows in {r.seconds:.2f} s"
        click.echo(f"{r.name} ({r.saved_query} -> {r.target}): {outcome}")
    if any(r.error for r in runs):
        sys.exit(1)


@exports_group.command(name="status")
@_options
def status_command(project, warehouse, fmt):
    """Each export's target, schedule, last run, rows and freshness (fresh, stale, failed, never)."""
    from canon.server.runtime import Runtime

    with Runtime.open(project, warehouse) as runtime:
        entries = runtime.exports.status()
    if fmt == "json":
        click.echo(json.dumps(entries))
        return
    if not entries:
        click.echo("the catalog declares no exports (add `exports:` to a saved query)")
    for e in entries:
        last = e["last_success_at"] or "never"
        click.echo(f"{e['name']}: {e['status']} — {e['saved_query']} -> {e['target']}, every {e['every'] or '(manual)'}, "
                   f"last success {last}, {e['rows'] if e['rows'] is not None else '–'} rows"
                   + (f"; last error: {e['error']}" if e["error"] else ""))
