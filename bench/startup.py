"""`canon serve` at scale: how soon it answers, and its peak memory beside a bare DuckDB process.

    python bench/startup.py [--scale 200] [--warehouse FILE] [--timeout 300]

Builds a demo warehouse at --scale in a temporary folder (or uses --warehouse, opened read-only),
starts `canon serve` on it (result cache off) and measures, from the moment the process is started,
when `/healthz` answers and when a first query answers (`lead_count` by campaign.channel). Then it
asks the six dashboard tiles of bench/dashboard.py once on the raw tables and reads the server's peak
RSS (VmHWM), then waits for the recommendation snapshot (built once the server is quiet) and reads
the peak of the whole run; a separate bare Python process runs the same six SQL statements (compiled by Canon) on
the same file with DuckDB alone and reports its own peak RSS. Prints both and the ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard import TILES, copy_project  # noqa: E402 — the same six tiles and project settings

ROOT = Path(__file__).resolve().parents[1]
FIRST = {"metrics": ["lead_count"], "dimensions": ["campaign.channel"]}
BARE = """
import duckdb, json, resource, sys, time
connection = duckdb.connect(sys.argv[1], read_only=True)
connection.execute("SET enable_progress_bar = false")  # stdout carries the figures only
times = []
for sql in json.load(sys.stdin):
    started = time.perf_counter()
    connection.execute(sql).fetchall()
    times.append(round((time.perf_counter() - started) * 1000, 1))
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ms": times}))
"""


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compiled_sql(project: Path) -> list[str]:
    from canon.compiler.compile import compile_request, load_catalog
    from canon.compiler.request import QueryRequest

    catalog = load_catalog(project)
    return [compile_request(catalog, QueryRequest(metrics=tuple(b["metrics"]), dimensions=tuple(b["dimensions"]),
                                                  order=tuple(b.get("order", ())), limit=b.get("limit"))).sql
            for b in TILES.values()]


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=200.0)
    parser.add_argument("--warehouse", default=None, help="an existing DuckDB demo warehouse (opened read-only)")
    parser.add_argument("--timeout", type=float, default=300.0, help="the server's query time cap (s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="canon-startup-") as tmp:
        folder = Path(tmp)
        project = copy_project(folder / "project", args.timeout)
        warehouse = Path(args.warehouse) if args.warehouse else folder / "demo.duckdb"
        if not args.warehouse:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "canon.server.cli", "demo", "--path", str(warehouse),
                            "--scale", str(args.scale)], check=True, cwd=project, capture_output=True)
            print(f"demo warehouse at scale {args.scale:g} built in {time.perf_counter() - started:.1f} s")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "canon.server.cli", "serve", "--project", str(project),
                                   "--warehouse", str(warehouse), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=project)
        healthy = answered = None
        try:
            with httpx.Client(base_url=url, timeout=args.timeout + 30) as client:
                while answered is None:
                    if server.poll() is not None:
                        raise SystemExit(f"canon serve exited with {server.returncode}")
                    try:
                        if healthy is None and client.get("/healthz").status_code == 200:
                            healthy = time.perf_counter() - started
                        if healthy is not None and client.post("/v1/query", json=FIRST).status_code == 200:
                            answered = time.perf_counter() - started
                    except httpx.HTTPError:
                        time.sleep(0.05)
                print(f"canon serve: /healthz after {healthy:.2f} s, first query answered after {answered:.2f} s")
                tiles = {}
                for name, body in TILES.items():
                    t = time.perf_counter()
                    response = client.post("/v1/query", json={**body, "use_rollups": False})
                    tiles[name] = round((time.perf_counter() - t) * 1000, 1) if response.status_code == 200 \
                        else f"{response.status_code}"
                served_kb = peak_kb(server.pid)  # during the dashboard
                # the recommendation snapshot builds once the server is quiet: wait for it, then the peak
                # of the whole run (the snapshot's build included)
                t = time.perf_counter()
                while client.get("/v1/recommendations/snapshot").json().get("snapshot") is None:
                    if time.perf_counter() - t > args.timeout:
                        raise SystemExit("the recommendation snapshot was not built in time")
                    time.sleep(0.5)
                snapshot_s = time.perf_counter() - t
                whole_kb = peak_kb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        bare = subprocess.run([sys.executable, "-c", BARE, str(warehouse)], input=json.dumps(compiled_sql(project)),
                              capture_output=True, text=True, check=True)
        found = json.loads(bare.stdout.strip().splitlines()[-1])
        print("tile                              served ms    bare DuckDB ms")
        for (name, ms), bare_ms in zip(tiles.items(), found["ms"]):
            print(f"{name:33} {ms!s:>10} {bare_ms:>16}")
        print(f"peak RSS during the dashboard: canon serve {served_kb / 1024:.0f} MB, bare DuckDB "
              f"{found['peak_kb'] / 1024:.0f} MB ({served_kb / max(found['peak_kb'], 1):.2f}×)")
        print(f"recommendation snapshot built {snapshot_s:.1f} s after the dashboard; peak RSS of the whole run "
              f"{whole_kb / 1024:.0f} MB ({whole_kb / max(found['peak_kb'], 1):.2f}× bare DuckDB)")
        shutil.rmtree(folder / "project", ignore_errors=True)


if __name__ == "__main__":
    main()
