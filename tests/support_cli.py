"""Helpers for tests that run the real `canon` command: a small demo warehouse built once per
test session (not through conftest.py) and a subprocess runner."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALE = 0.2
SEED = 7


@functools.cache
def demo_warehouse() -> Path:
    """A demo DuckDB file (scale 0.2), built on first use and removed when the session ends."""
    from canon.server.demo import build_demo

    folder = Path(tempfile.mkdtemp(prefix="canon-cli-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "demo.duckdb"
    build_demo(path, scale=SCALE, seed=SEED)
    return path


def canon(*args: str, warehouse: Path | str | None = None, cwd: Path = ROOT, env: dict | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m server.cli ARGS` like a user would; CANON_WAREHOUSE points at `warehouse`."""
    environment = {k: v for k, v in os.environ.items() if k not in ("CANON_WAREHOUSE", "CANON_PROJECT", "CANON_DEBUG")}
    if warehouse is not None:
        environment["CANON_WAREHOUSE"] = str(warehouse)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "canon.server.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_failure(result: subprocess.CompletedProcess) -> list[str]:
    """A non-zero exit with `error: ...` lines on stderr and no traceback; returns the messages."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    return [line[len("error: "):] for line in lines]
