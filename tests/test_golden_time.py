"""Golden SQL for the time metrics, in every dialect of DIALECTS.

Each case compiles one request and compares the pretty SQL with tests/golden_time/<case>/<dialect>.sql.
Run with CANON_UPDATE_GOLDEN=1 to rewrite the files after an intended change (and read the diff).
Every golden file must parse back with sqlglot in its own dialect.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

from canon.compiler.compile import DIALECTS, compile_request
from canon.compiler.errors import UnsupportedError
from canon.compiler.request import QueryRequest

GOLDEN = Path(__file__).resolve().parent / "golden_time"
UPDATE = os.environ.get("CANON_UPDATE_GOLDEN") == "1"

CASES = {
    "rolling_28d_by_day": QueryRequest(metrics=("revenue_rolling_28d",), dimensions=("metric_time.day",),
                                       start="2024-03-01", end="2024-03-31"),
    "mtd_by_week": QueryRequest(metrics=("revenue_mtd",), dimensions=("metric_time.week",),
                                start="2024-03-01", end="2024-04-30"),
    "mom_growth_by_month": QueryRequest(metrics=("revenue_mom_growth",), dimensions=("metric_time.month",),
                                        start="2024-02-01", end="2024-12-31"),
    "conversion_by_channel": QueryRequest(metrics=("meeting_conversion_14d",), dimensions=("campaign.channel",)),
    "median_order_value_by_month": QueryRequest(metrics=("median_order_value",), dimensions=("metric_time.month",)),
}
# no exact median aggregate there: Canon refuses instead of returning another number
UNSUPPORTED = {("median_order_value_by_month", "bigquery"), ("median_order_value_by_month", "trino")}


@pytest.mark.parametrize("case, dialect", sorted(UNSUPPORTED))
def test_exact_median_is_refused_where_the_dialect_has_none(catalog, case, dialect):
    with pytest.raises(UnsupportedError, match=f"{dialect} has no exact median"):
        compile_request(catalog, CASES[case], dialect)


@pytest.mark.parametrize("case, dialect", [(c, d) for c in CASES for d in DIALECTS if (c, d) not in UNSUPPORTED])
def test_golden_sql(catalog, case, dialect):
    sql = compile_request(catalog, CASES[case], dialect, pretty=True).sql.strip() + "\n"
    path = GOLDEN / case / f"{dialect}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    assert path.is_file(), f"{path} is missing: run with CANON_UPDATE_GOLDEN=1"
    expected = path.read_text()
    assert sql == expected, f"{case} / {dialect} differs from {path} (CANON_UPDATE_GOLDEN=1 rewrites it)"
    sqlglot.parse_one(expected, read=dialect)


def test_every_golden_file_belongs_to_a_case():
    found = {(p.parent.name, p.stem) for p in GOLDEN.glob("*/*.sql")}
    assert found == {(c, d) for c in CASES for d in DIALECTS} - UNSUPPORTED


def test_golden_sql_runs_on_the_warehouse(catalog, warehouse):
    """The golden text of the warehouse's own dialect runs and returns rows."""
    for case in CASES:
        rows = warehouse.execute((GOLDEN / case / f"{warehouse.dialect}.sql").read_text())[1]
        assert rows, case
