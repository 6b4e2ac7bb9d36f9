"""Wire connection limits (issue 11): pre-authentication timeout and message size, idle-session timeout,
connection caps in total and per address, authentication throttling, non-fatal errors for invalid UTF-8
and over-deep statements, and resource tests (idle sockets, half-sent messages) with a stated RSS bound.

One `canon pg` runs with short limits from canon.yml (`limits: {wire: ...}`). Clients come from distinct
loopback addresses (127.0.0.x, bound as the source address) where a test needs its own address, so the
per-address limits of one test do not touch another's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
import time
from pathlib import Path

import pytest
import yaml

from canon.compiler.errors import ConfigError
from canon.server.pgwire.limits import DEFAULTS, AuthThrottle, WireLimits, fd_budget
from canon.server.runtime.limits import Limits
from tests.support.servers import build_warehouse, copy_project, start_pg

USER, PASSWORD = "analyst", "hardening-pw"
WIRE = {"startup_timeout_s": 1.5, "idle_session_timeout_s": 1.5, "max_connections": 8,
        "max_connections_per_address": 4, "max_pending": 700, "auth_failure_limit": 5,
        "auth_failure_window_s": 60, "auth_failure_delay_s": 0.02, "max_message": 1024 * 1024}
RSS_BOUND_MB = 64  # growth allowed while 500 idle sockets and 20 half-sent 16 MiB messages are open


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    project = copy_project(root / "project")
    config_path = project / "canon.yml"
    config = yaml.safe_load(config_path.read_text()) or {}
    config.setdefault("limits", {})["wire"] = WIRE
    config_path.write_text(yaml.safe_dump(config))
    demo = build_warehouse(root / "demo.duckdb", scale=0.05)
    server = start_pg(project, demo, user=USER, password=PASSWORD)
    yield server
    server.stop(timeout=10)


def dsn(port):
    return f"host=127.0.0.1 port={port} user={USER} password={PASSWORD} dbname=canon sslmode=disable"


# --- a client by hand (psycopg hides the bytes and cannot pick its source address) ----------------------


def connect(port, source="127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


class Wire:
    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()

    def read(self) -> tuple[bytes, bytes]:
        while len(self.buffer) < 5 or len(self.buffer) < 1 + struct.unpack("!i", bytes(self.buffer[1:5]))[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer.extend(chunk)
        length = struct.unpack("!i", bytes(self.buffer[1:5]))[0]
        kind, body = bytes(self.buffer[:1]), bytes(self.buffer[5:1 + length])
        del self.buffer[:1 + length]
        return kind, body

    def until_ready(self) -> list[tuple[bytes, bytes]]:
        out = []
        while not out or out[-1][0] != b"Z":
            out.append(self.read())
        return out

    def query(self, text: bytes) -> list[tuple[bytes, bytes]]:
        self.sock.sendall(message(b"Q", text + b"\0"))
        return self.until_ready()


def fields(body: bytes) -> dict[str, str]:
    """An ErrorResponse's fields: {'S': 'FATAL', 'C': '57P05', 'M': ...}."""
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out


def startup(sock) -> Wire:
    params = b"user\x00" + USER.encode() + b"\x00database\x00canon\x00\x00"
    sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    return Wire(sock)


def login(port, source="127.0.0.1", password=PASSWORD) -> tuple[Wire, bytes, bytes]:
    """Startup and SCRAM-SHA-256 by hand; the last message: (wire, kind, body). 'Z' when logged in."""
    wire = startup(connect(port, source))
    kind, body = wire.read()
    if kind != b"R":
        return wire, kind, body
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"
    first = ("n,," + first_bare).encode()
    wire.sock.sendall(message(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first))
    kind, body = wire.read()
    if kind != b"R":
        return wire, kind, body
    server_first = body[4:].decode()
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    wire.sock.sendall(message(b"p", f"{without_proof},p={proof}".encode()))
    while True:
        kind, body = wire.read()
        if kind in (b"Z", b"E"):
            return wire, kind, body


def closed_by_server(sock, within: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `within` seconds; what it sends is read away."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:  # reset by the server
        return True


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def select_one_seconds(port) -> float:
    import psycopg

    started = time.monotonic()
    with psycopg.connect(dsn(port), autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    return time.monotonic() - started


# --- limits in canon.yml ------------------------------------------------------------------------------------


def test_wire_limits_from_config_and_their_errors():
    assert WireLimits.from_config({}) == WireLimits()
    limits = WireLimits.from_config({"limits": {"wire": {"max_pending": 3, "idle_session_timeout_s": 0}}})
    assert (limits.max_pending, limits.idle_session_timeout_s) == (3, 0.0)
    assert Limits.from_config({"limits": {"wire": {"max_pending": 3}}}).max_rows > 0  # the section is known
    for bad, words in [({"max_conections": 5}, ["max_conections", "max_connections", "startup_timeout_s"]),
                       ({"max_pending": 0}, ["max_pending", "positive whole number"]),
                       ({"max_pending": 2.5}, ["max_pending"]),
                       ({"startup_timeout_s": "10"}, ["startup_timeout_s"]),
                       ({"startup_timeout_s": True}, ["startup_timeout_s"]),
                       ({"idle_session_timeout_s": -1}, ["idle_session_timeout_s"]),
                       ({"max_message": 1000}, ["max_message", "startup_max_message"])]:
        with pytest.raises(ConfigError) as info:
            WireLimits.from_config({"limits": {"wire": bad}})
        text = f"{info.value.message} {info.value.hint}"
        assert all(word in text for word in words), (bad, text)
    with pytest.raises(ConfigError):
        WireLimits.from_config({"limits": {"wire": [1, 2]}})
    assert set(DEFAULTS) == set(WireLimits.__dataclass_fields__)


def test_sockets_stay_within_the_descriptor_budget():
    soft = fd_budget()
    import resource

    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft  # raised to the hard limit where allowed
    small = WireLimits().within(1024)
    assert small.max_pending + small.max_connections <= (1024 - 256) * 3 // 4
    assert small.max_connections_per_address <= small.max_connections
    assert WireLimits().within(1_000_000) == WireLimits()


def test_throttle_grows_then_refuses_then_forgets():
    now = [0.0]
    throttle = AuthThrottle(WireLimits(auth_failure_limit=3, auth_failure_window_s=10, auth_failure_delay_s=0.5),
                            clock=lambda: now[0])
    assert throttle.delay("a") == 0 and throttle.retry_after("a") == 0
    delays = []
    for _ in range(3):
        throttle.failed("a")
        delays.append(throttle.delay("a"))
    assert delays == [0.5, 1.0, 2.0]
    assert throttle.retry_after("a") == 10 and throttle.retry_after("b") == 0
    now[0] = 10.5
    assert throttle.retry_after("a") == 0 and throttle.delay("a") == 0


# --- over the wire ---------------------------------------------------------------------------------------


def test_pre_auth_timeout_closes_silent_and_half_started_sockets(server):
    silent = connect(server.port, "127.0.0.21")
    half = connect(server.port, "127.0.0.21")
    half.sendall(struct.pack("!ii", 40, 196608) + b"user\x00")  # a startup packet that never ends
    authenticating = startup(connect(server.port, "127.0.0.21"))
    assert authenticating.read()[0] == b"R"  # asked for SCRAM, and never answers
    started = time.monotonic()
    for sock in (silent, half, authenticating.sock):
        assert closed_by_server(sock, within=WIRE["startup_timeout_s"] + 2)
    assert time.monotonic() - started < WIRE["startup_timeout_s"] + 2


def test_pre_auth_messages_are_small(server):
    wire = startup(connect(server.port, "127.0.0.22"))
    assert wire.read()[0] == b"R"
    wire.sock.sendall(b"p" + struct.pack("!i", 16 * 1024 * 1024))  # a 16 MiB SASLInitialResponse
    kind, body = wire.read()
    assert kind == b"E" and fields(body)["C"] == "08P01" and "65536" in fields(body)["M"]
    assert closed_by_server(wire.sock, within=2)


def test_post_auth_max_message_is_configurable(server):
    wire, kind, _ = login(server.port, "127.0.0.23")
    assert kind == b"Z"
    wire.sock.sendall(b"Q" + struct.pack("!i", WIRE["max_message"] + 100))
    kind, body = wire.read()
    assert kind == b"E" and fields(body)["S"] == "FATAL" and fields(body)["C"] == "08P01"


def test_idle_session_timeout_is_fatal_57P05(server):
    wire, kind, _ = login(server.port, "127.0.0.24")
    assert kind == b"Z"
    assert wire.query(b"SELECT 1")[-1][0] == b"Z"
    started = time.monotonic()
    kind, body = wire.read()  # nothing sent: the server ends the session
    assert kind == b"E" and fields(body)["S"] == "FATAL" and fields(body)["C"] == "57P05"
    assert "idle-session timeout" in fields(body)["M"]
    assert WIRE["idle_session_timeout_s"] - 0.5 < time.monotonic() - started < WIRE["idle_session_timeout_s"] + 2


def test_connection_caps_per_address_and_in_total(server):
    import psycopg

    held = []
    try:
        for _ in range(WIRE["max_connections_per_address"]):
            wire, kind, _ = login(server.port, "127.0.0.31")
            assert kind == b"Z"
            held.append(wire)
        wire, kind, body = login(server.port, "127.0.0.31")
        assert kind == b"E" and fields(body)["C"] == "53300" and "127.0.0.31" in fields(body)["M"]
        while len(held) < WIRE["max_connections"]:
            wire, kind, _ = login(server.port, f"127.0.0.{32 + len(held)}")
            assert kind == b"Z"
            held.append(wire)
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(dsn(server.port), connect_timeout=5)
        assert "too many clients" in str(info.value)
    finally:
        for wire in held:
            wire.sock.close()
    time.sleep(0.3)  # the server sees the closes
    assert select_one_seconds(server.port) < 1


def test_failed_logins_are_throttled_by_address(server):
    """53 wrong passwords as fast as possible: only auth_failure_limit are checked, the rest are refused
    (28000) without a password exchange; another address is not affected."""
    outcomes = []
    started = time.monotonic()
    for _ in range(53):
        wire, kind, body = login(server.port, "127.0.0.41", password="wrong")
        outcomes.append(fields(body)["C"] if kind == b"E" else kind.decode())
        wire.sock.close()
    elapsed = time.monotonic() - started
    limit = WIRE["auth_failure_limit"]
    assert outcomes == ["28P01"] * limit + ["28000"] * (53 - limit), outcomes
    delays = sum(WIRE["auth_failure_delay_s"] * 2 ** (n - 1) for n in range(1, limit))  # 0.02 + ... + 0.16
    assert elapsed >= delays  # each checked attempt after a failure waited longer
    wire, kind, body = login(server.port, "127.0.0.41")  # even the right password, until the window ends
    assert kind == b"E" and fields(body)["C"] == "28000" and "try again" in fields(body)["M"]
    wire, kind, _ = login(server.port, "127.0.0.42")
    assert kind == b"Z"


def test_invalid_utf8_is_a_non_fatal_22021(server):
    wire, kind, _ = login(server.port, "127.0.0.51")
    assert kind == b"Z"
    answer = wire.query(b"SELECT '\xff\xfe'")
    assert [k for k, _ in answer] == [b"E", b"Z"] and fields(answer[0][1])["C"] == "22021"
    assert fields(answer[0][1])["S"] == "ERROR"
    answer = wire.query(b"SELECT 1")
    assert [k for k, _ in answer] == [b"T", b"D", b"C", b"Z"]
    parse = b"\x00SELECT \xc3\x28\x00\x00\x00"  # Parse with an invalid statement text, then Sync
    wire.sock.sendall(message(b"P", parse) + message(b"S", b""))
    answer = wire.until_ready()
    assert [k for k, _ in answer] == [b"E", b"Z"] and fields(answer[0][1])["C"] == "22021"
    assert [k for k, _ in wire.query(b"SELECT 1")] == [b"T", b"D", b"C", b"Z"]


@pytest.mark.parametrize("sql", [
    pytest.param("SELECT " + "(" * 3000 + "1" + ")" * 3000, id="3000-parentheses"),
    pytest.param("SELECT " + "NOT " * 3000 + "true", id="3000-NOTs-catalog"),
    pytest.param("SELECT revenue FROM sales WHERE " + "NOT " * 3000 + "order_status = 'x'", id="3000-NOTs-view"),
    pytest.param("SELECT " + "coalesce(" * 1500 + "1" + ")" * 1500, id="1500-calls"),
])
def test_deep_nesting_is_54001_and_the_session_continues(server, sql):
    import psycopg

    with psycopg.connect(dsn(server.port), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
        assert info.value.sqlstate == "54001", str(info.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)


# --- resources ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_idle_sockets_and_half_sent_messages_do_not_starve_a_cheap_query(server):
    """500 sockets that never send a startup packet (from ten addresses) and 20 that declare a 16 MiB
    message and send half of it: SELECT 1 through psycopg still answers in under a second, the server's
    RSS grows by less than RSS_BOUND_MB, and the pre-auth timeout closes them all."""
    pid = server.process.pid
    select_one_seconds(server.port)  # warm: the first session builds the catalog emulation
    before = rss_mb(pid)
    idle = [connect(server.port, f"127.0.1.{1 + i % 10}") for i in range(500)]
    half = []
    chunk = b"x" * (8 * 1024 * 1024)
    for i in range(20):
        wire = startup(connect(server.port, f"127.0.2.{1 + i}"))
        assert wire.read()[0] == b"R"
        wire.sock.settimeout(5)
        try:  # the server refuses the declared length at once and closes: the rest is never buffered
            wire.sock.sendall(b"p" + struct.pack("!i", 16 * 1024 * 1024) + chunk)
        except OSError:
            pass
        half.append(wire.sock)
    latencies = [select_one_seconds(server.port) for _ in range(3)]
    during = rss_mb(pid)
    print(f"RSS before {before:.1f} MB, with 500 idle + 20 half-sent: {during:.1f} MB; "
          f"SELECT 1 (connect + query) {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}")
    assert max(latencies) < 1, latencies
    assert during - before < RSS_BOUND_MB, (before, during)
    for sock in idle:
        assert closed_by_server(sock, within=WIRE["startup_timeout_s"] + 3)
    for sock in idle + half:
        sock.close()
    assert select_one_seconds(server.port) < 1


@pytest.mark.slow
def test_idle_wire_sockets_cannot_take_the_http_api_down(tmp_path):
    """`canon serve --pg-port` with only 512 file descriptors: 600 idle wire sockets would have used them
    up; the wire server keeps its sockets within its share (WireLimits.within), so HTTP still answers."""
    import resource
    import subprocess
    import sys

    import httpx

    from tests.support.servers import ROOT, Server, canon_env, free_port

    demo = build_warehouse(tmp_path / "demo.duckdb", scale=0.05)
    http_port, pg_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "canon.server.cli", "serve", "--project", str(ROOT), "--warehouse", str(demo),
             "--port", str(http_port), "--pg-port", str(pg_port), "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=canon_env(), cwd=str(tmp_path),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512)))
    server = Server(process, http_port, log, f"http://127.0.0.1:{http_port}")
    sockets = []
    try:
        server.wait_until(lambda: httpx.get(server.url + "/healthz", timeout=2).status_code == 200, 60, "canon serve")
        for i in range(600):
            try:
                sockets.append(connect(pg_port, f"127.0.3.{1 + i % 50}"))
            except OSError:
                break
        time.sleep(0.5)
        started = time.monotonic()
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1
        assert process.poll() is None, server.log_tail()
    finally:
        for sock in sockets:
            sock.close()
        server.stop(timeout=10)
