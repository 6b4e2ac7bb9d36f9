"""Semi-additive measures (last / first value over time) on a small crafted project.

The repo's project is copied into tmp_path and given two models over tables created in a throwaway
DuckDB: accounts (account_id, region) and daily balance snapshots (snapshot_id, account_id,
snapshot_date, balance), with gaps (accounts do not report every day). Canon is compared with hand SQL:
* closing_balance (window last, groupings [account]): per period, each account's balance at its own last
  snapshot in the period, summed over accounts;
* opening_balance (window first, per account);
* book_close (window last, no groupings): the balances of the period's last snapshot date, summed.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import duckdb
import pytest

from canon.compiler.compile import load_catalog
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows
from tests.support.project import copy_project
from canon.server.warehouses import open_warehouse

MODELS = """semantic_models:
  - name: account
    table: accounts
    entities:
      - {name: account, type: primary, expr: account_id}
    dimensions:
      - {name: region}
  - name: balance
    table: balances
    entities:
      - {name: balance, type: primary, expr: snapshot_id}
      - {name: account, type: foreign, expr: account_id}
    dimensions:
      - {name: snapshot_date, type: time, stored_as: date}
    measures:
      - name: closing
        agg: sum
        expr: balance
        non_additive: {time: snapshot_date, window: last, groupings: [account]}
      - name: opening
        agg: sum
        expr: balance
        non_additive: {time: snapshot_date, window: first, groupings: [account]}
      - name: book_close
        agg: sum
        expr: balance
        non_additive: {time: snapshot_date, window: last}
      - {name: snapshots, agg: count, expr: snapshot_id}
    default_time: snapshot_date
"""
METRICS = """metrics:
  - {name: closing_balance, type: simple, measure: balance.closing}
  - {name: opening_balance, type: simple, measure: balance.opening}
  - {name: book_close_balance, type: simple, measure: balance.book_close}
  - {name: snapshot_count, type: simple, measure: balance.snapshots}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("semi") / "project")
    (root / "semantic_models" / "balances.yml").write_text(MODELS)
    (root / "metrics" / "balances.yml").write_text(METRICS)
    db = root / "balances.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE accounts (account_id INTEGER PRIMARY KEY, region VARCHAR)")
    con.execute("CREATE TABLE balances (snapshot_id INTEGER, account_id INTEGER, snapshot_date DATE, balance DECIMAL(12,2))")
    rng = random.Random(7)
    con.executemany("INSERT INTO accounts VALUES (?, ?)", [(a, ["north", "south"][a % 2]) for a in range(1, 9)])
    rows, sid = [], 0
    for a in range(1, 9):
        balance = rng.randint(100, 1000)
        d = date(2024, 1, 1) + timedelta(days=rng.randint(0, 20))
        while d <= date(2024, 6, 30):
            sid += 1
            balance += rng.randint(-80, 120)
            rows.append((sid, a, d, balance))
            d += timedelta(days=rng.choice([1, 1, 2, 3, 5, 9]))  # gaps: accounts report irregularly
    con.executemany("INSERT INTO balances VALUES (?, ?, ?, ?)", rows)
    con.close()
    wh = open_warehouse(str(db))
    yield load_catalog(root), wh
    wh.close()


def period(grain):
    return "b.snapshot_date" if grain is None else f"CAST(DATE_TRUNC('{grain}', b.snapshot_date) AS DATE)"


def per_account_sql(grain, edge, where="", region=False):
    """Each account's balance at its own first/last snapshot of the period, summed per period (and region)."""
    p = period(grain)
    keys = ([f"{p} AS p"] if grain else []) + (["a.region AS r"] if region else [])
    outer = (["x.p"] if grain else []) + (["x.r"] if region else [])
    part = ["b.account_id"] + ([p] if grain else [])
    return (f"SELECT {', '.join(outer + ['SUM(x.balance)'])} FROM (\n"
            f"  SELECT {', '.join(keys + ['b.balance', 'b.snapshot_date'])},\n"
            f"         {edge}(b.snapshot_date) OVER (PARTITION BY {', '.join(part)}) AS edge\n"
            f"  FROM balances AS b JOIN accounts AS a ON a.account_id = b.account_id {where}) AS x\n"
            f"WHERE x.snapshot_date = x.edge" + (f" GROUP BY {', '.join(outer)}" if outer else ""))


def book_sql(grain, where=""):
    p = period(grain)
    return (f"SELECT x.p, SUM(x.balance) FROM (SELECT {p} AS p, b.balance, b.snapshot_date,\n"
            f"  MAX(b.snapshot_date) OVER (PARTITION BY {p}) AS edge FROM balances AS b\n"
            f"  JOIN accounts AS a ON a.account_id = b.account_id {where}) AS x\n"
            f"WHERE x.snapshot_date = x.edge GROUP BY x.p")


@pytest.mark.parametrize("grain", [None, "week", "month", "quarter"])
@pytest.mark.parametrize("metric, edge", [("closing_balance", "MAX"), ("opening_balance", "MIN")])
def test_per_account(project, metric, edge, grain):
    catalog, wh = project
    want = wh.execute(per_account_sql(grain, edge))[1]
    dims = (f"metric_time.{grain}",) if grain else ()
    got = canon_rows(catalog, wh, QueryRequest(metrics=(metric,), dimensions=dims))
    assert_same(got, want, keys=len(dims), label=f"{metric} by {dims}")


@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_per_account_by_region_with_filter_and_range(project, grain):
    catalog, wh = project
    where = "WHERE a.region = 'north' AND b.snapshot_date >= DATE '2024-02-01' AND b.snapshot_date <= DATE '2024-05-31'"
    want = wh.execute(per_account_sql(grain, "MAX", where, region=True))[1]
    got = canon_rows(catalog, wh, QueryRequest(metrics=("closing_balance",),
                                               dimensions=(f"metric_time.{grain}", "account.region"),
                                               where=("account.region = 'north'",), start="2024-02-01", end="2024-05-31"))
    assert_same(got, want, keys=2)


@pytest.mark.parametrize("grain", ["week", "month"])
def test_last_snapshot_without_groupings(project, grain):
    catalog, wh = project
    want = wh.execute(book_sql(grain))[1]
    got = canon_rows(catalog, wh, QueryRequest(metrics=("book_close_balance",), dimensions=(f"metric_time.{grain}",)))
    assert_same(got, want, keys=1)


def test_not_summed_over_time(project):
    """The month's closing balance is not the sum of its daily balances; next to an additive count."""
    catalog, wh = project
    got = canon_rows(catalog, wh, QueryRequest(metrics=("closing_balance", "snapshot_count"),
                                               dimensions=("metric_time.month",)))
    total = {str(r[0]): r[1] for r in wh.execute(
        "SELECT CAST(DATE_TRUNC('month', snapshot_date) AS DATE), SUM(balance) FROM balances GROUP BY 1")[1]}
    counts = {str(r[0]): r[1] for r in wh.execute(
        "SELECT CAST(DATE_TRUNC('month', snapshot_date) AS DATE), COUNT(*) FROM balances GROUP BY 1")[1]}
    closing = {str(r[0]): r[1] for r in wh.execute(per_account_sql("month", "MAX"))[1]}
    for month, value, count in got:
        assert value == pytest.approx(float(closing[month])) and value < float(total[month])
        assert count == counts[month]
