"""Shared fixtures: one demo warehouse per session, the catalog, and the warehouses to test on.

`warehouse` is parametrized over WAREHOUSES, so every oracle test runs once per warehouse:
DuckDB (the `demo_path` file) and PostgreSQL (`pg_demo_url` from tests/pg_server.py, registered
below: a throwaway server holding the same demo data, same scale and seed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from canon.compiler.compile import load_catalog
from canon.server.demo import build_demo
from canon.server.warehouse import open_warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
# the oracle helpers (tests/oracle.py) import as `oracle`, whatever pytest's import mode
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest_plugins = ["tests.pg_server"]  # pg_server_url, pg_demo_url: a throwaway PostgreSQL server
DEMO_SCALE = 1.0
DEMO_SEED = 42

WAREHOUSES = ["duckdb", "postgres"]


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("canon_demo") / "demo.duckdb"
    build_demo(path, scale=DEMO_SCALE, seed=DEMO_SEED)
    return path


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(REPO_ROOT)


@pytest.fixture(scope="session", params=WAREHOUSES)
def warehouse(request):
    kind = request.param
    if kind == "duckdb":
        wh = open_warehouse(str(request.getfixturevalue("demo_path")))
    elif kind == "postgres":
        wh = open_warehouse(request.getfixturevalue("pg_demo_url"))
    else:  # pragma: no cover - a typo in WAREHOUSES
        raise ValueError(f"unknown warehouse kind {kind!r}")
    yield wh
    wh.close()
