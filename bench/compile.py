"""Median in-process compile time (request -> SQL text) after warm-up, one line per case.

    python bench/compile.py [--runs N]

Prints `<case> <median_ms>`. Nothing is cached between runs: each run resolves, plans, renders
and generates SQL from scratch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.request import QueryRequest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "simple_metric_by_month": QueryRequest(metrics=("revenue",), dimensions=("metric_time.month",)),
    "aov_by_country_filtered": QueryRequest(metrics=("aov",), dimensions=("customer.country_code",),
                                            where=("customer.segment = 'enterprise'",)),
    "cross_sell_by_product_pair": QueryRequest(metrics=("cross_sell_score",),
                                               dimensions=("antecedent.product_name", "consequent.product_name")),
    "cac_by_channel_and_month": QueryRequest(metrics=("cac",), dimensions=("campaign.channel", "metric_time.month")),
}


def median_ms(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--dialect", default="duckdb")
    args = parser.parse_args()
    catalog = load_catalog(ROOT)
    for name, request in CASES.items():
        ms = median_ms(lambda: compile_request(catalog, request, args.dialect), args.runs, args.warmup)
        print(f"{name} {ms:.3f}")


if __name__ == "__main__":
    main()
