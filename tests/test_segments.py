"""RFM segments (customer.rfm_segment) and the customer value dimensions equal a reference computed
with raw SQL and pandas (quintile scores by percent rank, then the documented mapping)."""

from __future__ import annotations

import math

import pytest

from tests.test_recommend_reference import Reference, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "segments", scale=0.5, seed=3)


def test_rfm_segment_assignment_matches_reference(project):
    from canon.compiler.compile import load_catalog
    from canon.compiler.request import QueryRequest
    from tests.support.oracle import canon_result
    from canon.server.warehouses import open_warehouse

    ref = Reference(project / ".canon" / "demo.duckdb")
    want = ref.rfm_segments()
    catalog = load_catalog(project)
    warehouse = open_warehouse(str(project / ".canon" / "demo.duckdb"))
    try:
        rows = canon_result(catalog, warehouse, QueryRequest(
            metrics=("customer_account_count",),
            dimensions=("customer.customer_id", "customer.rfm_segment", "customer.order_count",
                        "customer.lifetime_revenue"))).rows
    finally:
        warehouse.close()
    got = {cid: seg for cid, seg, *_ in rows if seg is not None}
    assert got == want
    assert set(want.values()) <= {"champions", "loyal", "potential_loyalist", "new", "at_risk", "hibernating", "lost"}
    assert len(set(want.values())) >= 5
    per = ref.per_customer.set_index("customer_id")
    for cid, seg, count, revenue, _ in rows:
        if cid in per.index:
            assert count == per.loc[cid, "order_count"]
            assert math.isclose(float(revenue), float(per.loc[cid, "lifetime_revenue"]), rel_tol=1e-9)
        else:
            assert seg is None and count is None
