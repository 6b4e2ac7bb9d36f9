"""What a stale source costs a query: compile + execute of a cached query, fresh vs stale sources.

    python bench/freshness.py [--runs 300] [--scale 1.0]

Two copies of the project differ only in the pinned "today" (`calendar.now` in canon.yml): on the
data's last day every monitored source is fresh; half a year later `ad_spend` and `leads` are past
their error threshold, so every query over them carries stale-source warnings. Each runtime's
background monitor has made its report (as in a server), then both answer the same request
(ad_spend and cac by metric_time.month) alternately on one DuckDB warehouse. Prints the median and
p95 per side and the difference; the target is a stale case within 2 ms of the fresh one.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from canon.compiler.request import QueryRequest
from canon.server.demo import build_demo
from canon.server.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
REQUEST = QueryRequest(metrics=("ad_spend", "cac"), dimensions=("metric_time.month",))


def project_copy(folder: Path, today: str) -> Path:
    for part in ("semantic_models", "metrics"):
        shutil.copytree(ROOT / part, folder / part)
    text = (ROOT / "canon.yml").read_text(encoding="utf-8")
    (folder / "canon.yml").write_text(text.replace('now: "2025-12-31"', f'now: "{today}"'), encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        warehouse = tmp / "demo.duckdb"
        build_demo(warehouse, scale=args.scale)
        sides = {}
        for name, today in (("fresh", "2025-12-31"), ("stale", "2026-06-30")):
            runtime = Runtime.open(project_copy(tmp / name, today), str(warehouse))
            report = runtime.freshness.refresh()  # the background monitor's work, done before measuring
            states = sorted({s.state for s in report})
            warnings = runtime.query(REQUEST).warnings or []
            sides[name] = (runtime, [], states, len(warnings))
        for _ in range(args.runs):
            for runtime, times, _, _ in sides.values():
                started = time.perf_counter()
                runtime.query(REQUEST)
                times.append((time.perf_counter() - started) * 1000)
        print(f"{args.runs} runs per side, {REQUEST.metrics} by {REQUEST.dimensions}, scale {args.scale}")
        print(f"{'side':<6} {'source states':<16} {'warnings':>8} {'p50 ms':>8} {'p95 ms':>8}")
        medians = {}
        for name, (runtime, times, states, warned) in sides.items():
            times.sort()
            medians[name] = statistics.median(times)
            print(f"{name:<6} {','.join(states):<16} {warned:>8} {medians[name]:>8.3f} "
                  f"{times[int(0.95 * (len(times) - 1))]:>8.3f}")
            runtime.close()
        print(f"stale - fresh at p50: {medians['stale'] - medians['fresh']:+.3f} ms (target: within 2 ms)")


if __name__ == "__main__":
    main()
