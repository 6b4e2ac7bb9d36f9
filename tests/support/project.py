"""The project under test, copied into temporary folders, and demo warehouses built once per process.

`canon demo` data is deterministic for a (scale, seed), so a test process builds each pair once:
`shared_demo(scale, seed)` is that file itself (read it, never write to it or keep it locked for
writing), `demo_copy(path, scale, seed)` puts a private copy of it at `path` for a test that writes
(feedback, snapshots) or needs its own file. Under pytest-xdist every worker has its own cache.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PARTS = ("semantic_models", "metrics")

SLOW_MODEL = """\
semantic_model:
  name: slow_series
  sql: "SELECT r AS id, r % 7 AS bucket FROM range(3000000000) AS t(r)"
  description: A deliberately slow source, for tests of query timeouts.
  entities:
    - {name: slow_series, type: primary, expr: id}
  dimensions:
    - {name: bucket, type: number}
  measures:
    - {name: checksum, agg: count_distinct, expr: "id * 7919 % 1000003"}
"""
SLOW_METRIC = """\
metrics:
  - name: slow_checksum
    type: simple
    label: Slow checksum
    description: Takes long on purpose.
    measure: slow_series.checksum
"""


@functools.cache
def scratch_dir() -> Path:
    """A temporary folder for this process (demo cache, server logs), removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="canon-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def copy_project(target: Path, *, slow: bool = False) -> Path:
    """The repository's semantic_models/, metrics/ and canon.yml copied into `target` (created if need be).

    `slow` adds a deliberately slow model and metric (`slow_checksum`) for timeout tests."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_PARTS:
        shutil.copytree(ROOT / name, target / name)
    if (ROOT / "canon.yml").is_file():
        shutil.copy(ROOT / "canon.yml", target / "canon.yml")
    if slow:
        (target / "semantic_models" / "slow.yml").write_text(SLOW_MODEL)
        (target / "metrics" / "slow.yml").write_text(SLOW_METRIC)
    return target


@functools.cache
def shared_demo(scale: float = 1.0, seed: int = 42) -> Path:
    """The demo warehouse for (scale, seed), built on first use in this process. Shared: read only."""
    from canon.server.demo import build_demo

    path = scratch_dir() / "demo-cache" / f"demo-{scale:g}-{seed}.duckdb"
    build_demo(path, scale=scale, seed=seed)
    return path


def demo_copy(path: Path, scale: float = 1.0, seed: int = 42) -> Path:
    """A private copy of the (scale, seed) demo warehouse at `path` (what `build_demo(path, ...)` builds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared_demo(scale, seed), path)
    return path
