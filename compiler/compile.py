"""The table of contents: load -> validate -> resolve -> plan -> render.

    catalog = load_catalog(project_dir)              # load + validate (once per catalog version)
    compiled = compile_request(catalog, request, "postgres")   # resolve + plan + render
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlglot import ErrorLevel, exp

from .catalog import Catalog
from .errors import UnsupportedError
from .listing import is_listing, listing_query
from .load import load_project
from .plan import plan
from .render.dialects import adapt
from .render.query import render_plan
from .request import QueryRequest
from .resolve import resolve
from .validate import build_catalog

DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "spark", "trino", "clickhouse")


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    columns: list[tuple[str, str]]  # (name as requested, type)
    tree: exp.Select
    dialect: str


def load_catalog(project_dir: str | Path) -> Catalog:
    documents, problems = load_project(project_dir)
    return build_catalog(documents, problems)


def compile_request(catalog: Catalog, request: QueryRequest, dialect: str = "duckdb", *, pretty: bool = False) -> CompiledQuery:
    if dialect not in DIALECTS:
        from .errors import did_you_mean
        raise UnsupportedError(f"unknown dialect '{dialect}'", hint=did_you_mean(dialect, DIALECTS))
    if is_listing(request):  # dimensions alone: the combinations that occur (compiler/listing.py)
        tree, columns = listing_query(catalog, request)
        tree = adapt(tree, dialect)
    else:
        resolved = resolve(catalog, request)
        tree, columns = adapt(render_plan(catalog, plan(catalog, resolved)), dialect), resolved.columns
    # the tree was built for this request alone, so the generator may work on it in place
    sql = tree.sql(dialect=dialect, copy=False, pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    return CompiledQuery(sql=sql, columns=columns, tree=tree, dialect=dialect)
