"""Oracle tests for measures over per-entity aggregates (metrics/time.yml), against portable hand SQL.

* median_order_value: the median (interpolated, PERCENTILE_CONT(0.5)) over completed orders of the
  order's net total (its lines' quantity * unit_price − discount_amount summed).
* avg_items_per_order: the average over completed orders of the order's summed quantity.
* repeat_buyer_count: customers with ≥ 2 completed orders within the query's scope (the group — e.g. the
  month —, the filters and the range).
"""

from __future__ import annotations

import pytest

from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows

LA = "America/Los_Angeles"

# per-order facts: one row per completed order with its total and units
ORDERS = ("(SELECT o.order_id, o.customer_id, o.ordered_at, o.sales_channel, c.segment,\n"
          "        SUM(oi.quantity * oi.unit_price - oi.discount_amount) AS total, SUM(oi.quantity) AS units\n"
          " FROM orders AS o JOIN order_items AS oi ON oi.order_id = o.order_id\n"
          " JOIN customers AS c ON c.customer_id = o.customer_id\n"
          " WHERE o.status = 'completed'\n"
          " GROUP BY o.order_id, o.customer_id, o.ordered_at, o.sales_channel, c.segment) AS t")


def t_time(tz):
    return "t.ordered_at" if not tz else f"((t.ordered_at AT TIME ZONE 'UTC') AT TIME ZONE '{tz}')"


def dim_sql(ref, tz=None):
    if ref.startswith("metric_time."):
        return f"CAST(DATE_TRUNC('{ref.split('.')[1]}', {t_time(tz)}) AS DATE)"
    return {"customer.segment": "t.segment", "order.sales_channel": "t.sales_channel"}[ref]


def bounds(start, end, tz):
    out = []
    if start:
        out.append(f"{t_time(tz)} >= TIMESTAMP '{start} 00:00:00'")
    if end:
        out.append(f"CAST({t_time(tz)} AS DATE) <= DATE '{end}'")
    return out


def oracle(warehouse, metric, dims=(), where=(), start=None, end=None, tz=None):
    exprs = [dim_sql(d, tz) for d in dims]
    conds = list(where) + bounds(start, end, tz)
    where_sql = f"WHERE {' AND '.join(f'({c})' for c in conds)}\n" if conds else ""
    group = f"GROUP BY {', '.join(exprs)}" if exprs else ""
    if metric == "median_order_value":
        sql = f"SELECT {', '.join(exprs + ['PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CAST(t.total AS DOUBLE PRECISION))'])}\nFROM {ORDERS}\n{where_sql}{group}"
    elif metric == "avg_items_per_order":
        sql = f"SELECT {', '.join(exprs + ['AVG(t.units)'])}\nFROM {ORDERS}\n{where_sql}{group}"
    else:  # customers with >= 2 orders per group
        names = [f"g{i}" for i in range(len(dims))]
        inner = ", ".join([f"{e} AS {n}" for e, n in zip(exprs, names)] + ["t.customer_id", "COUNT(*) AS n"])
        sql = (f"SELECT {', '.join(['b.' + n for n in names] + ['SUM(CASE WHEN b.n >= 2 THEN 1 ELSE 0 END)'])}\n"
               f"FROM (SELECT {inner}\nFROM {ORDERS}\n{where_sql}"
               f"GROUP BY {', '.join(exprs + ['t.customer_id'])}) AS b\n"
               + (f"GROUP BY {', '.join('b.' + n for n in names)}" if names else ""))
    return warehouse.execute(sql)[1]


def check(catalog, warehouse, metric, dims=(), canon_where=(), oracle_where=(), start=None, end=None, tz=None):
    want = oracle(warehouse, metric, dims, oracle_where, start, end, tz)
    assert want and any(r[-1] for r in want), "the oracle found no data"
    req = QueryRequest(metrics=(metric,), dimensions=tuple(dims), where=tuple(canon_where), start=start, end=end,
                       timezone=tz)
    got = canon_rows(catalog, warehouse, req)
    assert_same(got, want, keys=len(dims), rel=1e-9, abs_tol=1e-6, label=str(req))
    return got


METRICS = ("median_order_value", "avg_items_per_order", "repeat_buyer_count")
DIM_SETS = [(), ("metric_time.day",), ("metric_time.week",), ("metric_time.month",), ("customer.segment",),
            ("order.sales_channel",), ("metric_time.month", "customer.segment")]


@pytest.mark.parametrize("dims", DIM_SETS, ids=lambda d: "+".join(d) or "total")
@pytest.mark.parametrize("metric", METRICS)
def test_by_dimensions(catalog, warehouse, metric, dims):
    check(catalog, warehouse, metric, dims)


@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize("metric", METRICS)
def test_with_range_and_filter(catalog, warehouse, metric, grain):
    check(catalog, warehouse, metric, (f"metric_time.{grain}",), canon_where=("customer.segment = 'enterprise'",),
          oracle_where=("t.segment = 'enterprise'",), start="2024-02-15", end="2024-08-31")


@pytest.mark.parametrize("metric", METRICS)
def test_in_a_time_zone(catalog, warehouse, metric):
    check(catalog, warehouse, metric, ("metric_time.week",), start="2024-10-01", end="2024-12-31", tz=LA)


def test_repeat_buyers_depend_on_scope(catalog, warehouse):
    """Per month there are fewer repeat buyers than over the whole year: the scope is the group."""
    year = check(catalog, warehouse, "repeat_buyer_count", start="2024-01-01", end="2024-12-31")[0][0]
    months = check(catalog, warehouse, "repeat_buyer_count", ("metric_time.month",), start="2024-01-01",
                   end="2024-12-31")
    assert 0 < max(r[1] for r in months) < year


def test_median_is_of_order_totals_not_lines(catalog, warehouse):
    """The median of line values differs: the measure aggregates lines per order first."""
    lines = warehouse.execute(
        "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CAST(oi.quantity * oi.unit_price - oi.discount_amount AS DOUBLE PRECISION)) "
        "FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id WHERE o.status = 'completed'")[1][0][0]
    got = check(catalog, warehouse, "median_order_value")[0][0]
    assert abs(got - float(lines)) > 1
    units = check(catalog, warehouse, "avg_items_per_order")[0][0]
    assert units > 1.0


def test_with_other_metrics(catalog, warehouse):
    """Next to revenue and order_count (gap filled): each metric keeps its own aggregation."""
    req = QueryRequest(metrics=("revenue", "order_count", "median_order_value", "repeat_buyer_count"),
                       dimensions=("metric_time.month",), start="2023-12-01", end="2024-04-30")
    got = canon_rows(catalog, warehouse, req)
    med = {str(r[0]): r[1] for r in oracle(warehouse, "median_order_value", ("metric_time.month",),
                                            start="2023-12-01", end="2024-04-30")}
    rep = {str(r[0]): r[1] for r in oracle(warehouse, "repeat_buyer_count", ("metric_time.month",),
                                            start="2023-12-01", end="2024-04-30")}
    agg = {str(r[0]): r[1:] for r in warehouse.execute(
        "SELECT CAST(DATE_TRUNC('month', t.ordered_at) AS DATE), SUM(t.total), COUNT(*) FROM " + ORDERS +
        " WHERE t.ordered_at >= TIMESTAMP '2023-12-01 00:00:00' AND t.ordered_at < TIMESTAMP '2024-05-01 00:00:00'"
        " GROUP BY CAST(DATE_TRUNC('month', t.ordered_at) AS DATE)")[1]}
    months = ["2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    want = [[m, agg[m][0] if m in agg else None, agg[m][1] if m in agg else 0, med.get(m), rep.get(m)]
            for m in months]
    assert want[0] == ["2023-12-01", None, 0, None, None]
    assert_same(got, want, keys=1, rel=1e-9, abs_tol=1e-6)
