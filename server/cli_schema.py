"""`canon schema [--out DIR]`: write the YAML reference and the JSON Schemas (server/schema_doc.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="schema")
@click.option("--out", "out", type=click.Path(file_okay=False), default="docs", show_default=True,
              help="Folder for reference.md and schema/*.json.")
def schema_command(out):
    """Write the YAML reference (reference.md) and JSON Schemas for editors (schema/*.json)."""
    from canon.server.schema_doc import write_docs

    for path in write_docs(Path(out)):
        click.echo(f"wrote {path}")
