"""Service overhead of the HTTP API on a typical dashboard query.

    python bench/serve.py [--clients 8] [--requests 400] [--scale 1.0] [--seconds 30]

Starts `canon serve` on a loopback port against a demo warehouse it builds (or --warehouse), then
measures requests/s and p50/p95 latency of POST /v1/query (revenue by product.category and
metric_time.month) with N concurrent clients, and the same SQL run straight on DuckDB in this process
with N threads. Prints both and the overhead per request. Bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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


def measure(call, clients: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(requests))

    def worker(_):
        local = []
        while time.monotonic() < deadline:
            with lock:
                if next(counter, None) is None:
                    break
            started = time.perf_counter()
            call()
            local.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(local)

    for _ in range(min(20, requests)):  # warm up
        call()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "rps": len(latencies) / wall, "p50": statistics.median(latencies),
            "p95": latencies[int(0.95 * (len(latencies) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="per side (HTTP and direct)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget per side")
    parser.add_argument("--scale", type=float, default=1.0, help="demo warehouse scale (when it is built)")
    parser.add_argument("--warehouse", default=None, help="an existing DuckDB demo warehouse")
    parser.add_argument("--cache", action="store_true", help="also measure answers from the result cache")
    args = parser.parse_args()

    import duckdb
    import httpx

    with tempfile.TemporaryDirectory(prefix="canon-bench-") as tmp:
        tmp = Path(tmp)
        warehouse = Path(args.warehouse) if args.warehouse else None
        if warehouse is None:
            from canon.server.demo import build_demo

            warehouse = tmp / "demo.duckdb"
            build_demo(warehouse, scale=args.scale)
        def over_http(url):
            local = threading.local()

            def http_call():
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(base_url=url, timeout=60)
                response = client.post("/v1/query", json=QUERY)
                response.raise_for_status()

            return measure(http_call, args.clients, args.requests, args.seconds)

        project = copy_project(tmp / "project", cache=False)
        with serve(project, warehouse, "--reload-interval", "0", "--log-level", "warning") as url:
            sql = httpx.post(url + "/v1/query", json=QUERY, timeout=60).json()["sql"]
            http = over_http(url)
        cached = None
        if args.cache:
            with serve(copy_project(tmp / "cached", cache=True), warehouse, "--reload-interval", "0",
                       "--log-level", "warning") as url:
                assert httpx.post(url + "/v1/query", json=QUERY, timeout=60).status_code == 200
                cached = over_http(url)

        connection = duckdb.connect(str(warehouse), read_only=True)

        def direct_call():
            cursor = connection.cursor()
            try:
                cursor.execute(sql).fetchall()
            finally:
                cursor.close()

        direct = measure(direct_call, args.clients, args.requests, args.seconds)
        connection.close()

    print(f"dashboard query: revenue by product.category, metric_time.month — {args.clients} concurrent clients")
    print(f"{'':14}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}")
    rows = (("HTTP /v1/query", http), ("DuckDB direct", direct)) + ((("HTTP cached", cached),) if cached else ())
    for name, r in rows:
        print(f"{name:14}{r['requests']:>10}{r['rps']:>10.1f}{r['p50']:>10.2f}{r['p95']:>10.2f}")
    print(f"overhead: p50 +{http['p50'] - direct['p50']:.2f} ms, p95 +{http['p95'] - direct['p95']:.2f} ms; "
          f"throughput ratio HTTP/direct {http['rps'] / direct['rps']:.2f}, latency ratio p50 {http['p50'] / direct['p50']:.2f}x")


if __name__ == "__main__":
    main()
