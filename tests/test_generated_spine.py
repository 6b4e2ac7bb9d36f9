"""Without a `time_spine:` table, the days are generated in SQL: the same answers as with the table.

The oracle is the demo's own time spine table: the repo's catalog with and without `time_spine:` in
canon.yml must answer rolling, to-date, gap-filled and offset requests identically, on DuckDB and
PostgreSQL (the `warehouse` fixture), with and without a time zone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.errors import UnsupportedError
from canon.compiler.request import QueryRequest
from tests.support.oracle import canon_rows, normalize
from tests.support.project import copy_project

REPO = Path(__file__).resolve().parents[1]

REQUESTS = [
    QueryRequest(metrics=("revenue_rolling_28d", "revenue_ytd"), dimensions=("metric_time.month",)),
    QueryRequest(metrics=("revenue_rolling_28d",), dimensions=("metric_time.day",), start="2024-02-20", end="2024-03-10"),
    QueryRequest(metrics=("revenue_mtd",), dimensions=("metric_time.week", "product.category"),
                 start="2025-01-01", end="2025-03-31", timezone="America/New_York"),
    QueryRequest(metrics=("order_count",), dimensions=("metric_time.day",), start="2024-12-20", end="2025-01-10"),
    QueryRequest(metrics=("order_count", "revenue"), dimensions=("metric_time.week", "customer.country_code"),
                 fill_gaps=True, start="2025-06-01", end="2025-07-31"),
    # at day grain a month offset clamps (Mar 29-31 read Feb 28), so it reads the spine (at month grain it
    # does not: the periods move one to one, tests/test_sql_shape.py)
    QueryRequest(metrics=("revenue_mom_growth",), dimensions=("metric_time.day",), timezone="Asia/Tokyo",
                 start="2025-03-20", end="2025-04-05"),
    QueryRequest(metrics=("revenue_prev_month", "revenue"), dimensions=("metric_time.day",),
                 start="2024-03-25", end="2024-04-05"),  # Mar 30 and 31 both read Feb 29
]


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("no_spine"))
    settings = yaml.safe_load((root / "canon.yml").read_text())
    settings.pop("time_spine")
    (root / "canon.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return load_catalog(REPO), load_catalog(root)  # the repo's views load too: nothing needs a table


@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_generated_days_answer_like_the_spine_table(catalogs, warehouse, index):
    with_table, generated = catalogs
    request = REQUESTS[index]
    assert "GENERATE" in compile_request(generated, request, warehouse.dialect).sql.upper()
    want = canon_rows(with_table, warehouse, request)
    got = canon_rows(generated, warehouse, request)
    assert want, "the spine table gave no rows"
    assert normalize(got) == normalize(want)


def test_the_generated_spine_renders_per_dialect_or_refuses(catalogs):
    _, generated = catalogs
    request = QueryRequest(metrics=("revenue_rolling_28d",), dimensions=("metric_time.month",))
    expected = {"duckdb": "GENERATE_SERIES", "postgres": "GENERATE_SERIES", "spark": "SEQUENCE",
                "bigquery": "GENERATE_DATE_ARRAY", "snowflake": "ARRAY_GENERATE_RANGE"}
    for dialect, function in expected.items():
        assert function in compile_request(generated, request, dialect).sql, dialect
    for dialect in ("clickhouse", "trino"):  # no series function, or one capped at 10,000 entries
        with pytest.raises(UnsupportedError, match="time_spine"):
            compile_request(generated, request, dialect)
