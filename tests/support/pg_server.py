"""pytest plugin: a throwaway PostgreSQL server for the tests.

Fixtures (session scope):
- `pg_server_url`: a postgresql:// URL of a superuser on a fresh server. The server is initdb'ed into a
  temporary folder, listens on a free loopback port (its unix socket stays in that folder), runs with
  fsync off, and is stopped and deleted at the end of the session. Loopback connections use trust auth.
- `pg_demo_url`: the URL of a database `canon_demo` on that server holding the scale 1.0 / seed 42 demo
  warehouse (the same data as the DuckDB `demo_path` fixture), loaded with server.pg_load.

PostgreSQL refuses to run as root, and tests and CI run as root: then initdb and postgres run as the
`postgres` system user (created by Debian's `postgresql` package), which owns the temporary folder.
As any other user they run as that user.

The binaries come from $CANON_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else `pg_config --bindir`,
else PATH. Set CANON_TEST_PG_URL to use an existing server instead (a database on it is replaced).

Register with `pytest_plugins = ["tests.support.pg_server"]` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.project import demo_copy
from tests.support.servers import free_port

DEMO_SCALE = 1.0
DEMO_SEED = 42
DEMO_DB = "canon_demo"
START_TIMEOUT_S = 60
SUPERUSER = "canon"


def find_pg_bin() -> Path:
    candidates: list[Path] = []
    if os.environ.get("CANON_PG_BIN"):
        candidates.append(Path(os.environ["CANON_PG_BIN"]))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parent.name)] or [0])
    candidates += [Path(p) for p in reversed(versions)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(Exception):
            candidates.append(Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                                  check=True).stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise RuntimeError("no PostgreSQL server binaries (initdb, postgres) found: install the server "
                       "(Debian: apt-get install -y postgresql) or set CANON_PG_BIN to its bin folder")


def _server_preexec(as_user: dict):
    """In the server's process, before exec: drop to the server's user, then ask for SIGINT (fast shutdown)
    when the pytest process dies, so a killed test run leaves no server behind (Linux; elsewhere only the
    session teardown stops it). The order matters: a uid change clears the parent-death signal."""

    try:  # resolved here, in the parent: after the uid change the child may not read Python's own files
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        prctl = None

    def preexec() -> None:
        if as_user:
            os.setgroups([])
            os.setgid(as_user["group"])
            os.setuid(as_user["user"])
        if prctl is not None:
            prctl(1, int(signal.SIGINT), 0, 0, 0)  # PR_SET_PDEATHSIG

    return preexec


def _sweep_stale_servers() -> None:
    """Delete the folders of throwaway servers whose postmaster is gone (a killed run's leftovers).

    A folder touched in the last 10 minutes is left alone: another test process may be running initdb
    in it, whose single-user backends leave a postmaster.pid naming a process that has just ended."""
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), "canon-pg-*")):
        with contextlib.suppress(OSError):
            touched = max(os.path.getmtime(path) for path in (folder, os.path.join(folder, "data")) if os.path.exists(path))
            if time.time() - touched < 600:
                continue
        pid_file = Path(folder) / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):  # stopped, or starting right now: judge by age
            with contextlib.suppress(OSError):
                if time.time() - os.path.getmtime(folder) > 600:
                    shutil.rmtree(folder, ignore_errors=True)
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass


@dataclass
class ThrowawayPostgres:
    """One temporary PostgreSQL server; `start()` then `stop()`."""

    bin_dir: Path
    root: Path | None = None
    port: int | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root, and PostgreSQL refuses to run as root: a `postgres` user is "
                               "needed to run the throwaway server (Debian's postgresql package creates it)") from None
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def start(self) -> str:
        as_user = self._run_as()
        _sweep_stale_servers()
        self.root = Path(tempfile.mkdtemp(prefix="canon-pg-"))
        if as_user:
            os.chown(self.root, as_user["user"], as_user["group"])
        data = self.root / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", HOME=str(self.root))
        initdb = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            cwd=self.root, env=env, capture_output=True, text=True, check=False, **as_user)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}\n{initdb.stderr}")
        last_error = ""
        for _ in range(3):  # the free port may be taken between probing and binding: try another
            self.port = free_port()
            log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the server writes it; closed below
            self.process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=120", "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
                 # not UTC on purpose: Canon's sessions must not depend on the server's time zone
                 "-c", "timezone=Pacific/Auckland"],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_server_preexec(as_user))
            log.close()
            if self._wait_ready():
                return self.url
            last_error = self._log_tail()
            self._kill()
        self.stop()
        raise RuntimeError(f"the throwaway PostgreSQL server did not start:\n{last_error}")

    def _wait_ready(self) -> bool:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "postgres.log").read_text(errors="replace")[-4000:]
        return ""

    def _kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: roll back sessions, exit
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self.process = None

    def stop(self) -> None:
        self._kill()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def create_database(server_url: str, name: str) -> str:
    """(Re)create database `name` on the server; returns its URL."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if "://" in server_url:  # keep the URL form, which every Canon entry point takes
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(server_url)
        return urlunsplit(parts._replace(path=f"/{name}"))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server_url():
    external = os.environ.get("CANON_TEST_PG_URL")
    if external:
        yield external
        return
    server = ThrowawayPostgres(find_pg_bin())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_demo_duckdb(request, tmp_path_factory) -> Path:
    """The DuckDB demo (scale 1.0, seed 42): conftest's `demo_path` if it exists, else a build of our own."""
    try:
        return Path(request.getfixturevalue("demo_path"))
    except pytest.FixtureLookupError:
        return demo_copy(tmp_path_factory.mktemp("pg-demo") / "demo.duckdb", DEMO_SCALE, DEMO_SEED)


@pytest.fixture(scope="session")
def pg_demo_url(pg_server_url, pg_demo_duckdb) -> str:
    from canon.server.pg_load import load_demo_into_postgres

    url = create_database(pg_server_url, DEMO_DB)
    load_demo_into_postgres(pg_demo_duckdb, url)
    return url
