"""Shared by the HTTP tests: a project copy, a demo warehouse and a real `canon serve` on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

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


def copy_project(target: Path, *, slow: bool = False) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("semantic_models", "metrics"):
        shutil.copytree(ROOT / name, target / name)
    if (ROOT / "canon.yml").is_file():
        shutil.copy(ROOT / "canon.yml", target / "canon.yml")
    if slow:
        (target / "semantic_models" / "slow.yml").write_text(SLOW_MODEL)
        (target / "metrics" / "slow.yml").write_text(SLOW_METRIC)
    return target


def build_warehouse(path: Path, scale: float = 0.2) -> Path:
    from canon.server.demo import build_demo

    build_demo(path, scale=scale)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def canon_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CANON_WAREHOUSE", "CANON_PROJECT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextmanager
def serve(project: Path, warehouse: Path | str, *extra: str, timeout: float = 60):
    """`canon serve` in a subprocess; yields its base URL and stops it afterwards."""
    port = free_port()
    log = open(project / f"serve-{port}.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "canon.server.cli", "serve", "--project", str(project), "--warehouse", str(warehouse),
         "--port", str(port), "--log-level", "warning", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=canon_env(), cwd=str(project))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"canon serve exited with {proc.returncode}:\n{log.read()}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("canon serve did not start in time")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def cli_json(project: Path, warehouse: Path, *args: str) -> dict:
    import json

    out = subprocess.run([sys.executable, "-m", "canon.server.cli", "query", "--project", str(project),
                          "--warehouse", str(warehouse), "--format", "json", *args],
                         capture_output=True, text=True, env=canon_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
