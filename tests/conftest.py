"""Shared fixtures: one demo warehouse per session, the catalog, and the warehouses to test on.

`warehouse` is parametrized over WAREHOUSES, so every oracle test runs once per warehouse:
DuckDB (the `demo_path` file) and PostgreSQL (`pg_demo_url` from tests/support/pg_server.py,
registered below: a throwaway server holding the same demo data, same scale and seed).

Markers (registered in pyproject.toml) are set here, in pytest_collection_modifyitems: `postgres` on every
test that uses the throwaway PostgreSQL server (a pg_server_url / pg_demo_url fixture, or a fixture
parametrized with "postgres", like `warehouse`); test files mark what needs Java, Node, ODBC, Spark/chDB
or is slow (`java`, `node`, `odbc`, `engines`, `superset`, `slow`); every other test gets `fast`. The fast lane,
`python -m pytest -q -n 2 -m fast`, runs exactly those; the full suite runs everything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.project import demo_copy

REPO_ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.support.pg_server"]  # pg_server_url, pg_demo_url: a throwaway PostgreSQL server
DEMO_SCALE = 1.0
DEMO_SEED = 42

WAREHOUSES = ["duckdb", "postgres"]


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory) -> Path:
    return demo_copy(tmp_path_factory.mktemp("canon_demo") / "demo.duckdb", DEMO_SCALE, DEMO_SEED)


@pytest.fixture(scope="session")
def catalog():
    from canon.compiler.compile import load_catalog  # imported here: the xdist controller never needs it

    return load_catalog(REPO_ROOT)


@pytest.fixture(scope="session", params=WAREHOUSES)
def warehouse(request):
    from canon.server.warehouses import open_warehouse

    kind = request.param
    if kind == "duckdb":
        wh = open_warehouse(str(request.getfixturevalue("demo_path")))
    elif kind == "postgres":
        wh = open_warehouse(request.getfixturevalue("pg_demo_url"))
    else:  # pragma: no cover - a typo in WAREHOUSES
        raise ValueError(f"unknown warehouse kind {kind!r}")
    yield wh
    wh.close()


# --- markers: which tests need what (the fast lane is `-m fast`) -----------------------------------------

POSTGRES_FIXTURES = {"pg_server_url", "pg_demo_url"}  # the throwaway server (tests/support/pg_server.py)
NOT_FAST = ("postgres", "java", "node", "odbc", "engines", "slow", "superset")


def _uses_postgres(item) -> bool:
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return False
    # a fixture parametrized over warehouses (conftest's `warehouse`, or a module's own) that is "postgres"
    # here; a plain @pytest.mark.parametrize value "postgres" (a dialect name) needs no server
    definitions = item._fixtureinfo.name2fixturedefs
    return any(value == "postgres" and any(d.params is not None for d in definitions.get(name, ()))
               for name, value in callspec.params.items())


def _uses_spark(item) -> bool:
    callspec = getattr(item, "callspec", None)
    values = callspec.params.values() if callspec is not None else ()
    return "spark" in getattr(item, "fixturenames", ()) or any("spark" in str(value) for value in values)


# what a test's name says it drives (test_jdbc_..., test_psql_...), for tests not marked in their file
NAMED = {"jdbc": "java", "odbc": "odbc", "psql": "postgres"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _uses_postgres(item) and item.get_closest_marker("postgres") is None:
            item.add_marker("postgres")
        name = getattr(item, "originalname", item.name)
        for word, marker in NAMED.items():
            if word in name and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
        if item.get_closest_marker("engines") and _uses_spark(item) and item.get_closest_marker("java") is None:
            item.add_marker("java")  # Spark runs on the JVM
        if not any(item.get_closest_marker(name) for name in NOT_FAST):
            item.add_marker("fast")
