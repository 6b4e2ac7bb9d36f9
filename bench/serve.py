"""Service overhead of the HTTP API on a typical dashboard query.

    python bench/serve.py [--clients 8] [--requests 400] [--scale 1.0] [--seconds 30] [--cache] [--client stdlib|httpx]

Starts `canon serve` on a loopback port against a demo warehouse it builds (or --warehouse), then
measures requests/s and p50/p95 latency of POST /v1/query (revenue by product.category and
metric_time.month) with N concurrent clients; the same request through the runtime in this process
(no HTTP: what HTTP adds is the difference); the same SQL run straight on DuckDB with N threads; and
GET /healthz (the floor of any HTTP answer). The sides take turns in blocks of 25 requests, so that a
change of load on a shared machine falls on all of them alike. Bounded in requests and seconds.

Each client keeps one connection open (keep-alive, TCP_NODELAY). The default client is the standard
library's http.client, whose own cost per request is small; `--client httpx` measures with httpx, which
spends about a millisecond of Python per request on its side (and on a 2-core machine that CPU is
taken from the server too).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK = 25  # requests per side in each turn
QUERY = {"metrics": ["revenue"], "dimensions": ["product.category", "metric_time.month"]}


def copy_project(target: Path, *, cache: bool) -> Path:
    for name in ("semantic_models", "metrics"):
        shutil.copytree(ROOT / name, target / name)
    shutil.copy(ROOT / "canon.yml", target / "canon.yml")
    with (target / "canon.yml").open("a") as config:  # the overhead is measured without the result cache
        config.write(f"\ncache: {{enabled: {'true' if cache else 'false'}}}\n")
    return target


@contextmanager
def serve(project: Path, warehouse: Path, *extra: str, timeout: float = 60):
    """`canon serve` in a subprocess on a free loopback port; yields its base URL and stops it afterwards."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "canon.server.cli", "serve", "--project", str(project),
                             "--warehouse", str(warehouse), "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(project))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"canon serve exited with {proc.returncode}")
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


def http_client(url: str, kind: str):
    """`call(method, path, body=None)` over one kept-alive connection; raises on a non-2xx answer."""
    if kind == "httpx":
        import httpx

        client = httpx.Client(base_url=url, timeout=60)

        def call(method, path, body=None):
            response = client.request(method, path, json=body)
            response.raise_for_status()
        return call
    host, port = url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(method, path, body=None, retry=True):
        if connection.sock is None:
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = json.dumps(body).encode() if body is not None else None
        try:
            connection.request(method, path, body=payload,
                               headers={"Content-Type": "application/json"} if payload else {})
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):  # the server closed an idle connection
            connection.close()
            if not retry:
                raise
            return call(method, path, body, retry=False)
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")
    return call


def run_block(pool: ThreadPoolExecutor, call, clients: int, requests: int) -> tuple[list[float], float]:
    """`requests` calls by `clients` threads of `pool`: their latencies (ms) and the wall time (s)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker(_):
        local = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            started = time.perf_counter()
            call()
            local.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    list(pool.map(worker, range(clients)))
    return latencies, time.perf_counter() - started


def measure(sides: dict, clients: int, requests: int, seconds: float, block: int = BLOCK) -> dict:
    """Each side (name -> call) answers `requests` calls, in blocks of `block` taken in turn, so that a
    change of load on a shared machine falls on every side alike; stops early after `seconds` per side."""
    for call in sides.values():
        for _ in range(min(20, requests)):  # warm up
            call()
    latencies = {name: [] for name in sides}
    walls = dict.fromkeys(sides, 0.0)
    deadline = time.monotonic() + seconds * len(sides)
    done = 0
    with ThreadPoolExecutor(clients) as pool:  # the same threads throughout: each keeps its connections
        while done < requests and time.monotonic() < deadline:
            n = min(block, requests - done)
            for name, call in sides.items():
                taken, wall = run_block(pool, call, clients, n)
                latencies[name] += taken
                walls[name] += wall
            done += n
    results = {}
    for name, taken in latencies.items():
        taken.sort()
        results[name] = {"requests": len(taken), "rps": len(taken) / walls[name], "p50": statistics.median(taken),
                         "p95": taken[int(0.95 * (len(taken) - 1))]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="per side")
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget per side")
    parser.add_argument("--scale", type=float, default=1.0, help="demo warehouse scale (when it is built)")
    parser.add_argument("--warehouse", default=None, help="an existing DuckDB demo warehouse")
    parser.add_argument("--cache", action="store_true", help="also measure answers from the result cache")
    parser.add_argument("--client", choices=("stdlib", "httpx"), default="stdlib", help="the HTTP client library")
    args = parser.parse_args()

    import duckdb
    import httpx

    from canon.compiler.request import QueryRequest
    from canon.server.runtime import Runtime
    from canon.server.runtime.access import Identity

    def over_http(url, method="POST", path="/v1/query", body=QUERY):
        local = threading.local()  # one kept-alive connection per client thread

        def http_call():
            call = getattr(local, "call", None)
            if call is None:
                call = local.call = http_client(url, args.client)
            call(method, path, body)
        return http_call

    def in_process(runtime):
        """The same request through the runtime, no HTTP (audited as an HTTP client's would be)."""
        request = QueryRequest(metrics=tuple(QUERY["metrics"]), dimensions=tuple(QUERY["dimensions"]))
        identity = Identity(via="http")
        return lambda: runtime.query(runtime.prepare(request, identity=identity))

    with tempfile.TemporaryDirectory(prefix="canon-bench-") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        warehouse = Path(args.warehouse) if args.warehouse else None
        if warehouse is None:
            from canon.server.demo import build_demo

            warehouse = tmp / "demo.duckdb"
            build_demo(warehouse, scale=args.scale)
        flags = ("--reload-interval", "0", "--log-level", "warning")
        project = copy_project(tmp / "project", cache=False)
        url = stack.enter_context(serve(project, warehouse, *flags))
        sql = httpx.post(url + "/v1/query", json=QUERY, timeout=60).json()["sql"]
        connection = duckdb.connect(str(warehouse), read_only=True)  # read-only: the server reads it too
        stack.callback(connection.close)

        def direct_call():
            cursor = connection.cursor()
            try:
                cursor.execute(sql).fetchall()
            finally:
                cursor.close()

        sides = {"HTTP /v1/query": over_http(url),
                 "in-process": in_process(stack.enter_context(Runtime.open(project, str(warehouse)))),
                 "DuckDB direct": direct_call}
        if args.cache:
            cached_project = copy_project(tmp / "cached", cache=True)
            cached_url = stack.enter_context(serve(cached_project, warehouse, *flags))
            sides["HTTP cached"] = over_http(cached_url)
            sides["in-proc cached"] = in_process(stack.enter_context(Runtime.open(cached_project, str(warehouse))))
        sides["HTTP /healthz"] = over_http(url, "GET", "/healthz", None)
        r = measure(sides, args.clients, args.requests, args.seconds)

    print(f"dashboard query: revenue by product.category, metric_time.month — {args.clients} concurrent clients, "
          f"{args.client} HTTP client, sides taken in turn in blocks of {BLOCK} requests")
    print(f"{'':16}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}")
    for name, row in r.items():
        print(f"{name:16}{row['requests']:>10}{row['rps']:>10.1f}{row['p50']:>10.2f}{row['p95']:>10.2f}")
    http, direct, local = r["HTTP /v1/query"], r["DuckDB direct"], r["in-process"]
    print(f"overhead over DuckDB: p50 +{http['p50'] - direct['p50']:.2f} ms, "
          f"p95 +{http['p95'] - direct['p95']:.2f} ms; throughput ratio HTTP/direct {http['rps'] / direct['rps']:.2f}, "
          f"latency ratio p50 {http['p50'] / direct['p50']:.2f}x")
    print(f"HTTP over in-process: p50 +{http['p50'] - local['p50']:.2f} ms"
          + (f"; cached +{r['HTTP cached']['p50'] - r['in-proc cached']['p50']:.2f} ms" if args.cache else ""))

if __name__ == "__main__":
    main()
