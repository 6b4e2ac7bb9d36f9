"""`canon`: the command line.

Imports are lazy so `canon compile` starts fast. Every user error ends as one line per problem on
stderr and a non-zero exit; never a traceback (set CANON_DEBUG=1 to see one for a real bug).
"""

from __future__ import annotations

import os
import sys

import click

FORMATS = ("table", "json", "csv")


def _fail(error) -> None:
    for line in str(error).splitlines():
        click.echo(f"error: {line}", err=True)
    sys.exit(2 if getattr(error, "code", "") in ("invalid_catalog", "config_error") else 1)


class CanonGroup(click.Group):
    """Turns Canon errors into messages and exit codes."""

    def invoke(self, ctx):
        from compiler.errors import CanonError

        try:
            return super().invoke(ctx)
        except CanonError as error:
            _fail(error)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as error:  # a bug in Canon, not the user's fault: say so plainly
            if os.environ.get("CANON_DEBUG"):
                raise
            click.echo(f"internal error: {type(error).__name__}: {error} (set CANON_DEBUG=1 for details)", err=True)
            sys.exit(70)


@click.group(cls=CanonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="canon-semantic", prog_name="canon")
def main():
    """Canon: metrics defined once, the same numbers everywhere."""


def _project_option(f):
    return click.option("--project", type=click.Path(file_okay=False), default=None,
                        help="Project folder (holds semantic_models/ and metrics/). Default: here or a parent.")(f)


def _query_options(f):
    options = [
        click.option("--metric", "-m", "metrics", multiple=True, required=True, help="Metric name; repeat for several."),
        click.option("--by", "-b", "dimensions", multiple=True,
                     help="Dimension: model.dimension[.grain], metric_time.<grain>, antecedent./consequent.<dim>."),
        click.option("--where", "-w", "where", multiple=True, help="Filter over dimensions; repeat to AND them."),
        click.option("--order", "-o", "order", multiple=True, help="Metric or dimension; prefix '-' for descending."),
        click.option("--limit", "-l", type=int, default=None, help="At most this many rows."),
        click.option("--start", default=None, help="metric_time from this date/time (inclusive)."),
        click.option("--end", default=None, help="metric_time up to this date (inclusive) or time (exclusive)."),
    ]
    for option in reversed(options):
        f = option(f)
    return _project_option(f)


def _request(metrics, dimensions, where, order, limit, start, end):
    from compiler.request import QueryRequest

    return QueryRequest(metrics=metrics, dimensions=dimensions, where=where, order=order,
                        limit=limit, start=start, end=end)


def _catalog(project, *, cached: bool = True):
    from server.project import find_project

    root = find_project(project)
    if not cached:
        from compiler.compile import load_catalog

        return root, load_catalog(root)
    from server.catalog_cache import load_catalog_cached

    return root, load_catalog_cached(root)


@main.command()
@_query_options
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo).")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def query(project, metrics, dimensions, where, order, limit, start, end, warehouse, fmt):
    """Compute metrics by dimensions on the warehouse."""
    from server.project import warehouse_url
    from server.service import run_query
    from server.warehouse import open_warehouse

    root, catalog = _catalog(project)
    request = _request(metrics, dimensions, where, order, limit, start, end)
    from compiler.compile import compile_request

    compile_request(catalog, request)  # reject bad requests before touching the warehouse
    store = open_warehouse(warehouse_url(root, warehouse))
    try:
        result = run_query(catalog, store, request)
    finally:
        store.close()
    for warning in result.warnings or ():
        click.echo(f"warning: {warning}", err=True)
    _print_result(result, fmt)


def _print_result(result, fmt):
    from server import results

    if fmt == "json":
        click.echo(results.to_json(result))
    elif fmt == "csv":
        click.echo(results.to_csv(result), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for column in result.columns:
            table.add_column(column["name"], justify="right" if column["type"] == "number" else "left")
        kinds = [c["type"] for c in result.columns]
        for row in result.rows:
            table.add_row(*(results.format_cell(v, k) for v, k in zip(row, kinds)))
        console = Console()
        console.print(table)
        console.print(f"{len(result.rows)} row(s) in {result.elapsed_ms:.1f} ms", style="dim")


@main.command(name="compile")
@_query_options
@click.option("--dialect", "-d", default="duckdb", show_default=True,
              help="duckdb, postgres, snowflake, bigquery, spark, trino or clickhouse.")
def compile_command(project, metrics, dimensions, where, order, limit, start, end, dialect):
    """Print the SQL a request compiles to."""
    from compiler.compile import compile_request

    _, catalog = _catalog(project)
    compiled = compile_request(catalog, _request(metrics, dimensions, where, order, limit, start, end),
                               dialect, pretty=True)
    click.echo(compiled.sql)


@main.command()
@_project_option
def validate(project):
    """Check every definition; report every problem as file:line."""
    root, catalog = _catalog(project, cached=False)
    click.echo(f"ok: {len(catalog.models)} semantic models, {len(catalog.metrics)} metrics, "
               f"{len(catalog.saved_queries)} saved queries, {len(catalog.views)} views in {root}")


@main.command()
@_project_option
@click.option("--path", type=click.Path(dir_okay=False), default=None, help="Where to write (default: <project>/.canon/demo.duckdb).")
@click.option("--scale", type=click.FloatRange(min=0.001, max=1000), default=1.0, show_default=True,
              help="1.0 is about 20,000 orders; 200 is about 10 million order lines.")
@click.option("--seed", type=int, default=42, show_default=True)
def demo(project, path, scale, seed):
    """Build the deterministic demo warehouse (DuckDB)."""
    from pathlib import Path

    from server.demo import build_demo
    from server.project import demo_path, find_project

    if path is None:
        try:
            target = demo_path(find_project(project))
        except Exception:
            target = Path.cwd() / ".canon" / "demo.duckdb"
    else:
        target = Path(path)
    counts = build_demo(target, scale=scale, seed=seed, progress=scale >= 5 and sys.stderr.isatty())
    click.echo(f"demo warehouse: {target}")
    for name, count in counts.items():
        click.echo(f"  {name:<12} {count:>12,} rows")


@main.command(name="metrics")
@_project_option
@click.option("--format", "-f", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def list_metrics(project, fmt):
    """List the metrics of the catalog."""
    import json

    _, catalog = _catalog(project)
    rows = [{"name": n, "type": m.type, "label": m.label, "tier": m.tier, "owner": m.owner,
             "description": " ".join((m.description or "").split())} for n, m in sorted(catalog.metrics.items())]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "type", "tier", "owner", "description")
    for r in rows:
        table.add_row(r["name"], r["type"], r["tier"], r["owner"] or "", r["description"])
    Console().print(table)


if __name__ == "__main__":
    main()
