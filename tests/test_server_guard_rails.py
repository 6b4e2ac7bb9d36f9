"""The servers' guard rails, proven with real clients against real `canon serve` / `canon pg` processes.

On the DuckDB demo file and (where the engine matters) on PostgreSQL with the same data:
- `SELECT * FROM sales` over the wire is fast and the server stays small (peak RSS from /proc);
- a query past its time cap fails (SQLSTATE 57014 over the wire, HTTP 504 query_timeout, a Cube error);
- a psycopg or JDBC cancel stops the query;
- a client that goes away mid-query (a killed psql-like process, a closed HTTP socket) stops it;
- while one expensive query runs, a cheap one on another connection answers at once.
"Stops" always means inside the engine, checked from outside the server: on DuckDB the server process
stops burning CPU (utime+stime in /proc/<pid>/stat) and a new query answers at once; on PostgreSQL
pg_stat_activity (seen from a separate connection) shows no active statement of that query (its
CROSS JOIN, or the FETCH from the server-side cursor Canon streams it through).

The endless query is `stress_weight` (tests/fixtures/stress: a 3-way cross join of order_items).
Servers are subprocesses (tests.support.servers) started once per module and warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support import ROOT, Server, start_pg, start_serve
from tests.test_runtime import stress_project

pytestmark = pytest.mark.slow  # time caps, cancels and disconnects wait on purpose: not in the fast lane

USER, PASSWORD = "guard", "guard-rails-pw"
SHORT_CAP_S = 1.5  # the time cap of the servers that must time out
LONG_CAP_S = 60.0  # the "generous" cap: cancels and disconnects must stop the query long before it
STRESS_SQL = "SELECT stress_weight FROM stress"
CHEAP_SQL = "SELECT MEASURE(order_count) FROM sales"
IDLE_CPU_S = 0.3  # CPU a DuckDB server may burn in one idle second (2 cores busy would be ~2 s)
JDBC_JAR = Path("/usr/share/java/postgresql.jar")
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 90


# --- helpers: /proc, PostgreSQL activity ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_over(pid: int, seconds: float = 1.0) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def wait_quiet(pid: int, within: float, window: float = 1.0, max_cpu: float = IDLE_CPU_S) -> float:
    """Wait until a one-second window burns less than `max_cpu`; returns the seconds waited (or raises)."""
    started = time.perf_counter()
    used = None
    while time.perf_counter() - started < within:
        used = cpu_over(pid, window)
        if used < max_cpu:
            return time.perf_counter() - started
    raise AssertionError(f"process {pid} still burns {used:.2f} s CPU per {window:g} s after {within:g} s")


def pg_active_stress(url: str, min_age_s: float = 0.0) -> int:
    """Active statements (parallel workers included) running the stress query. Canon streams a result
    through a server-side cursor, so while rows are computed the active statement is `FETCH ... FROM
    "canon_stream"` (the CROSS JOIN only shows in the DECLARE): both count. `min_age_s` skips statements
    younger than that (a cheap query's brief FETCH)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
            "AND (query LIKE %s OR query LIKE %s) AND now() - query_start >= %s * interval '1 second'",
            ("%CROSS JOIN%", "%FETCH%canon_stream%", min_age_s)).fetchone()[0]


def wait_pg(url: str, want_active: bool, within: float) -> float:
    """Wait until PostgreSQL runs (for 0.3 s at least) or no longer runs the stress query; returns the
    seconds waited."""
    started = time.perf_counter()
    while True:
        active = pg_active_stress(url, min_age_s=0.3 if want_active else 0.0) > 0
        if active == want_active:
            return time.perf_counter() - started
        if time.perf_counter() - started > within:
            raise AssertionError(f"PostgreSQL {'never ran' if want_active else 'still runs'} the stress query "
                                 f"after {within:g} s")
        time.sleep(0.05)


def project_with_limits(folder: Path, **limits) -> Path:
    """The demo project plus the stress metric, with a canon.yml `limits:` section (caps for `canon pg`)."""
    folder.mkdir(parents=True)
    stress_project(folder)
    with open(folder / "canon.yml", "a") as config:
        config.write("\nlimits:\n" + "".join(f"  {k}: {v}\n" for k, v in limits.items()))
    return folder


def pg_connect(port: int, **options) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="canon",
                           autocommit=True, connect_timeout=5, **options)


def dsn(port: int) -> str:
    return f"host=127.0.0.1 port={port} user={USER} password={PASSWORD} dbname=canon connect_timeout=5"


# --- the servers --------------------------------------------------------------------------------------------


@dataclass
class Stack:
    kind: str  # "duckdb" or "postgres"
    url: str  # the warehouse
    http: Server  # canon serve --query-timeout SHORT_CAP_S (a request may ask for more)
    pg_short: Server  # canon pg, canon.yml limits.query_timeout_s = SHORT_CAP_S
    pg_long: Server  # canon pg, canon.yml limits.query_timeout_s = LONG_CAP_S

    def http_query(self, body: dict, timeout: float = 30) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.http.port}/v1/query", json=body, timeout=timeout)

    def cheap_wire(self, server: Server) -> float:
        """A cheap query through a front end; returns its seconds (it must answer at once)."""
        started = time.perf_counter()
        with pg_connect(server.port) as connection:
            assert connection.execute(CHEAP_SQL).fetchone()[0] > 0
        return time.perf_counter() - started

    def cheap_http(self) -> float:
        started = time.perf_counter()
        response = self.http_query({"metrics": ["order_count"]})
        assert response.status_code == 200 and response.json()["rows"][0][0] > 0, response.text
        return time.perf_counter() - started

    def assert_engine_idle(self, server: Server, cheap) -> dict:
        """After a query was stopped: DuckDB — a new query answers at once and the server stops burning CPU
        (over the next second); PostgreSQL — no active stress statement within ~2 s. Returns the figures."""
        if self.kind == "postgres":
            waited = wait_pg(self.url, want_active=False, within=2.0)
            took = cheap()
            assert took < 1.0, f"a cheap query took {took:.2f} s after the stop"
            return {"pg_idle_after_s": round(waited, 3), "cheap_s": round(took, 3)}
        took = cheap()
        assert took < 1.0, f"a cheap query took {took:.2f} s after the stop: the engine is still busy"
        used = cpu_over(server.process.pid, 1.0)
        assert used < IDLE_CPU_S, f"the server burned {used:.2f} s CPU in the second after the stop"
        return {"cheap_s": round(took, 3), "cpu_next_1s": round(used, 3)}

    def assert_engine_busy(self, server: Server) -> None:
        """The endless query really runs in the engine (so the idle check after a stop means something)."""
        if self.kind == "postgres":
            wait_pg(self.url, want_active=True, within=3.0)
        else:
            used = cpu_over(server.process.pid, 0.5)  # above what an idle server may burn (the machine may be shared)
            assert used > IDLE_CPU_S / 2, f"the stress query burns only {used:.2f} s CPU per 0.5 s in the server"


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def stack(request, tmp_path_factory):
    kind = request.param
    url = str(request.getfixturevalue("demo_path")) if kind == "duckdb" else request.getfixturevalue("pg_demo_url")
    base = tmp_path_factory.mktemp(f"guard-{kind}")
    short = project_with_limits(base / "short", query_timeout_s=SHORT_CAP_S)
    long = project_with_limits(base / "long", query_timeout_s=LONG_CAP_S)
    servers: list[Server] = []
    try:
        servers.append(start_serve(long, "--query-timeout", str(SHORT_CAP_S), warehouse=url, timeout=START_TIMEOUT_S))
        for project in (short, long):
            servers.append(start_pg(project, url, user=USER, password=PASSWORD, timeout=START_TIMEOUT_S))
        for server in servers:  # start-up work (the recommendation snapshot, freshness) must be over
            wait_quiet(server.process.pid, within=120)
        yield Stack(kind, url, *servers)
    finally:
        for server in servers:
            server.stop(timeout=10)


# --- 1. SELECT * over the wire: fast, small --------------------------------------------------------------------


def test_select_star_over_the_wire_is_fast_and_small(demo_path):
    """A fresh `canon pg` on the scale-1 demo: `SELECT * FROM sales` answers the groups that exist (at most
    one per order line; the dense time-spine join made 7.9 million rows), with peak RSS under 1 GB. Its
    speed target (under 2 s) is measured by bench/wire.py, not asserted here."""
    server = start_pg(ROOT, demo_path, user=USER, password=PASSWORD, timeout=START_TIMEOUT_S)
    try:
        with pg_connect(server.port) as connection:
            connection.execute(CHEAP_SQL).fetchone()  # connected and the catalog is loaded
            started, server_cpu = time.perf_counter(), cpu_seconds(server.process.pid)
            cursor = connection.execute("SELECT * FROM sales")
            rows = cursor.fetchall()
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(server.process.pid) - server_cpu
            columns = len(cursor.description)
        rss = peak_rss_mb(server.process.pid)
        print(f"\nSELECT * FROM sales over the wire (DuckDB demo, scale 1): {len(rows):,} rows x {columns} columns "
              f"in {elapsed:.2f} s (server CPU {server_cpu:.2f} s, load average {os.getloadavg()[0]:.1f}); "
              f"server peak RSS (VmHWM) {rss:.0f} MB")
        import duckdb

        with duckdb.connect(str(demo_path), read_only=True) as demo:
            lines = demo.execute("SELECT count(*) FROM order_items").fetchone()[0]
        assert 0 < len(rows) <= lines, f"{len(rows):,} rows from {lines:,} order lines"
        assert elapsed < 60, f"SELECT * FROM sales took {elapsed:.2f} s"  # the spine cross product took minutes
        assert rss < 1024, f"the server's peak RSS was {rss:.0f} MB"
    finally:
        server.stop(timeout=10)


# --- 2. the time cap ---------------------------------------------------------------------------------------------


def test_time_cap_over_the_wire(stack):
    with pg_connect(stack.pg_short.port) as connection:
        connection.execute(CHEAP_SQL).fetchone()  # connected, the views known: time the capped statement only
        started = time.perf_counter()
        with pytest.raises(psycopg.errors.QueryCanceled) as caught:
            connection.execute(STRESS_SQL)
        elapsed = time.perf_counter() - started
        assert caught.value.sqlstate == "57014"
        assert connection.execute(CHEAP_SQL).fetchone()[0] > 0  # the connection stays usable
    figures = stack.assert_engine_idle(stack.pg_short, lambda: stack.cheap_wire(stack.pg_short))
    print(f"\n[{stack.kind}] wire time cap {SHORT_CAP_S} s: 57014 after {elapsed:.2f} s; {figures}")
    assert SHORT_CAP_S - 0.1 < elapsed < SHORT_CAP_S + 2.0


def test_time_cap_over_http(stack):
    started = time.perf_counter()
    response = stack.http_query({"metrics": ["stress_weight"]})
    elapsed = time.perf_counter() - started
    assert response.status_code == 504, response.text
    assert response.json()["code"] == "query_timeout"
    figures = stack.assert_engine_idle(stack.http, stack.cheap_http)
    print(f"\n[{stack.kind}] HTTP time cap {SHORT_CAP_S} s: 504 after {elapsed:.2f} s; {figures}")
    assert SHORT_CAP_S - 0.1 < elapsed < SHORT_CAP_S + 2.0


def test_time_cap_over_cube_api(stack):
    base = f"http://127.0.0.1:{stack.http.port}/cubejs-api/v1"
    meta = httpx.get(f"{base}/meta", timeout=30).json()
    measure = next(m["name"] for cube in meta["cubes"] for m in cube["measures"] if m["name"].endswith(".stress_weight"))
    started = time.perf_counter()
    response = httpx.post(f"{base}/load", json={"query": {"measures": [measure]}}, timeout=30)
    elapsed = time.perf_counter() - started
    assert response.status_code >= 400, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and "limit" in body["error"], body
    figures = stack.assert_engine_idle(stack.http, stack.cheap_http)
    print(f"\n[{stack.kind}] Cube /load time cap: {response.status_code} after {elapsed:.2f} s; {figures}")
    assert elapsed < SHORT_CAP_S + 2.0


# --- 3. cancel ----------------------------------------------------------------------------------------------------


def test_psycopg_cancel_stops_the_engine_query(stack):
    server = stack.pg_long
    with pg_connect(server.port) as connection:
        outcome: dict = {}

        def run():
            try:
                connection.execute(STRESS_SQL)
                outcome["error"] = None
            except Exception as error:  # noqa: BLE001 — inspected below
                outcome["error"] = error
            outcome["ended"] = time.perf_counter()

        worker = threading.Thread(target=run)
        worker.start()
        try:
            time.sleep(0.5)
            stack.assert_engine_busy(server)
            cancelled = time.perf_counter()
            connection.cancel()
            worker.join(10)
            assert not worker.is_alive(), "the statement did not end after the cancel"
        finally:
            if worker.is_alive():
                connection.cancel()
                worker.join(10)
        latency = outcome["ended"] - cancelled
        assert isinstance(outcome["error"], psycopg.errors.QueryCanceled), outcome["error"]
        assert outcome["error"].sqlstate == "57014"
        assert connection.execute(CHEAP_SQL).fetchone()[0] > 0
    figures = stack.assert_engine_idle(server, lambda: stack.cheap_wire(server))
    print(f"\n[{stack.kind}] psycopg cancel: QueryCanceled {latency * 1000:.0f} ms after cancel(); {figures}")
    assert latency < 1.0


def test_jdbc_cancel_stops_the_engine_query(stack):
    assert shutil.which("java") and JDBC_JAR.is_file(), \
        "CI installs Debian's default-jdk-headless and libpostgresql-jdbc-java"
    done = subprocess.run(["java", "-cp", str(JDBC_JAR), "JdbcCancel.java", str(stack.pg_long.port), USER, PASSWORD,
                           STRESS_SQL], cwd=Path(__file__).parent / "pgwire_clients", capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert lines.get("sqlstate") == "57014", done.stdout
    assert int(lines["after"]) > 0
    figures = stack.assert_engine_idle(stack.pg_long, lambda: stack.cheap_wire(stack.pg_long))
    print(f"\n[{stack.kind}] JDBC Statement.cancel(): SQLState {lines['sqlstate']} {lines['cancel_ms']} ms after "
          f"cancel(); {figures}")
    assert 0 <= int(lines["cancel_ms"]) < 1000


# --- 4. a client that goes away ------------------------------------------------------------------------------------


def test_killed_wire_client_stops_the_engine_query(stack):
    server = stack.pg_long
    script = textwrap.dedent(f"""
        import psycopg, sys
        connection = psycopg.connect({dsn(server.port)!r}, autocommit=True)
        print("connected", flush=True)
        connection.execute({STRESS_SQL!r})
        print("finished", flush=True)
    """)
    client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "connected", client.stderr.read()
        time.sleep(0.5)
        stack.assert_engine_busy(server)
        client.send_signal(signal.SIGKILL)
        client.wait(5)
        killed = time.perf_counter()
        if stack.kind == "postgres":
            waited = wait_pg(stack.url, want_active=False, within=3.0)
        else:
            waited = wait_quiet(server.process.pid, within=4.0)
        took = stack.cheap_wire(server)
        assert took < 1.0
        print(f"\n[{stack.kind}] wire client killed mid-query: engine idle {waited:.2f} s later "
              f"({time.perf_counter() - killed:.2f} s incl. the check); a new query {took:.3f} s")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)


def test_closed_http_request_stops_the_engine_query(stack):
    body = json.dumps({"metrics": ["stress_weight"], "timeout_s": LONG_CAP_S}).encode()
    request = (f"POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sock = socket.create_connection(("127.0.0.1", stack.http.port), timeout=5)
    try:
        sock.sendall(request)
        time.sleep(0.5)
        stack.assert_engine_busy(stack.http)
    finally:
        sock.close()
    closed = time.perf_counter()
    if stack.kind == "postgres":
        waited = wait_pg(stack.url, want_active=False, within=3.0)
    else:
        waited = wait_quiet(stack.http.process.pid, within=4.0)
    took = stack.cheap_http()
    assert took < 1.0
    print(f"\n[{stack.kind}] HTTP client closed mid-query: engine idle {waited:.2f} s later "
          f"({time.perf_counter() - closed:.2f} s incl. the check); a new query {took:.3f} s")


# --- 5. one expensive query does not hold up the others ---------------------------------------------------------------


def test_cheap_wire_query_answers_while_an_expensive_one_runs(stack):
    server = stack.pg_long
    with pg_connect(server.port) as busy:
        outcome: dict = {}

        def run():
            try:
                busy.execute(STRESS_SQL)
            except Exception as error:  # noqa: BLE001
                outcome["error"] = error

        worker = threading.Thread(target=run)
        worker.start()
        try:
            time.sleep(0.5)
            stack.assert_engine_busy(server)
            took = stack.cheap_wire(server)  # a new connection, while the stress query still runs
            assert worker.is_alive(), "the expensive query ended early"
        finally:
            busy.cancel()
            worker.join(10)
        assert isinstance(outcome.get("error"), psycopg.errors.QueryCanceled)
    print(f"\n[{stack.kind}] wire: a cheap query answered in {took:.3f} s beside the stress query")
    assert took < 1.0


def test_cheap_http_query_answers_while_an_expensive_one_runs(stack):
    outcome: dict = {}
    generous = 4.0

    def run():
        outcome["response"] = stack.http_query({"metrics": ["stress_weight"], "timeout_s": generous})

    worker = threading.Thread(target=run)
    worker.start()
    try:
        time.sleep(0.5)
        stack.assert_engine_busy(stack.http)
        took = stack.cheap_http()
        assert worker.is_alive(), "the expensive query ended early"
    finally:
        worker.join(generous + 5)
    assert outcome["response"].status_code == 504  # it ran to its own cap
    print(f"\n[{stack.kind}] HTTP: a cheap query answered in {took:.3f} s beside the stress query")
    assert took < 1.0
