"""Helpers for tests that run the real `canon` command: a small demo warehouse built once per
test process and a subprocess runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.project import ROOT, shared_demo
from tests.support.servers import canon_env

__all__ = ["ROOT", "SCALE", "SEED", "assert_clean_failure", "canon", "demo_warehouse"]

SCALE = 0.2
SEED = 7


def demo_warehouse() -> Path:
    """The demo DuckDB file of the CLI tests (scale 0.2, seed 7), built on first use; shared, read only."""
    return shared_demo(SCALE, SEED)


def canon(*args: str, warehouse: Path | str | None = None, cwd: Path = ROOT, env: dict | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m canon.server.cli ARGS` like a user would; CANON_WAREHOUSE points at `warehouse`.

    Canon's settings (CANON_*) of the test run are not passed on; `env` adds to the environment."""
    environment = canon_env({"CANON_WAREHOUSE": str(warehouse)} if warehouse is not None else None)
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
