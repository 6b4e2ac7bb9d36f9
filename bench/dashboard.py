"""The six-tile dashboard of issue 14 through HTTP: raw cold, raw warm, and from rollups.

    python bench/dashboard.py [--scale 20] [--warehouse FILE] [--runs 5] [--timeout 30]

Builds a demo warehouse at --scale in a temporary folder (or copies --warehouse there), starts `canon
serve` on it (result cache off, so every answer is computed), and asks the six tiles with
`use_rollups: false`: the first round is "raw cold" (a fresh server), the median of --runs more is
"raw warm" (asked once the server has built its recommendation snapshot, which it does when quiet). Then it stops the server, runs `canon rollups build` (timed), starts a server again and asks
the tiles with rollups (one warm-up round, then the median of --runs). Every rollup answer is checked
equal to the raw answer (same rows, numbers to 1e-9). Prints each tile's figures and the ratios.

The cross-sell tile (top-20 product pairs, an affinity metric) is answered by the `product_pairs` rollup,
which stores the pair-level answer itself (pairs do not re-aggregate: only that exact request uses it).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import serve  # noqa: E402 — bench/serve.py: `canon serve` on a free port

ROOT = Path(__file__).resolve().parents[1]

TILES = {
    "revenue by month": {"metrics": ["revenue"], "dimensions": ["metric_time.month"]},
    "revenue by category": {"metrics": ["revenue"], "dimensions": ["product.category"]},
    "aov by country": {"metrics": ["aov"], "dimensions": ["customer.country_code"]},
    "cac by channel": {"metrics": ["cac"], "dimensions": ["campaign.channel"]},
    "top-20 product pairs": {"metrics": ["cross_sell_score"],
                             "dimensions": ["antecedent.product_name", "consequent.product_name"],
                             "order": ["-cross_sell_score"], "limit": 20},
    "lead-to-meeting rate by channel": {"metrics": ["lead_to_meeting_rate"], "dimensions": ["campaign.channel"]},
}


def copy_project(target: Path, timeout: float) -> Path:
    for name in ("semantic_models", "metrics"):
        shutil.copytree(ROOT / name, target / name)
    shutil.copy(ROOT / "canon.yml", target / "canon.yml")
    with (target / "canon.yml").open("a") as config:  # every answer computed, none from the result cache
        config.write(f"\ncache: {{enabled: false}}\nlimits: {{query_timeout_s: {timeout:g}}}\n")
    return target


def ask(client, body: dict) -> tuple[float, dict | None]:
    started = time.perf_counter()
    response = client.post("/v1/query", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        return elapsed, {"error": f"{response.status_code}: {response.json().get('message', '')[:120]}"}
    return elapsed, response.json()


def same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, float) or isinstance(v, float):
                if u is None or v is None or not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    if u != v:
                        return False
            elif u != v:
                return False
    return True


def rounds(url: str, use_rollups: bool, runs: int, timeout: float) -> tuple[dict, dict, dict]:
    """(first-round ms, median ms of `runs` more, last answer) per tile."""
    import httpx

    first, times, answers = {}, {name: [] for name in TILES}, {}
    with httpx.Client(base_url=url, timeout=timeout + 30) as client:
        for name, body in TILES.items():
            first[name], answers[name] = ask(client, {**body, "use_rollups": use_rollups})
        settle(client, timeout)
        for _ in range(runs):
            for name, body in TILES.items():
                elapsed, answers[name] = ask(client, {**body, "use_rollups": use_rollups})
                times[name].append(elapsed)
    return first, {name: statistics.median(t) for name, t in times.items()}, answers


def settle(client, timeout: float) -> None:
    """Wait for the recommendation snapshot, which a fresh server builds once it has been quiet for a
    moment: the warm rounds measure a server in its steady state, not one sharing its cores with that build."""
    started = time.perf_counter()
    while client.get("/v1/recommendations/snapshot").json().get("snapshot") is None:
        if time.perf_counter() - started > timeout:
            raise SystemExit("the recommendation snapshot was not built in time")
        time.sleep(0.5)


def http_floor(url: str, n: int = 50) -> float:
    """The median of GET /healthz: what any answer costs over HTTP on this machine right now."""
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.get("/healthz")
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=20.0, help="demo warehouse scale (when it is built)")
    parser.add_argument("--warehouse", default=None, help="an existing DuckDB demo warehouse (copied, not changed)")
    parser.add_argument("--runs", type=int, default=5, help="warm rounds per side (median reported)")
    parser.add_argument("--timeout", type=float, default=30.0, help="the server's query time cap (s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="canon-dashboard-") as tmp:
        tmp = Path(tmp)
        warehouse = tmp / "demo.duckdb"
        started = time.perf_counter()
        if args.warehouse:
            shutil.copy(args.warehouse, warehouse)
        else:
            from canon.server.demo import build_demo

            build_demo(warehouse, scale=args.scale)
        print(f"warehouse ready in {time.perf_counter() - started:.1f} s ({warehouse.stat().st_size / 1e6:.0f} MB)")
        project = copy_project(tmp / "project", args.timeout)
        extra = ("--reload-interval", "0", "--log-level", "warning")

        with serve(project, warehouse, *extra, timeout=900) as url:
            cold, warm, raw = rounds(url, False, args.runs, args.timeout)

        started = time.perf_counter()
        built = subprocess.run([sys.executable, "-m", "canon.server.cli", "rollups", "build", "--project", str(project),
                                "--warehouse", str(warehouse)], capture_output=True, text=True, cwd=str(project))
        build_s = time.perf_counter() - started
        if built.returncode != 0:
            raise SystemExit(f"canon rollups build failed: {built.stderr or built.stdout}")
        print(f"canon rollups build: {build_s:.1f} s (process included)")
        print("  " + built.stdout.strip().replace("\n", "\n  "))

        with serve(project, warehouse, *extra, timeout=900) as url:
            _, fast, rolled = rounds(url, True, args.runs, args.timeout)
            floor = http_floor(url)

    width = max(len(n) for n in TILES)
    print(f"\n{'tile':<{width}}  {'raw cold ms':>11}  {'raw warm ms':>11}  {'rollup ms':>9}  {'warm/rollup':>11}  "
          f"answered by (rows equal raw)")
    for name in TILES:
        answer, plain = rolled[name], raw[name]
        if "error" in answer or "error" in plain:
            source = answer.get("error") or plain.get("error")
        else:
            source = f"{answer.get('rollup') or 'raw tables'} ({'yes' if same(answer['rows'], plain['rows']) else 'NO'})"
        print(f"{name:<{width}}  {cold[name]:>11.1f}  {warm[name]:>11.1f}  {fast[name]:>9.1f}  "
              f"{warm[name] / fast[name]:>10.1f}x  {source}")
    rolled_tiles = [n for n in TILES if rolled[n].get("rollup")]
    total = {k: sum(v.values()) for k, v in (("cold", cold), ("warm", warm), ("fast", fast))}
    print(f"{'dashboard (sum)':<{width}}  {total['cold']:>11.1f}  {total['warm']:>11.1f}  {total['fast']:>9.1f}  "
          f"{total['warm'] / total['fast']:>10.1f}x")
    print(f"HTTP floor (GET /healthz, median of 50): {floor:.1f} ms; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    if rolled_tiles:
        warm_r, fast_r = sum(warm[n] for n in rolled_tiles), sum(fast[n] for n in rolled_tiles)
        print(f"{'rollup tiles (sum)':<{width}}  {'':>11}  {warm_r:>11.1f}  {fast_r:>9.1f}  {warm_r / fast_r:>10.1f}x  "
              f"{len(rolled_tiles)} of {len(TILES)} tiles")


if __name__ == "__main__":
    main()
