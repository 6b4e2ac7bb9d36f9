"""bench/serve.py's measuring parts: sides take turns in blocks, and its HTTP client keeps one connection
(and reconnects once when the server closed an idle one)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.project import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sides_take_turns_in_blocks():
    bench = _bench()
    calls: list[str] = []
    sides = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    results = bench.measure(sides, clients=1, requests=60, seconds=30, block=25)
    assert {name: r["requests"] for name, r in results.items()} == {"a": 60, "b": 60}
    runs = [(name, len(list(group))) for name, group in itertools.groupby(calls[40:])]  # after 20 warm-ups each
    assert runs == [("a", 25), ("b", 25), ("a", 25), ("b", 25), ("a", 10), ("b", 10)]
    assert all(r["p50"] >= 0 and r["rps"] > 0 for r in results.values())


@pytest.fixture
def little_server():
    seen = {"connections": 0, "requests": 0, "bodies": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self):
            seen["connections"] += 1
            super().setup()

        def do_POST(self):
            seen["requests"] += 1
            seen["bodies"].append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            status = 404 if self.path == "/missing" else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            if seen["requests"] == 2:
                self.close_connection = True  # an idle connection the server closes, without telling

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_stdlib_client_keeps_its_connection_and_reconnects_once(little_server):
    url, seen = little_server
    call = _bench().http_client(url, "stdlib")
    for _ in range(2):
        call("POST", "/v1/query", {"metrics": ["revenue"]})
    assert seen["connections"] == 1  # kept alive
    call("POST", "/v1/query", {"metrics": ["revenue"]})  # the server had closed it: one reconnect
    assert seen["connections"] == 2 and seen["requests"] == 3
    assert seen["bodies"][-1] == {"metrics": ["revenue"]}
    with pytest.raises(RuntimeError, match="HTTP 404"):
        call("POST", "/missing", {})
