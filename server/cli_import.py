"""`canon import cube|dbt DIR --out DIR`: bring a Cube or dbt/MetricFlow semantic layer along.

Writes Canon YAML under --out, plus IMPORT_REPORT.md listing what did not map (also printed), then
validates the result as a Canon project and says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group(name="import")
def import_group():
    """Import definitions from another semantic layer (Cube, dbt/MetricFlow) as Canon YAML."""


def _options(f):
    f = click.option("--force", is_flag=True, help="Overwrite files that already exist in --out.")(f)
    f = click.option("--warehouse", default=None, metavar="URL",
                     help="Also write canon.yml naming this warehouse (a DuckDB path or postgresql:// URL).")(f)
    f = click.option("--out", "out", type=click.Path(file_okay=False), default=".", show_default=True,
                     help="The Canon project folder to write (semantic_models/, metrics/, IMPORT_REPORT.md).")(f)
    return click.argument("directory", type=click.Path(exists=True, file_okay=False))(f)


@import_group.command(name="cube")
@_options
def import_cube_command(directory, out, warehouse, force):
    """A Cube data model folder (YAML, or JavaScript object literals)."""
    from canon.server.importers import import_cube

    _run(import_cube(Path(directory)), Path(out), warehouse, force)


@import_group.command(name="dbt")
@_options
def import_dbt_command(directory, out, warehouse, force):
    """A dbt project's semantic models, MetricFlow metrics and saved queries."""
    from canon.server.importers import import_dbt

    _run(import_dbt(Path(directory)), Path(out), warehouse, force)


def _run(result, out: Path, warehouse: str | None, force: bool) -> None:
    from canon.compiler.compile import load_catalog
    from canon.compiler.errors import CanonError
    from canon.server.importers import write_result
    from canon.server.importers.common import REPORT_FILE, dump

    written = write_result(out, result, force=force)
    if warehouse:
        config = out / "canon.yml"
        if config.exists() and not force:
            click.echo(f"kept {config} (pass --force to replace it)", err=True)
        else:
            config.write_text(dump({"warehouse": warehouse}), encoding="utf-8")
            written.append(config)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(result.report())
    click.echo(f"(the report is also in {out / REPORT_FILE})")
    try:
        catalog = load_catalog(out)
    except CanonError as error:
        click.echo("the imported project does not validate yet; fix these, then `canon validate`:", err=True)
        for line in str(error).splitlines():
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(f"valid Canon project: {len(catalog.models)} semantic models, {len(catalog.metrics)} metrics; "
               f"next: `canon validate --project {out} --warehouse`")
