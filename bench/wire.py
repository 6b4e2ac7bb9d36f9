"""`SELECT * FROM sales` over the PostgreSQL wire protocol: the first query BI tools send.

    python bench/wire.py [--runs 5] [--scale 1.0]

Builds a demo warehouse, starts `canon pg` on a loopback port, and times with psycopg (text results,
all rows fetched) `SELECT * FROM sales` and `SELECT * FROM marketing`, each beside the same compiled SQL
run straight on DuckDB in this process (fetchall). Prints the median wall time per side, the ratio,
the rows and the server's peak RSS (VmHWM). Targets (issue 10): under 2 s and under 1 GB at scale 1.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psycopg

from canon.compiler.request import QueryRequest
from canon.server.demo import build_demo
from canon.server.pgwire.session import CatalogState, Session
from canon.server.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ("SELECT * FROM sales", "SELECT * FROM marketing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def compiled_sql(warehouse: Path, text: str) -> str:
    """The SQL the wire server runs for `text` (translated and compiled by the same code)."""
    runtime = Runtime.open(ROOT, str(warehouse))
    session = Session(CatalogState(runtime), user="bench", database="canon", pid=0)
    query = session._translate(session.prepare(text), [])
    request: QueryRequest = session._request(query)
    return runtime.prepare(request).compiled.sql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "demo.duckdb"
        build_demo(warehouse, scale=args.scale)
        port = free_port()
        env = {**os.environ, "CANON_PG_USER": "bench", "CANON_PG_PASSWORD": "bench"}
        server = subprocess.Popen([sys.executable, "-m", "canon.server.cli", "pg", "--project", str(ROOT),
                                   "--warehouse", str(warehouse), "--port", str(port)],
                                  env=env, stderr=subprocess.DEVNULL)
        try:
            url = f"postgresql://bench:bench@127.0.0.1:{port}/canon"
            for _ in range(300):
                try:
                    psycopg.connect(url, connect_timeout=1).close()
                    break
                except psycopg.OperationalError:
                    time.sleep(0.1)
            direct = duckdb.connect(str(warehouse), read_only=True)
            print(f"scale {args.scale}, {args.runs} runs each, median wall time")
            print(f"{'query':<26} {'rows':>7} {'wire s':>7} {'DuckDB s':>9} {'ratio':>6}")
            with psycopg.connect(url, autocommit=True) as connection:
                for text in QUERIES:
                    sql = compiled_sql(warehouse, text)
                    wire, hand = [], []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        rows = connection.execute(text).fetchall()
                        wire.append(time.perf_counter() - started)
                        started = time.perf_counter()
                        direct.execute(sql).fetchall()
                        hand.append(time.perf_counter() - started)
                    w, h = statistics.median(wire), statistics.median(hand)
                    print(f"{text:<26} {len(rows):>7,} {w:>7.2f} {h:>9.2f} {w / h:>6.2f}")
            print(f"server peak RSS (VmHWM): {peak_rss_mb(server.pid):.0f} MB")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
