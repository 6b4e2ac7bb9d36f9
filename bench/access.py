"""What authentication, access policies and the audit log cost per query, in process.

    python bench/access.py [--repeat 2000]

On the demo catalog (no warehouse needed): the time to verify an HS256 token, to prepare a dashboard
request (revenue by product.category and metric_time.month; compile cache warm) for an open catalog and
for a country manager whose row filter is added to every query, and to append one audit line in each
sync mode. Prints median microseconds of each, side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POLICIES = {"access": {"default": "deny", "policies": [
    {"name": "country_managers", "when": "user.role = 'country_manager'",
     "row_filter": "customer.country_code = {{ user.country }}", "deny": ["cac", "ad_spend"]}]}}


def median_us(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    import jwt

    from canon import QueryRequest, load_catalog
    from canon.server.runtime import Identity, Runtime
    from canon.server.runtime.access import AccessControl
    from canon.server.runtime.audit import AuditLog, AuditSettings
    from canon.server.runtime.authn import Authenticator
    from canon.server.runtime.policies import AccessConfig

    catalog = load_catalog(ROOT)
    secret = "bench-secret-bench-secret-bench-secret"
    authn = Authenticator(secret=secret)
    token = jwt.encode({"sub": "greta", "role": "country_manager", "country": "DE", "exp": int(time.time()) + 3600},
                       secret, algorithm="HS256")
    request = QueryRequest(metrics=("revenue",), dimensions=("product.category", "metric_time.month"))

    class NoWarehouse:
        url = "bench.duckdb"

    runtime = Runtime.over(catalog, NoWarehouse())
    open_user = Identity("ann", "http")
    manager = authn.verify_token(token, via="http")
    figures = {"verify an HS256 token": median_us(lambda: authn.verify_token(token, via="http"), args.repeat)}
    runtime.prepare(request, identity=open_user)
    figures["prepare, no policies"] = median_us(lambda: runtime.prepare(request, identity=open_user), args.repeat)
    runtime.access = AccessControl(AccessConfig.from_config(POLICIES))
    runtime.prepare(request, identity=manager)
    figures["prepare, row filter + deny"] = median_us(lambda: runtime.prepare(request, identity=manager), args.repeat)
    with tempfile.TemporaryDirectory() as folder:
        for sync in ("batch", "always"):
            log = AuditLog(AuditSettings(Path(folder) / f"{sync}.log", True, sync))
            repeat = args.repeat if sync == "batch" else min(args.repeat, 200)
            figures[f"audit line, sync: {sync}"] = median_us(
                lambda: log.record(identity=manager, request=request, policies=("country_managers",), sql="SELECT 1",
                                   rows=1, elapsed_ms=1.0), repeat)
            log.close()
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:9.1f} µs")


if __name__ == "__main__":
    main()
