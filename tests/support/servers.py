"""Real Canon servers for the tests: `canon serve` (HTTP, optionally SQL) and `canon pg` as subprocesses.

Each runs as `python -m canon.server.cli ...` on a free loopback port, with the environment of the test
run minus Canon's own settings (CANON_*), its output in a log file, and is stopped when the test is
done with it. Starting waits until the server answers (`/healthz`, or a caller's check); a server that
exits or does not answer in time raises with the tail of its log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from tests.support.project import ROOT, SLOW_METRIC, SLOW_MODEL, copy_project, demo_copy, scratch_dir

__all__ = ["ROOT", "SLOW_METRIC", "SLOW_MODEL", "Server", "build_warehouse", "canon_env", "cli_json", "copy_project",
           "free_port", "serve", "serve_pg", "start_pg", "start_serve"]

START_TIMEOUT_S = 60


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def canon_env(extra: dict | None = None) -> dict:
    """The environment for a `canon` subprocess: this one without Canon's settings (CANON_*), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANON_")}
    env.update(extra or {})
    return env


def build_warehouse(path: Path, scale: float = 0.2, seed: int = 42) -> Path:
    """The demo warehouse (scale, seed) at `path`: a copy of the one this process builds once."""
    return demo_copy(path, scale=scale, seed=seed)


def http_ready(path: str = "/healthz") -> Callable[[str], bool]:
    """A readiness check: GET `path` answers 200."""

    def check(url: str) -> bool:
        import httpx

        return httpx.get(url + path, timeout=2).status_code == 200

    return check


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


@dataclass
class Server:
    """A `canon` server subprocess on `port` (`url` is its HTTP base URL, when it serves HTTP)."""

    process: subprocess.Popen
    port: int
    log: Path
    url: str = ""

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if check():
                    return
            except (OSError, httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"{what} did not answer within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send `sig` (SIGKILL: a crash), wait for the exit (killing it after `timeout` s); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def _start(command: str, project: Path, args: tuple, port: int, env: dict | None) -> Server:
    log = scratch_dir() / f"{command}-{port}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "canon.server.cli", command, "--project", str(project), "--port", str(port), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=canon_env(env), cwd=str(project))
    return Server(process, port, log)


def start_serve(project: Path, *args: str, warehouse: Path | str | None = None, env: dict | None = None,
                ready: Callable[[str], bool] | None = None, timeout: float = START_TIMEOUT_S) -> Server:
    """`canon serve --project PROJECT [--warehouse W] --port P --log-level warning ARGS`, started and answering
    (`ready(url)` true, by default GET /healthz is 200). Stop it with `.stop()`."""
    port = free_port()
    options = ("--warehouse", str(warehouse)) if warehouse is not None else ()
    server = _start("serve", Path(project), (*options, "--log-level", "warning", *args), port, env)
    server.url = f"http://127.0.0.1:{port}"
    check = ready or http_ready()
    server.wait_until(lambda: check(server.url), timeout, "canon serve")
    return server


@contextmanager
def serve(project: Path, warehouse: Path | str | None = None, *extra: str, env: dict | None = None,
          ready: Callable[[str], bool] | None = None, timeout: float = START_TIMEOUT_S) -> Iterator[str]:
    """`canon serve` for the duration of the block; yields its base URL."""
    server = start_serve(project, *extra, warehouse=warehouse, env=env, ready=ready, timeout=timeout)
    try:
        yield server.url
    finally:
        server.stop(timeout=10)


def start_pg(project: Path, warehouse: Path | str, *args: str, user: str | None = None, password: str | None = None,
             env: dict | None = None, timeout: float = START_TIMEOUT_S) -> Server:
    """`canon pg --project PROJECT --port P --warehouse W ARGS`, started and accepting connections; `user` and
    `password` become CANON_PG_USER / CANON_PG_PASSWORD."""
    credentials = {"CANON_PG_USER": user, "CANON_PG_PASSWORD": password}
    env = {**{k: v for k, v in credentials.items() if v is not None}, **(env or {})}
    port = free_port()
    server = _start("pg", Path(project), ("--warehouse", str(warehouse), *args), port, env)
    server.wait_until(lambda: listening(port), timeout, "canon pg")
    return server


@contextmanager
def serve_pg(project: Path, warehouse: Path | str, *extra: str, user: str | None = None,
             password: str | None = None, env: dict | None = None, timeout: float = START_TIMEOUT_S) -> Iterator[int]:
    """`canon pg` for the duration of the block; yields its port."""
    server = start_pg(project, warehouse, *extra, user=user, password=password, env=env, timeout=timeout)
    try:
        yield server.port
    finally:
        server.stop(timeout=10)


def cli_json(project: Path, warehouse: Path, *args: str) -> dict:
    """`canon query --format json ARGS` on `project` and `warehouse`, parsed; the command must succeed."""
    out = subprocess.run([sys.executable, "-m", "canon.server.cli", "query", "--project", str(project),
                          "--warehouse", str(warehouse), "--format", "json", *args],
                         capture_output=True, text=True, env=canon_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
