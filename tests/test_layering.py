"""The architecture, checked: what may import what, and what the package installs.

- the compiler is pure: it never imports canon.server, a warehouse driver or a web framework;
- front ends (CLI, HTTP, Cube, PostgreSQL wire, recommendations) run queries only through the
  runtime: they never open a warehouse, call its `execute`, or reach into the compiler's passes;
- everything imports Canon as `canon.*`, and the wheel installs nothing named `compiler` or `server`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = {"duckdb", "psycopg", "psycopg2", "pyspark", "chdb", "fastapi", "starlette", "uvicorn", "asyncpg"}
COMPILER_PASSES = {"load", "validate", "resolve", "plan", "render"}  # internals behind compile_request
FRONT_ENDS = ["server/cli.py", "server/http_api.py", "server/cube_api.py", "server/pgwire", "server/recommend"]
# not queries of the warehouse, so not the runtime's business:
OWN_ENGINES = {
    "server/pgwire/pgcatalog.py": "the pg_catalog emulation runs in a private in-memory DuckDB",
    "server/pgwire/catalog_guard.py": "reopens the pg_catalog emulation's private DuckDB read-only",
    "server/pgwire/post_aggregation.py": "SQL over a request's result rows, in a private in-memory DuckDB",
    "server/recommend/feedback.py": "loads the feedback journal into the warehouse (a write, before serving)",
}


def _python_files(*parts: str) -> list[Path]:
    files = []
    for part in parts:
        path = ROOT / part
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["canon", *path.relative_to(ROOT).with_suffix("").parts[:-1]]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def test_the_compiler_imports_no_server_driver_or_framework():
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}"
           for path in _python_files("compiler") for name, line in _imports(path)
           if name.startswith("canon.server") or name.split(".")[0] in DRIVERS]
    assert not bad, "the compiler must stay pure:\n" + "\n".join(bad)


def test_front_ends_go_through_the_runtime():
    bad = []
    for path in _python_files(*FRONT_ENDS):
        for name, line in _imports(path):
            parts = name.split(".")
            where = f"{path.relative_to(ROOT)}:{line}: {name}"
            if parts[:3] == ["canon", "server", "warehouses"] and parts[3:4] not in (["base"], ["postgres"]):
                bad.append(where + " (open warehouses through the runtime)")
            if parts[:2] == ["canon", "compiler"] and len(parts) > 2 and parts[2] in COMPILER_PASSES:
                bad.append(where + " (compiler internals: use canon.compiler.compile)")
            if parts[0] in DRIVERS - {"fastapi", "starlette", "uvicorn"} and \
                    str(path.relative_to(ROOT)) not in OWN_ENGINES:
                bad.append(where + " (a warehouse driver)")
        source = path.read_text(encoding="utf-8")
        for token in ("open_warehouse(", "run_query("):
            if token in source:
                bad.append(f"{path.relative_to(ROOT)}: calls {token[:-1]} (use the runtime)")
    assert not bad, "front ends must run queries through canon.server.runtime:\n" + "\n".join(bad)


def test_every_import_names_the_canon_package():
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}"
           for path in _python_files("compiler", "server", "tests", "bench", "canon")
           for name, line in _imports(path) if name.split(".")[0] in ("compiler", "server")]
    assert not bad, "import canon.compiler / canon.server, never the bare folders:\n" + "\n".join(bad)


def test_pyproject_lists_every_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {"canon." + ".".join(p.parent.relative_to(ROOT).parts) for top in ("compiler", "server")
               for p in (ROOT / top).rglob("__init__.py")} | {"canon"}
    folders.add("canon.demo_project")  # data only: the demo catalog mapped from the top-level folders
    assert set(config["packages"]) == folders


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    return next(out.glob("canon_semantic-*.whl"))


@pytest.mark.slow  # builds the wheel with pip
def test_the_wheel_installs_only_the_canon_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {t for t in tops if not t.endswith(".dist-info")} == {"canon"}
    for module in ("canon/__init__.py", "canon/compiler/compile.py", "canon/server/runtime/service.py",
                   "canon/server/warehouses/base.py", "canon/server/pgwire/server.py"):
        assert module in names


def test_the_public_api():
    import canon

    assert {"load_catalog", "compile_request", "QueryRequest", "Runtime", "CanonError", "QueryTimeoutError"} \
        <= set(canon.__all__)
    catalog = canon.load_catalog(ROOT)
    sql = canon.compile_request(catalog, canon.QueryRequest(metrics=("revenue",)), "postgres").sql
    assert sql.startswith("SELECT")
    with pytest.raises(AttributeError):
        canon.not_a_name  # noqa: B018
