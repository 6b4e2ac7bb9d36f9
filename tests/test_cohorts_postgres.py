"""The cohort oracle cases of tests/test_cohorts.py on PostgreSQL (a throwaway server holding the same
demo data: tests/support/pg_server.py), so the SQL Canon writes for cohorts (month arithmetic, day
differences, running sums per member) gives the hand-written numbers there too."""

from __future__ import annotations

import pytest

from tests.test_cohorts import CASES


@pytest.fixture(scope="module")
def pg(pg_demo_url):
    from canon.server.warehouses import open_warehouse

    warehouse = open_warehouse(pg_demo_url)
    yield warehouse
    warehouse.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[len("case_"):])
def test_cohorts_match_hand_written_sql_on_postgres(catalog, pg, case):
    case(catalog, pg)
