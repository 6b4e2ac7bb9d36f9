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
        from canon.compiler.errors import CanonError

        try:
            return super().invoke(ctx)
        except CanonError as error:
            _fail(error)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:  # `canon query ... | head`: the reader left; that is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
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
        click.option("--metric", "-m", "metrics", multiple=True, help="Metric name; repeat for several."),
        click.option("--saved-query", "saved_query", default=None,
                     help="Run a saved query by name instead of --metric/--by (filters, ranges, order and limit add to it)."),
        click.option("--by", "-b", "dimensions", multiple=True,
                     help="Dimension: model.dimension[.grain|.part], metric_time.<grain|part> (parts: dow, dom, doy, "
                          "week_of_year, month_of_year, quarter_of_year, hour_of_day), antecedent./consequent.<dim>."),
        click.option("--where", "-w", "where", multiple=True, help="Filter over dimensions; repeat to AND them."),
        click.option("--order", "-o", "order", multiple=True, help="Metric or dimension; prefix '-' for descending."),
        click.option("--limit", "-l", type=int, default=None, help="At most this many rows."),
        click.option("--start", default=None, help="metric_time from this date/time (inclusive)."),
        click.option("--end", default=None, help="metric_time up to this date (inclusive) or time (exclusive)."),
        click.option("--time-range", "time_range", default=None,
                     help="Relative range instead of --start/--end: 'last 28 days', 'last 12 complete weeks', "
                          "'this month', 'year to date', ..."),
        click.option("--having", "having", multiple=True, help="Condition on metric values, e.g. 'revenue > 1000'."),
        click.option("--timezone", "--tz", "timezone", default=None, help="IANA time zone for days, weeks and months."),
        click.option("--today", default=None, help="The date relative ranges count from (default: canon.yml, then the clock)."),
        click.option("--fill-gaps/--no-fill-gaps", "fill_gaps", default=None,
                     help="List every period of metric_time, crossed with the other dimensions (default: only a "
                          "pure time series of metrics with join_to_timespine)."),
    ]
    for option in reversed(options):
        f = option(f)
    return _project_option(f)


def _request(catalog, saved_query, metrics, dimensions, where, order, limit, start, end, time_range=None, having=(),
             timezone=None, today=None, fill_gaps=None):
    from canon.compiler.request import QueryRequest

    if saved_query is None and not metrics and not dimensions:  # dimensions alone list their combinations
        raise click.UsageError("Missing option '--metric' / '-m' (or --by DIM alone, or --saved-query NAME).")
    if saved_query is not None and (metrics or dimensions):
        raise click.UsageError("--saved-query names its own metrics and dimensions: drop --metric/--by")
    request = QueryRequest(metrics=metrics, dimensions=dimensions, where=where, order=order, limit=limit,
                           start=start, end=end, time_range=time_range, having=having, timezone=timezone, today=today,
                           fill_gaps=fill_gaps)
    if saved_query is None:
        return request
    from canon.compiler.saved import saved_query_request

    return saved_query_request(catalog, saved_query, request)


def _catalog(project, *, cached: bool = True):
    from canon.server.project import find_project

    root = find_project(project)
    if not cached:
        from canon.compiler.compile import load_catalog

        return root, load_catalog(root)
    from canon.server.catalog_cache import load_catalog_cached

    return root, load_catalog_cached(root)


@main.command()
@_query_options
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo).")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=None,
              help="This query's time cap in seconds (default: limits.query_timeout_s in canon.yml, 30).")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--no-rollups", "no_rollups", is_flag=True, help="Read the raw tables, never a rollup.")
def query(project, metrics, saved_query, dimensions, where, order, limit, start, end, time_range, having, timezone,
          today, fill_gaps, warehouse, timeout, fmt, no_rollups):
    """Compute metrics by dimensions on the warehouse."""
    from dataclasses import replace

    from canon.server.runtime import Identity, Runtime

    with Runtime.open(project, warehouse, cached_catalog=True) as runtime:
        request = _request(runtime.catalog, saved_query, metrics, dimensions, where, order, limit, start, end,
                           time_range, having, timezone, today, fill_gaps)
        if no_rollups:
            request = replace(request, extra={**request.extra, "use_rollups": False})
        runtime.prepare(request, timeout_s=timeout)  # a bad request fails here, before the warehouse is opened
        runtime.freshness.refresh()  # one small query per monitored source, for stale-source warnings
        if not no_rollups:
            runtime.rollups.read(runtime.catalog)  # which rollups are built and fresh (server/rollups/)
        result = runtime.query(request, identity=Identity(via="cli"), timeout_s=timeout)
    for warning in result.warnings or ():
        click.echo(f"warning: {warning}", err=True)
    _print_result(result, fmt)


def _print_result(result, fmt):
    from canon.server import results

    if fmt in ("json", "csv"):
        from canon.server.cli_table import echo_partial

        echo_partial(result)
    if fmt == "json":
        click.echo(results.to_json(result))
    elif fmt == "csv":
        click.echo(results.to_csv(result), nl=False)
    else:
        from canon.server.cli_table import print_table

        print_table(result)


@main.command(name="compile")
@_query_options
@click.option("--dialect", "-d", default="duckdb", show_default=True,
              help="duckdb, postgres, snowflake, bigquery, spark, trino or clickhouse.")
def compile_command(project, metrics, saved_query, dimensions, where, order, limit, start, end, time_range, having,
                    timezone, today, fill_gaps, dialect):
    """Print the SQL a request compiles to."""
    from canon.compiler.compile import compile_request

    root, catalog = _catalog(project)
    request = _request(catalog, saved_query, metrics, dimensions, where, order, limit, start, end, time_range, having,
                       timezone, today, fill_gaps)
    if request.timezone:  # DATE columns are never shifted: their types come from the warehouse, when it is there
        from canon.server.project import warehouse_url
        from canon.server.runtime import Runtime
        from canon.server.runtime.state import CatalogState

        with Runtime(CatalogState.fixed(catalog), warehouse_url(root)) as runtime:
            catalog = runtime.typed(catalog)
    compiled = compile_request(catalog, request, dialect, pretty=True)
    click.echo(compiled.sql)


@main.command()
@_project_option
@click.option("--warehouse", "warehouse", is_flag=False, flag_value="", default=None, metavar="[URL]",
              help="Also check every table, column and expression against the warehouse (this URL, or as for "
                   "`canon query`).")
def validate(project, warehouse):
    """Check every definition; report every problem as file:line."""
    root, catalog = _catalog(project, cached=False)
    _check_governance(root, catalog)  # project rules from canon.yml, data test declarations
    checked = _check_warehouse(root, catalog, warehouse or None) if warehouse is not None else ""
    click.echo(f"ok: {len(catalog.models)} semantic models, {len(catalog.metrics)} metrics, "
               f"{len(catalog.saved_queries)} saved queries, {len(catalog.views)} views in {root}{checked}")


@main.command()
@_project_option
@click.option("--path", type=click.Path(dir_okay=False), default=None, help="Where to write (default: <project>/.canon/demo.duckdb).")
@click.option("--scale", type=click.FloatRange(min=0.001, max=1000), default=1.0, show_default=True,
              help="1.0 is about 20,000 orders; 200 is about 10 million order lines.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--target", default=None, metavar="URL",
              help="Load the demo into this PostgreSQL database (postgresql://user:password@host:port/db), "
                   "creating the database if missing and replacing its demo tables in one transaction; "
                   "the DuckDB file is kept only if --path is given.")
def demo(project, path, scale, seed, target):
    """Build the deterministic demo warehouse (DuckDB, or PostgreSQL with --target)."""
    from pathlib import Path

    from canon.server.demo import build_demo
    from canon.server.project import demo_path, find_project

    if target is not None:
        _demo_to_postgres(target, path, scale, seed)
        return
    if path is None:
        try:
            target = demo_path(find_project(project))
        except Exception:  # no project here: the demo catalog shipped in the package is copied in
            from canon.server.demo import install_demo_project

            root = Path(project) if project else Path.cwd()
            for written in install_demo_project(root):
                click.echo(f"wrote {written}")
            target = root / ".canon" / "demo.duckdb"
    else:
        target = Path(path)
    counts = build_demo(target, scale=scale, seed=seed, progress=scale >= 5 and sys.stderr.isatty())
    click.echo(f"demo warehouse: {target}")
    for name, count in counts.items():
        click.echo(f"  {name:<12} {count:>12,} rows")


def _demo_to_postgres(url, path, scale, seed):
    import tempfile
    import time
    from pathlib import Path

    from canon.compiler.errors import ConfigError
    from canon.server.demo import build_demo
    from canon.server.pg_load import load_demo_into_postgres
    from canon.server.warehouses.postgres import is_postgres_url, redact

    if not is_postgres_url(url):
        raise ConfigError(f"--target must be a postgresql:// URL, got {url!r}",
                          hint="e.g. postgresql://user:password@localhost:5432/canon; use --path for a DuckDB file")
    with tempfile.TemporaryDirectory(prefix="canon-demo-") as scratch:
        source = Path(path) if path else Path(scratch) / "demo.duckdb"
        started = time.perf_counter()
        build_demo(source, scale=scale, seed=seed, progress=scale >= 5 and sys.stderr.isatty())
        built = time.perf_counter()
        counts = load_demo_into_postgres(source, url)
        loaded = time.perf_counter()
    click.echo(f"demo warehouse: {redact(url)}" + (f" (DuckDB copy: {path})" if path else ""))
    for name, count in counts.items():
        click.echo(f"  {name:<12} {count:>12,} rows")
    click.echo(f"built in {built - started:.1f} s, loaded into PostgreSQL in {loaded - built:.1f} s")


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


@main.command()
@_project_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo).")
@click.option("--query-timeout", type=click.FloatRange(min=0.1), default=None,
              help="Seconds a query may run before it is cancelled in the engine (504) "
                   "[default: limits.query_timeout_s in canon.yml, else 30].")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Most rows one query may return [default: limits.max_rows in canon.yml, else 100000].")
@click.option("--reload-interval", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds between checks of the definition files (0: no hot reload).")
@click.option("--pg-port", type=click.IntRange(0, 65535), default=None,
              help="Also serve the views over the PostgreSQL wire protocol on this port (see `canon pg`).")
@click.option("--log-level", type=click.Choice(("debug", "info", "warning", "error")), default="info", show_default=True)
def serve(project, host, port, warehouse, query_timeout, max_rows, reload_interval, pg_port, log_level):
    """Serve the HTTP API, the Cube REST API and the docs page (/docs); with --pg-port, SQL too."""
    import logging

    import uvicorn

    from canon.server.http_api import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _check_bind(project, host, "canon serve")
    app = create_app(project, warehouse, query_timeout_s=query_timeout, max_rows=max_rows,
                     reload_interval_s=reload_interval, pg=(host, pg_port) if pg_port is not None else None)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")


def _check_bind(project, host: str, what: str) -> None:
    """Refuse to serve without authentication anywhere but loopback (before anything starts)."""
    from canon.server.project import find_project, load_config
    from canon.server.runtime.authn import Authenticator, wire_credentials as credentials

    root = find_project(project)
    config = load_config(root)
    authn = Authenticator.from_config(config, root)
    if credentials(config)[1] is None:
        authn.check_bind(host, what)
    if not authn.required:
        click.echo(f"{what}: no authentication configured: open to every client of {host} "
                   "(set $CANON_API_SECRET or declare `users:` in canon.yml to require it)", err=True)


def _auth_summary(authn, password, user) -> str:
    ways = (["API tokens as the password"] if authn.accepts_tokens else []) + \
        ([f"{len(authn.users)} declared user(s)"] if authn.users else []) + ([f"user {user}"] if password else [])
    return "authentication: " + ", ".join(ways) if ways else "no authentication (loopback only)"


# --- access: audit log, wire passwords, API tokens (issue 12) ----------------------------------------


@main.command(name="audit")
@_project_option
@click.option("--user", default=None, help="Only this user's queries (the token's `sub`, or the wire user).")
@click.option("--since", default=None, help="Only queries at or after this ISO date or timestamp (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the last N entries.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def audit_command(project, user, since, limit, fmt):
    """Read the audit log: who ran which query, under which policies, with what outcome."""
    import json
    from datetime import datetime, timezone

    from canon.compiler.errors import ConfigError
    from canon.server.project import find_project, load_config
    from canon.server.runtime.audit import AuditSettings, read_audit

    root = find_project(project)
    settings = AuditSettings.from_config(load_config(root), root)
    when = None
    if since:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"--since {since!r} is not an ISO date or timestamp", hint="e.g. 2026-11-30 or 2026-11-30T08:00") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    entries = list(read_audit(settings.path, user=user, since=when))
    if limit:
        entries = entries[-limit:]
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    for e in entries:
        policies = ",".join(e.get("policies") or []) or "-"
        click.echo(f"{e.get('time')}  {e.get('user')}@{e.get('via')}  {e.get('outcome'):<9} "
                   f"{','.join(e.get('metrics') or [])} by {','.join(e.get('dimensions') or []) or '-'}  "
                   f"policies={policies} rows={e.get('rows')} {e.get('elapsed_ms')} ms"
                   + (f"  error: {e['error']}" if e.get("error") else ""))
    if not entries:
        click.echo("no audit entries" + (f" for {user}" if user else ""), err=True)


@main.command(name="passwd")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (no prompt).")
def passwd_command(password_stdin):
    """Print a SCRAM-SHA-256 verifier for canon.yml `users: {NAME: {password: ...}}` (the password is not kept)."""
    from canon.server.runtime.authn import ScramVerifier

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password must not be empty")
    click.echo(ScramVerifier.make(password).text())


@main.command(name="token")
@click.option("--claim", "claims", multiple=True, metavar="KEY=VALUE",
              help="A claim (repeatable); a JSON value is parsed (country=DE, countries='[\"DE\",\"FR\"]').")
@click.option("--subject", "sub", default="canon-user", show_default=True, help="The token's `sub` (the user in the audit log).")
@click.option("--expires", "expires_s", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds until it expires.")
def token_command(claims, sub, expires_s):
    """Sign an API token (HS256 with $CANON_API_SECRET) for a user with these claims: for trying policies
    and for services; production tokens come from your identity provider."""
    import json
    import time

    import jwt

    from canon.compiler.errors import ConfigError
    from canon.server.runtime.authn import SECRET_ENV

    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise ConfigError(f"${SECRET_ENV} is not set", hint="export CANON_API_SECRET=<a long random string> first")
    payload = {"sub": sub, "iat": int(time.time()), "exp": int(time.time()) + expires_s}
    for item in claims:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--claim {item!r}: write KEY=VALUE")
        try:
            payload[key] = json.loads(value)
        except ValueError:
            payload[key] = value
    click.echo(jwt.encode(payload, secret, algorithm="HS256"))


@main.command(name="mcp")
@_project_option
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo).")
@click.option("--token", envvar="CANON_TOKEN", default=None,
              help="The agent's API token (JWT); required when the project configures authentication [$CANON_TOKEN].")
def mcp_command(project, warehouse, token):
    """Serve the catalog to LLM agents over the Model Context Protocol (stdio), as the token's user."""
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        raise click.ClickException("the MCP server needs the `mcp` package: pip install 'canon-semantic[mcp]'")
    from canon.server.mcp_server import build_server, identity_for
    from canon.server.runtime import Runtime

    with Runtime.open(project, warehouse, cached_catalog=True) as runtime:
        server = build_server(runtime, identity_for(runtime, token))
        server.run("stdio")


# --- governance: lineage, diff, docs, data tests, freshness (issue 7) ---------------------------


@main.command(name="init")
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--warehouse", required=True, help="DuckDB file or postgresql:// URL to describe.")
@click.option("--tables", default=None, help="Comma-separated tables to describe (default: all).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_command(directory, warehouse, tables, force):
    """Propose a project (one semantic model per table, starter metrics, canon.yml) from a warehouse."""
    from pathlib import Path

    from canon.compiler.catalog import Catalog
    from canon.server.init_project import choose_tables, config_warehouse, propose, write_files
    from canon.server.runtime import Runtime
    from canon.server.runtime.state import CatalogState
    from canon.server.warehouse_schema import read_schema

    target = Path(directory)
    wanted = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    with Runtime(CatalogState.fixed(Catalog(models={}, metrics={})), warehouse) as runtime:
        schema = read_schema(runtime.run_sql, keys=True)
    files = propose(schema, config_warehouse(warehouse, target), choose_tables(schema, wanted))
    for path in write_files(target, files, force=force):
        click.echo(f"wrote {path}")
    click.echo("next: review the lines marked REVIEW, then `canon validate --warehouse` and `canon query`")


def _check_warehouse(root, catalog, url) -> str:
    """`validate --warehouse`: the catalog against the live schema (server/validate_warehouse.py)."""
    from canon.compiler.errors import CatalogErrors
    from canon.server.project import warehouse_url
    from canon.server.runtime import Runtime
    from canon.server.runtime.state import CatalogState
    from canon.server.validate_warehouse import check_warehouse

    from canon.server.runtime.service import safe_url

    with Runtime(CatalogState.fixed(catalog), warehouse_url(root, url)) as runtime:
        problems = check_warehouse(catalog, runtime.run_sql, runtime.dialect)
    if problems:
        raise CatalogErrors(problems)
    return f"; every table, column and expression checked on {safe_url(runtime.url)}"


def _check_governance(root, catalog) -> None:
    """Project rules (canon.yml `rules:`) and data test declarations; errors fail `canon validate`."""
    from canon.compiler.errors import CatalogErrors, ConfigError
    from canon.compiler.rules import check_rules, rules_from_config
    from canon.server.governance.datatests import check_tests
    from canon.server.project import load_config

    errors = list(check_tests(catalog))
    for problem in check_rules(catalog, rules_from_config(load_config(root))):
        if problem.severity == "error":
            errors.append(ConfigError(problem.message, location=problem.location, hint=problem.hint))
        else:
            click.echo(f"warning: {problem}", err=True)
    if errors:
        raise CatalogErrors(errors)


def _open_optional_runtime(project, warehouse):
    """The runtime, when its warehouse can be opened (`canon diff` shows numbers only then)."""
    from canon.compiler.errors import CanonError, WarehouseError
    from canon.server.runtime import Runtime

    try:
        runtime = Runtime.open(project, warehouse, cached_catalog=True)
    except CanonError as error:  # an invalid working tree: diff reports it; no numbers
        click.echo(f"note: {error.message}; continuing without the warehouse", err=True)
        return None
    try:
        runtime.warehouse()
        return runtime
    except WarehouseError as error:
        click.echo(f"note: {error.message}; continuing without the warehouse", err=True)
        runtime.close()
        return None


@main.command()
@click.argument("name")
@_project_option
@click.option("--direction", "-d", type=click.Choice(("down", "up", "both")), default="down", show_default=True,
              help="down: what it is built from (to tables and columns); up: what depends on it (impact).")
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json", "mermaid", "dot")), default="text",
              show_default=True)
def lineage(name, project, direction, fmt):
    """Lineage of a metric, measure, dimension, model, table or table.column (e.g. cac, orders.status)."""
    import json

    from canon.compiler import lineage as ln

    _, catalog = _catalog(project)
    graph = ln.build_lineage(catalog)
    root = ln.resolve_node(graph, name)
    if fmt == "json":
        click.echo(json.dumps(ln.lineage_json(catalog, root, direction, graph=graph), ensure_ascii=False, indent=2))
    elif fmt == "mermaid":
        click.echo(ln.render_mermaid(graph, root, direction))
    elif fmt == "dot":
        click.echo(ln.render_dot(graph, root, direction))
    else:
        for way in (("down", "up") if direction == "both" else (direction,)):
            click.echo(ln.render_text(ln.tree(graph, root, way), way))
        if direction in ("up", "both"):
            found = ln.impact(graph, root)
            click.echo("impact: " + "; ".join(f"{k.replace('_', ' ')}: {', '.join(v) or '-'}" for k, v in found.items()))


@main.command(name="diff")
@_project_option
@click.option("--base", "base_ref", default="HEAD", show_default=True, help="Git ref to compare the working tree with.")
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json", "markdown")), default="text", show_default=True)
@click.option("--warehouse", default=None, help="Where to run the sample queries (default: as for `canon query`).")
@click.option("--no-numbers", is_flag=True, help="Compare SQL only; do not run sample queries.")
@click.option("--by", "sample_by", multiple=True, help="Dimension for the sample queries (default metric_time.year).")
def diff_command(project, base_ref, fmt, warehouse, no_numbers, sample_by):
    """Classify every catalog change since a git ref: breaking, value-changing, metadata-only. Exit 1 if breaking."""
    from canon.server.governance.diff import diff_project, render
    from canon.server.project import find_project

    root = find_project(project)
    runtime = None if no_numbers else _open_optional_runtime(root, warehouse)
    try:
        report = diff_project(root, base_ref, warehouse=runtime and runtime.internal, sample_by=sample_by)
    finally:
        if runtime is not None:
            runtime.close()
    click.echo(render(report, fmt), nl=fmt != "markdown")
    sys.exit(report.exit_code)


@main.command(name="docs")
@_project_option
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for the site (default: <project>/.canon/site).")
def docs_command(project, out):
    """Write a static HTML catalog: every metric with its definition, lineage, owner and tier."""
    from pathlib import Path

    from canon.server.governance.docs import build_site

    root, catalog = _catalog(project)
    target = Path(out) if out else root / ".canon" / "site"
    written = build_site(catalog, target)
    click.echo(f"catalog site: {target / 'index.html'} ({len(written)} files)")


@main.command(name="test")
@_project_option
@click.option("--model", default=None, help="Only this semantic model's tests.")
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: as for `canon query`).")
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.option("--sample", "sample_size", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="Failing rows to show per test.")
def test_command(project, model, warehouse, fmt, sample_size):
    """Run the data tests declared on the semantic models; exit 1 if an error-severity test fails."""
    import json

    from canon.server.governance.datatests import run_data_tests
    from canon.server.runtime import Runtime

    with Runtime.open(project, warehouse, cached_catalog=True) as runtime:
        results = run_data_tests(runtime.catalog, runtime.internal, model=model, sample_size=sample_size)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, default=str, indent=2))
    else:
        for r in results:
            mark = {"pass": "PASS", "fail": "FAIL" if r.severity == "error" else "WARN", "error": "ERROR"}[r.status]
            extra = f" — {r.failures} failing row(s)" if r.status == "fail" else f" — {r.message}" if r.message else ""
            click.echo(f"{mark:<5} {r.model}: {r.name}{extra}")
            if r.sample:
                click.echo("        " + " | ".join(r.columns))
                for row in r.sample:
                    click.echo("        " + " | ".join("NULL" if v is None else str(v) for v in row))
        failed = sum(r.status != "pass" for r in results)
        click.echo(f"{len(results)} test(s), {len(results) - failed} passed, {failed} failed")
    if any(r.status == "error" or (r.status == "fail" and r.severity == "error") for r in results):
        sys.exit(1)


@main.command(name="freshness")
@_project_option
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: as for `canon query`).")
@click.option("--now", default=None, help="Evaluate as of this UTC time (ISO), instead of the clock.")
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def freshness_command(project, warehouse, now, fmt):
    """Age and state (fresh / warn / error) of each source that declares freshness; exit 1 on error."""
    import datetime as dt
    import json

    from canon.compiler.errors import QueryError
    from canon.server.governance.freshness import format_age, freshness_report
    from canon.server.runtime import Runtime

    if now is not None:
        try:
            now = dt.datetime.fromisoformat(now)
        except ValueError:
            raise QueryError(f"--now {now!r} is not an ISO date or time", hint="e.g. --now 2026-01-09T12:00:00") from None
    with Runtime.open(project, warehouse, cached_catalog=True) as runtime:
        report = freshness_report(runtime.catalog, runtime.internal, now=now)
    if fmt == "json":
        click.echo(json.dumps([s.to_dict() for s in report], ensure_ascii=False, indent=2))
    else:
        for s in report:
            newest = s.max_loaded_at.isoformat(sep=" ") if s.max_loaded_at else "never"
            click.echo(f"{s.state.upper():<5} {s.model}: newest {s.loaded_at} {newest}, age {format_age(s.age_seconds) or '-'}"
                       f" (warn after {s.warn_after or '-'}, error after {s.error_after or '-'})"
                       + (f" — {s.message}" if s.message else ""))
        if not report:
            click.echo("no semantic model declares freshness")
    if any(s.state == "error" for s in report):
        sys.exit(1)


@main.command(name="pg")
@_project_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=5433, show_default=True, help="0 picks a free port.")
@click.option("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo).")
@click.option("--tls-cert", default=None, type=click.Path(dir_okay=False, exists=True), help="PEM certificate: enables TLS.")
@click.option("--tls-key", default=None, type=click.Path(dir_okay=False, exists=True), help="PEM private key for --tls-cert.")
@click.option("--query-timeout", type=click.FloatRange(min=0.1), default=None,
              help="Seconds a statement may run before it is cancelled in the engine (57014) "
                   "[default: limits.query_timeout_s in canon.yml, else 30].")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Most rows one statement may return (54000 past it) [default: limits.max_rows, else 100000].")
def pg_command(project, host, port, warehouse, tls_cert, tls_key, query_timeout, max_rows):
    """Serve the catalog's views over the PostgreSQL wire protocol (psql, BI tools, drivers).

    Who may connect: users declared under `users:` in canon.yml (SCRAM-SHA-256), an API token as the
    password when $CANON_API_SECRET is set, or the one user of $CANON_PG_USER / $CANON_PG_PASSWORD
    (or `pg: {user, password}`). With none of these, any client is trusted, and only a loopback
    address may be bound. Any database name is accepted."""
    import asyncio

    from canon.server.pgwire.server import check_open_bind, credentials, make_ssl_context, serve
    from canon.server.project import load_config
    from canon.server.runtime import Runtime

    runtime = Runtime.open(project, warehouse, cached_catalog=True, reload_interval_s=1.0,  # fails fast when invalid
                           query_timeout_s=query_timeout, max_rows=max_rows)
    user, password = credentials(load_config(runtime.project))
    check_open_bind(runtime, host, password)
    runtime.warehouse()  # fail fast when the warehouse cannot be opened
    runtime.start()

    def ready(bound):
        click.echo(f"canon pg: listening on {host}:{bound}; {_auth_summary(runtime.authn, password, user)}; "
                   f"psql \"postgresql://{user}@{host}:{bound}/canon\"", err=True)

    try:
        asyncio.run(serve(runtime, host, port, user, password,
                          ssl_context=make_ssl_context(tls_cert, tls_key), ready=ready))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        click.echo(f"error: cannot listen on {host}:{port}: {error.strerror or error}", err=True)
        sys.exit(1)
    finally:
        runtime.close()


# --- cross-sell, recommendations, upsell, audiences (issue 5) ---------------------------------------

_WAREHOUSE_HELP = "DuckDB file or postgresql:// URL (default: $CANON_WAREHOUSE, canon.yml, the demo)."


@main.command(name="cross-sell")
@_project_option
@click.option("--product", "-p", default=None, help="Product id or exact product name.")
@click.option("--category", default=None, help="A category instead of a product: category-level rules.")
@click.option("--brand", default=None, help="A brand instead of a product: brand-level rules.")
@click.option("--level", "level_value", nargs=2, default=None, metavar="LEVEL VALUE",
              help="A value of any level of the `recommendations:` block's items.levels: --level category Phones.")
@click.option("--limit", "-l", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--min-support", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Only rules whose cross_sell_support is at least this share of orders.")
@click.option("--days", type=click.IntRange(1, 3660), default=None, help="Window: the last N days of data (default 365).")
@click.option("--warehouse", default=None, help=_WAREHOUSE_HELP)
@click.option("--format", "-f", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def cross_sell_command(project, product, category, brand, level_value, limit, min_support, days, warehouse, fmt):
    """Products (or categories, brands) most often bought with one, ranked by cross_sell_score."""
    from canon.compiler.errors import QueryError
    from canon.server.recommend import cli_support, engine

    given = [(lvl, v) for lvl, v in (("product", product), ("category", category), ("brand", brand)) if v is not None]
    given += [tuple(level_value)] if level_value else []
    if len(given) != 1:
        raise QueryError("give exactly one of --product, --level LEVEL VALUE, --category or --brand")
    level, value = given[0]
    with cli_support.open_store(project, warehouse) as store:
        snapshot, window = store.window(days)
        body = engine.cross_sell(snapshot, window, value, level=level, limit=limit, min_support=min_support,
                                 field="--level" if level_value else f"--{level}")
    if fmt == "json":
        click.echo(cli_support.to_json(body))
        return
    name = body["antecedent"].get("product_name") or body["antecedent"].get(level)
    key = "product_name" if level == "product" else level
    cli_support.print_items(
        f"Bought with {name} ({window.start} .. {window.end})",
        [(key, level), ("cross_sell_score", "score"), ("cross_sell_support", "support"), ("cross_sell_lift", "lift"),
         ("cross_sell_pair_orders", "orders with both"), ("antecedent_orders", f"orders with {level}"),
         ("baskets", "orders")], body["items"])


@main.command(name="recommend")
@_project_option
@click.option("--customer", "-c", "customer", type=int, required=True, help="Customer id.")
@click.option("--limit", "-l", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--min-support", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--days", type=click.IntRange(1, 3660), default=None, help="Window: the last N days of data (default 365).")
@click.option("--warehouse", default=None, help=_WAREHOUSE_HELP)
@click.option("--format", "-f", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def recommend_command(project, customer, limit, min_support, days, warehouse, fmt):
    """Personalized recommendations: products the customer has not bought, each with the rule behind it."""
    from canon.server.recommend import cli_support, engine

    with cli_support.open_store(project, warehouse) as store:
        snapshot, window = store.window(days)
        body = engine.recommend(snapshot, window, customer, limit=limit, min_support=min_support)
    if fmt == "json":
        click.echo(cli_support.to_json(body))
        return
    cli_support.print_recommend(body, snapshot)


@main.command(name="upsell")
@_project_option
@click.option("--customer", "-c", "customer", type=int, required=True, help="Customer id.")
@click.option("--limit", "-l", type=click.IntRange(1, 1000), default=5, show_default=True, help="Per category.")
@click.option("--days", type=click.IntRange(1, 3660), default=None, help="Window: the last N days of data (default 365).")
@click.option("--warehouse", default=None, help=_WAREHOUSE_HELP)
@click.option("--format", "-f", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def upsell_command(project, customer, limit, days, warehouse, fmt):
    """Higher-tier products per category the customer bought in, with the expected uplift."""
    from canon.server.recommend import cli_support, engine

    with cli_support.open_store(project, warehouse) as store:
        snapshot, window = store.window(days)
        body = engine.upsell(snapshot, window, customer, limit=limit)
    if fmt == "json":
        click.echo(cli_support.to_json(body))
        return
    cli_support.print_upsell(body, snapshot)


@main.command(name="audience")
@_project_option
@click.option("--recommend-product", "product", default=None, help="Customers to target with this product (id or name).")
@click.option("--segment", default=None, help="An RFM segment (champions, loyal, ...) or an account segment (consumer, ...).")
@click.option("--limit", "-l", type=click.IntRange(1, 1000000), default=1000, show_default=True, help="Most customers.")
@click.option("--per-customer", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Recommended products per customer (--segment).")
@click.option("--min-support", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--warehouse", default=None, help=_WAREHOUSE_HELP)
@click.option("--format", "-f", "fmt", type=click.Choice(("csv", "json")), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def audience_command(project, product, segment, limit, per_customer, min_support, warehouse, fmt, output):
    """Export a campaign list: customer, email-safe id, recommended products, reason."""
    from canon.compiler.errors import QueryError
    from canon.server.recommend import cli_support, engine

    if (product is None) == (segment is None):
        raise QueryError("give exactly one of --recommend-product or --segment")
    salt = cli_support.audience_salt(project)
    with cli_support.open_store(project, warehouse) as store:
        snapshot, window = store.window(None)
        if product is not None:
            rows = engine.audience_for_product(snapshot, window, product, salt=salt, limit=limit,
                                               min_support=min_support)
        else:
            rows = engine.audience_for_segment(snapshot, window, segment, salt=salt, limit=limit,
                                               per_customer=per_customer, min_support=min_support)
    text = cli_support.to_json(rows) + "\n" if fmt == "json" else cli_support.audience_csv(rows)
    if output:
        from pathlib import Path

        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{len(rows)} customer(s) written to {output}", err=True)
    else:
        click.echo(text, nl=False)


@main.group(name="recommendations", cls=CanonGroup)
def recommendations_group():
    """The affinity snapshot behind cross-sell and recommendations, and recommendation feedback."""


@recommendations_group.command(name="refresh")
@_project_option
@click.option("--warehouse", default=None, help=_WAREHOUSE_HELP)
def recommendations_refresh(project, warehouse):
    """Rebuild the affinity snapshot from the warehouse (persisted under .canon/recommend/)."""
    from canon.server.recommend import cli_support

    with cli_support.open_store(project, warehouse) as store:
        snapshot = store.refresh()
    d = snapshot.describe()
    click.echo(f"snapshot built in {d['build_ms']:.0f} ms: {d['rules']:,} product rules, {d['products']} products, "
               f"{d['customers']:,} customers, window {d['window']['start']} .. {d['window']['end']}"
               + (f" ({d['window']['timezone']} days)" if d["window"].get("timezone") else "") + f" -> {store.path}")


@recommendations_group.command(name="load-feedback")
@_project_option
@click.option("--warehouse", default=None, help=_WAREHOUSE_HELP)
def recommendations_load_feedback(project, warehouse):
    """Load the feedback journal into the warehouse table recommendation_feedback (idempotent)."""
    from canon.server.project import find_project, warehouse_url
    from canon.server.recommend.feedback import FeedbackJournal, load_into_warehouse

    root = find_project(project)
    inserted = load_into_warehouse(warehouse_url(root, warehouse), FeedbackJournal(root))
    click.echo(f"{inserted} new feedback event(s) loaded into recommendation_feedback")


@main.command(name="search")
@_project_option
@click.argument("text")
@click.option("--limit", type=click.IntRange(1, 200), default=15, show_default=True)
@click.option("--format", "-f", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def search_command(project, text, limit, fmt):
    """Find metrics, dimensions and glossary terms by what they are called or mean."""
    import json

    from canon.compiler.search import search

    _, catalog = _catalog(project)
    hits = search(catalog, text, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return
    if not hits:
        click.echo(f"nothing matches {text!r}", err=True)
        sys.exit(1)
    from rich.console import Console
    from rich.table import Table

    table = Table("kind", "name", "label", "why")
    for h in hits:
        table.add_row(h.kind, h.name, h.label or "", h.why)
    Console().print(table)


@main.command()
@_project_option
@click.argument("text", required=False)
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def glossary(project, text, fmt):
    """The business glossary: each term, what it means, and the metrics that measure it."""
    import json

    from canon.compiler.search import search

    _, catalog = _catalog(project)
    names = [h.name for h in search(catalog, text, limit=200) if h.kind == "term"] if text else sorted(catalog.glossary)
    entries = [catalog.glossary[n] for n in names]
    if fmt == "json":
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], ensure_ascii=False))
        return
    for entry in entries:
        click.echo(f"{entry.term}\n  {' '.join(entry.definition.split())}")
        if entry.synonyms:
            click.echo(f"  also: {', '.join(entry.synonyms)}")
        if entry.metrics or entry.dimensions:
            click.echo(f"  measured by: {', '.join(entry.metrics + entry.dimensions)}")
    if text and not entries:
        click.echo(f"no glossary term matches {text!r}", err=True)
        sys.exit(1)


def _register_modules() -> None:
    """Subcommands that live in modules of their own."""
    from canon.server.cli_import import import_group
    from canon.server.cli_schema import schema_command

    main.add_command(import_group)
    main.add_command(schema_command)
    from canon.server.cli_rollups import rollups_group

    main.add_command(rollups_group)
    from canon.server.cli_exports import exports_group

    main.add_command(exports_group)


_register_modules()


if __name__ == "__main__":
    main()
