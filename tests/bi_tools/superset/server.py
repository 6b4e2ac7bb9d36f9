"""A real Superset web server for a test run, and a small client of its REST API.

The server runs `superset run` (Flask's server, one process) from the cached venv (venv.py) on a free
loopback port, with a superset_config.py and a copy of the metadata template in a temp folder. The
client logs in through /api/v1/security/login and sends JSON with the bearer token; CSRF is off in the
test config (API use only, no browser session).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.bi_tools.superset.venv import ADMIN_PASSWORD, ADMIN_USER, SupersetVenv, config_text, superset_env
from tests.support.servers import free_port

START_TIMEOUT_S = 300  # a loaded 2-core machine took 110 s


@dataclass
class SupersetServer:
    process: subprocess.Popen
    url: str
    log: Path
    started_in: float = 0.0

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(venv: SupersetVenv, folder: Path) -> SupersetServer:
    """Superset on a free port, its metadata a copy of the template in `folder`, answering /health."""
    metadata = folder / "superset.db"
    shutil.copy(venv.metadata, metadata)
    config = folder / "superset_config.py"
    config.write_text(config_text(metadata))
    port = free_port()
    log = folder / "superset.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(venv.superset), "run", "--host", "127.0.0.1", "--port", str(port), "--with-threads",
             "--no-reload", "--no-debugger"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=superset_env(config), cwd=folder)
    server = SupersetServer(process, f"http://127.0.0.1:{port}", log)
    deadline = started + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"superset run exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"superset did not answer within {START_TIMEOUT_S} s:\n{server.log_tail()}")
        time.sleep(0.3)
    server.started_in = time.monotonic() - started
    return server


class ApiError(AssertionError):
    pass


@dataclass
class SupersetApi:
    """Superset's REST API as the admin user: JSON in, JSON out; a non-2xx answer raises with its body."""

    url: str
    token: str = ""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    def login(self) -> "SupersetApi":
        body = self.post("/api/v1/security/login", {"username": ADMIN_USER, "password": ADMIN_PASSWORD,
                                                    "provider": "db", "refresh": True})
        self.token = body["access_token"]
        return self

    def _send(self, method: str, path: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        answer = self.http.request(method, self.url + path, headers=headers, **kwargs)
        if not 200 <= answer.status_code < 300:
            raise ApiError(f"{method} {path} -> {answer.status_code}: {answer.text[:4000]}")
        return answer.json()

    def get(self, path: str, **params) -> dict:
        return self._send("GET", path, params=params or None)

    def post(self, path: str, body: dict) -> dict:
        return self._send("POST", path, json=body)

    def put(self, path: str, body: dict) -> dict:
        return self._send("PUT", path, json=body)

    def close(self) -> None:
        self.http.close()
