"""Latency of the real-time recommendation endpoints: p50 / p95 over real HTTP and in-process.

    python bench/recommend.py [--scale 1] [--requests 2000] [--project DIR]

Without --project it builds a demo warehouse (default scale 1, ~20,000 orders) in a temporary copy of
this project. It starts `canon serve` on a free loopback port (a subprocess, stopped at the end),
waits for the affinity snapshot, then sends a fixed mix of requests one at a time over one
keep-alive connection: recommendations for random customers, cross-sell for random products, cart
additions for random 1-4 product carts, upsell. Then it times the same answers in-process (the
engine over the snapshot, no HTTP). Every request has a timeout and the whole run a deadline.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

START_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 5
RUN_DEADLINE_S = 300


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return statistics.median(ordered), q[94], q[98]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_project(folder: Path, scale: float) -> Path:
    from canon.server.demo import build_demo

    for name in ("semantic_models", "metrics"):
        shutil.copytree(ROOT / name, folder / name)
    shutil.copy(ROOT / "canon.yml", folder / "canon.yml")
    build_demo(folder / ".canon" / "demo.duckdb", scale=scale, seed=42)
    return folder


def workload(rng: random.Random, customers: list[int], products: list[int], n: int) -> list[tuple]:
    calls = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            calls.append(("recommendations", "GET", f"/v1/recommendations/{rng.choice(customers)}", {"limit": 10}, None))
        elif kind == 1:
            calls.append(("cross-sell", "GET", "/v1/cross-sell", {"product_id": rng.choice(products), "limit": 10}, None))
        elif kind == 2:
            cart = rng.sample(products, rng.randint(1, 4))
            calls.append(("cart", "POST", "/v1/cross-sell/cart", None, {"product_ids": cart, "limit": 10}))
        else:
            calls.append(("upsell", "GET", f"/v1/upsell/{rng.choice(customers)}", {"limit": 5}, None))
    return calls


def report(title: str, samples: dict[str, list[float]]) -> None:
    every = [x for xs in samples.values() for x in xs]
    p50, p95, p99 = percentiles(every)
    print(f"{title}: {len(every)} requests  p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms")
    for name, xs in samples.items():
        p50, p95, _ = percentiles(xs)
        print(f"  {name:<16} p50 {p50:.2f} ms  p95 {p95:.2f} ms  (n={len(xs)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=None, help="A project with its warehouse (default: a temporary demo).")
    parser.add_argument("--scale", type=float, default=1.0, help="Demo scale when no --project (1 = ~20,000 orders).")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import httpx

    scratch = None
    if args.project:
        project = Path(args.project).resolve()
    else:
        scratch = Path(tempfile.mkdtemp(prefix="canon-bench-recommend-"))
        started = time.perf_counter()
        project = make_project(scratch, args.scale)
        print(f"demo warehouse (scale {args.scale:g}) built in {time.perf_counter() - started:.1f} s")
    port = free_port()
    env = {**os.environ, "CANON_RECOMMEND_REFRESH_MINUTES": "0"}
    server = subprocess.Popen([sys.executable, "-m", "canon.server.cli", "serve", "--project", str(project),
                               "--port", str(port), "--reload-interval", "0", "--log-level", "warning"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + RUN_DEADLINE_S
    try:
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while True:
            if server.poll() is not None:
                print("error: the server exited during start-up", file=sys.stderr)
                return 1
            if time.monotonic() - started > START_TIMEOUT_S:
                print("error: the server did not start in time", file=sys.stderr)
                return 1
            try:
                status = httpx.get(f"{base}/v1/recommendations/snapshot", timeout=2).json()
                if status.get("snapshot"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        snap = status["snapshot"]
        print(f"server ready in {time.monotonic() - started:.1f} s; snapshot built in {snap['build_ms']:.0f} ms: "
              f"{snap['rules']:,} rules, {snap['products']} products, {snap['customers']:,} customers")

        from canon.server.recommend import engine
        from canon.server.recommend.cli_support import open_store

        with open_store(project, None) as store:
            snapshot = store.current()
        import gc

        gc.collect()
        gc.freeze()  # as the server does after each refresh
        customers = sorted(snapshot.customers)
        products = sorted(snapshot.products)
        calls = workload(random.Random(args.seed), customers, products, args.requests)

        http: dict[str, list[float]] = {}
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as client:
            for name, method, path, params, body in calls[:100]:  # warm-up
                client.request(method, path, params=params, json=body)
            for name, method, path, params, body in calls:
                if time.monotonic() > deadline:
                    print("note: deadline reached; stopping early")
                    break
                t0 = time.perf_counter()
                response = client.request(method, path, params=params, json=body)
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 200:
                    print(f"error: {method} {path} -> {response.status_code}: {response.text[:200]}", file=sys.stderr)
                    return 1
                http.setdefault(name, []).append(elapsed)
            base_line = []
            for _ in range(min(500, len(calls))):  # the same path through uvicorn and FastAPI, no work
                t0 = time.perf_counter()
                client.get("/healthz")
                base_line.append((time.perf_counter() - t0) * 1000)
        report("HTTP (loopback, one keep-alive connection)", http)
        p50, p95, _ = percentiles(base_line)
        print(f"  {'(/healthz floor)':<16} p50 {p50:.2f} ms  p95 {p95:.2f} ms  (n={len(base_line)}): "
              "HTTP stack and machine load, not recommendation work")

        window = snapshot.window
        run = {
            "recommendations": lambda p, b, path: engine.recommend(snapshot, window, int(path.rsplit("/", 1)[1]), limit=10),
            "cross-sell": lambda p, b, path: engine.cross_sell(snapshot, window, p["product_id"], limit=10),
            "cart": lambda p, b, path: engine.cart_additions(snapshot, window, b["product_ids"], limit=10),
            "upsell": lambda p, b, path: engine.upsell(snapshot, window, int(path.rsplit("/", 1)[1]), limit=5),
        }
        local: dict[str, list[float]] = {}
        for name, _, path, params, body in calls:
            t0 = time.perf_counter()
            run[name](params, body, path)
            local.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
        gc.unfreeze()
        report("in-process (engine over the snapshot)", local)
        return 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
