"""Oracle helpers: run Canon, run hand-written SQL over the raw demo tables, compare the rows.

The oracle is written from the KPI definitions (DESIGN.md, metrics/*.yml), not from Canon's SQL:

* each *fact* below is a hand-written SELECT over the raw tables with the grain and the filters the
  definition asks for (completed orders, the latest restated ad_spend row, the first completed
  order of a customer, ...);
* dimensions are plain column expressions over fixed table aliases (o orders, oi order_items,
  p products, c customers, cp campaigns, s reconciled ad_spend, l leads, f first orders);
* facts are aggregated separately and combined in Python with a full outer join on the
  dimension values (NULL keys match each other); ratios are computed after aggregation,
  NULL when the denominator is 0 or missing;
* a metric with `fill_nulls_with: X` reads X where it has no value (also as a ratio input);
  when a requested metric has `join_to_timespine: true` and the request groups by metric_time
  alone, every period of the range (or, without a bound, from the first to the last period of the
  data) appears; with `fill_gaps` asked for, every period crossed with the other dimension values
  found in the data. These two flags are read from metrics/*.yml with plain YAML, so the oracle
  follows the definitions.

All SQL here is portable between DuckDB and PostgreSQL 15 (no GROUP BY ALL, no QUALIFY,
CAST(DATE_TRUNC(...) AS DATE), CAST(... AS DOUBLE PRECISION)).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from canon.compiler.request import QueryRequest
from canon.server.runtime import Runtime

# --- comparing row sets ---------------------------------------------------------------------------


def normalize(value):
    """One comparable form: numbers -> float (bool kept), dates -> ISO text, NULL -> None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat(sep="T")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _close(a, b, rel: float, abs_tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)
    return a == b


def _sort_key(row) -> tuple:
    # None sorts first; values of different types never compare directly
    return tuple((0, "") if v is None else (1, type(v).__name__, v) for v in row)


def _fmt(row) -> str:
    return "(" + ", ".join("NULL" if v is None else repr(v) for v in row) + ")"


def assert_same(canon_rows: Iterable[Sequence], oracle_rows: Iterable[Sequence], *, rel: float = 1e-9,
                abs_tol: float = 1e-9, keys: int | None = None, ordered: bool = False, label: str = "") -> None:
    """Assert two row sets are equal.

    Order-insensitive unless `ordered`; numbers compared with tolerance (Decimal/float/int alike);
    dates equal their ISO text; NULL equals NULL. `keys` is the number of leading key columns
    (the dimensions): rows are matched on them, and the remaining columns compared with tolerance.
    Without `keys`, rows are matched after sorting.
    """
    canon = [tuple(normalize(v) for v in row) for row in canon_rows]
    oracle = [tuple(normalize(v) for v in row) for row in oracle_rows]
    problems: list[str] = []
    widths = {len(r) for r in canon + oracle}
    if len(widths) > 1:
        raise AssertionError(f"{label}: rows of different widths {sorted(widths)}")

    if ordered or keys is None:
        if not ordered:
            canon, oracle = sorted(canon, key=_sort_key), sorted(oracle, key=_sort_key)
        if len(canon) != len(oracle):
            problems.append(f"row count: canon {len(canon)} != oracle {len(oracle)}")
        for i, (a, b) in enumerate(zip(canon, oracle)):
            if not all(_close(x, y, rel, abs_tol) for x, y in zip(a, b)):
                problems.append(f"row {i}: canon {_fmt(a)} != oracle {_fmt(b)}")
    else:
        def index(rows, side):
            out = {}
            for row in rows:
                key = row[:keys]
                if key in out:
                    problems.append(f"{side} has duplicate key {_fmt(key)}")
                out[key] = row[keys:]
            return out

        left, right = index(canon, "canon"), index(oracle, "oracle")
        for key in sorted(set(right) - set(left), key=_sort_key):
            problems.append(f"missing in canon: {_fmt(key + right[key])}")
        for key in sorted(set(left) - set(right), key=_sort_key):
            problems.append(f"extra in canon:   {_fmt(key + left[key])}")
        for key in sorted(set(left) & set(right), key=_sort_key):
            a, b = left[key], right[key]
            if not all(_close(x, y, rel, abs_tol) for x, y in zip(a, b)):
                problems.append(f"at {_fmt(key)}: canon {_fmt(a)} != oracle {_fmt(b)}")
    if problems:
        shown = problems[:25] + ([f"... and {len(problems) - 25} more"] if len(problems) > 25 else [])
        raise AssertionError(
            f"{label or 'rows differ'}: {len(problems)} difference(s) "
            f"(canon {len(canon)} rows, oracle {len(oracle)} rows)\n  " + "\n  ".join(shown))


def canon_result(catalog, warehouse, request: QueryRequest):
    """Canon's answer through the runtime, the path every front end takes (no row cap here)."""
    return Runtime.over(catalog, warehouse).query(request, capped=False)


def canon_rows(catalog, warehouse, request: QueryRequest) -> list[list]:
    result = canon_result(catalog, warehouse, request)
    expected = list(request.dimensions) + list(request.metrics)
    names = [c["name"] for c in result.columns]
    assert names == expected, f"columns {names} != requested {expected}"
    return result.rows


def sql_rows(warehouse, sql: str) -> list[tuple]:
    return warehouse.execute(sql)[1]


def scalar(warehouse, sql: str):
    return sql_rows(warehouse, sql)[0][0]


# --- the hand-written oracle ----------------------------------------------------------------------

GRAINS = ("day", "week", "month", "quarter", "year")


def trunc(grain: str, column: str) -> str:
    """A time column truncated to a grain, as a DATE (weeks start on Monday in both engines)."""
    return f"CAST(DATE_TRUNC('{grain}', CAST({column} AS TIMESTAMP)) AS DATE)"


# dimension reference -> SQL over the fixed aliases
DIMENSIONS = {
    **{f"product.{d}": f"p.{d}" for d in
       ("product_id", "product_name", "category", "subcategory", "brand", "tier", "list_price")},
    **{f"customer.{d}": f"c.{d}" for d in ("customer_id", "country_code", "segment", "acquisition_channel")},
    **{f"order.{d}": f"o.{d}" for d in ("order_id", "status", "sales_channel", "campaign_id")},
    **{f"campaign.{d}": f"cp.{d}" for d in ("campaign_id", "campaign_name", "channel", "funnel", "country_code")},
    "ad_spend.country_code": "s.country_code",
    "lead.source": "l.source",
    "lead.country_code": "l.country_code",
}


@dataclass(frozen=True)
class Fact:
    """A fact at its own grain: FROM ... WHERE ..., its time column and the aliases it can group by."""

    name: str
    from_sql: str
    where: tuple[str, ...]
    time: str
    aliases: frozenset[str]
    distinct_rows: str | None = None  # order-level facts: count each (row, group) once

    def sql(self, dims: Sequence[str], aggregates: dict[str, str], where: Sequence[str],
            start: str | None, end: str | None) -> str:
        dim_exprs = [self.dim(d) for d in dims]
        conditions = list(self.where) + list(where) + time_bounds(self.time, start, end)
        where_sql = ("WHERE " + " AND ".join(f"({c})" for c in conditions)) if conditions else ""
        names = [f"d{i}" for i in range(len(dims))]
        if self.distinct_rows is None:
            select = [f"{e} AS {n}" for e, n in zip(dim_exprs, names)]
            select += [f"{a} AS {m}" for m, a in aggregates.items()]
            group = f"GROUP BY {', '.join(dim_exprs)}" if dims else ""
            return f"SELECT {', '.join(select)}\n{self.from_sql}\n{where_sql}\n{group}"
        # the distinct (row, group) pairs first: a row with several lines in one group counts once
        inner = ", ".join([self.distinct_rows] + [f"{e} AS {n}" for e, n in zip(dim_exprs, names)])
        select = [f"t.{n} AS {n}" for n in names] + [f"{a} AS {m}" for m, a in aggregates.items()]
        group = f"GROUP BY {', '.join('t.' + n for n in names)}" if dims else ""
        return (f"SELECT {', '.join(select)}\nFROM (SELECT DISTINCT {inner}\n{self.from_sql}\n{where_sql}) AS t\n"
                f"{group}")

    def dim(self, ref: str) -> str:
        parts = ref.split(".")
        if parts[0] == "metric_time":
            return trunc(parts[1] if len(parts) > 1 else "day", self.time)
        if ref not in DIMENSIONS:
            raise KeyError(f"oracle has no dimension {ref}")
        expr = DIMENSIONS[ref]
        if expr.split(".")[0] not in self.aliases:
            raise KeyError(f"fact {self.name} cannot group by {ref}")
        return expr


def time_bounds(column: str, start: str | None, end: str | None) -> list[str]:
    """start inclusive; a date `end` includes that whole day, a timestamp `end` is exclusive."""
    out = []
    if start is not None:
        out.append(f"CAST({column} AS TIMESTAMP) >= TIMESTAMP '{_ts(start, False)}'")
    if end is not None:
        out.append(f"CAST({column} AS TIMESTAMP) < TIMESTAMP '{_ts(end, True)}'")
    return out


def _ts(value: str, is_end: bool) -> str:
    if len(value) == 10:
        day = date.fromisoformat(value)
        return f"{day + timedelta(days=1) if is_end else day} 00:00:00"
    return datetime.fromisoformat(value).isoformat(sep=" ")


_SALES_JOINS = """JOIN customers AS c ON c.customer_id = o.customer_id
LEFT JOIN campaigns AS cp ON cp.campaign_id = o.campaign_id"""

FACTS = {
    # one row per line of a completed order
    "lines": Fact(
        "lines",
        "FROM order_items AS oi\nJOIN orders AS o ON o.order_id = oi.order_id\n"
        "JOIN products AS p ON p.product_id = oi.product_id\n" + _SALES_JOINS,
        ("o.status = 'completed'",), "o.ordered_at", frozenset({"oi", "o", "p", "c", "cp"})),
    # one row per completed order, counted once per group even when grouped by its lines' products
    "orders": Fact(
        "orders",
        "FROM orders AS o\n" + _SALES_JOINS + "\nLEFT JOIN order_items AS oi ON oi.order_id = o.order_id\n"
        "LEFT JOIN products AS p ON p.product_id = oi.product_id",
        ("o.status = 'completed'",), "o.ordered_at", frozenset({"oi", "o", "p", "c", "cp"}),
        distinct_rows="o.order_id AS order_id, o.customer_id AS customer_id, o.shipping_amount AS shipping_amount"),
    "attributed_orders": Fact(
        "attributed_orders",
        "FROM orders AS o\n" + _SALES_JOINS + "\nLEFT JOIN order_items AS oi ON oi.order_id = o.order_id\n"
        "LEFT JOIN products AS p ON p.product_id = oi.product_id",
        ("o.status = 'completed'", "o.campaign_id IS NOT NULL"), "o.ordered_at",
        frozenset({"oi", "o", "p", "c", "cp"}), distinct_rows="o.order_id AS order_id"),
    # reconciled spend: per (campaign, day, country) only the latest load
    "spend": Fact(
        "spend",
        "FROM (SELECT a.campaign_id, a.spend_date, a.country_code, a.spend, a.impressions, a.clicks,\n"
        "             ROW_NUMBER() OVER (PARTITION BY a.campaign_id, a.spend_date, a.country_code\n"
        "                                ORDER BY a._etl_loaded_at DESC) AS rn\n"
        "      FROM ad_spend AS a) AS s\n"
        "LEFT JOIN campaigns AS cp ON cp.campaign_id = s.campaign_id",
        ("s.rn = 1",), "s.spend_date", frozenset({"s", "cp"})),
    "leads": Fact(
        "leads", "FROM leads AS l\nLEFT JOIN campaigns AS cp ON cp.campaign_id = l.campaign_id",
        (), "l.created_at", frozenset({"l", "cp"})),
    # a customer at their first completed order, credited to customers.first_campaign_id
    "acquisitions": Fact(
        "acquisitions",
        "FROM (SELECT o.customer_id, o.ordered_at,\n"
        "             ROW_NUMBER() OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at, o.order_id) AS rn\n"
        "      FROM orders AS o WHERE o.status = 'completed') AS f\n"
        "JOIN customers AS c ON c.customer_id = f.customer_id\n"
        "LEFT JOIN campaigns AS cp ON cp.campaign_id = c.first_campaign_id",
        ("f.rn = 1",), "f.ordered_at", frozenset({"f", "c", "cp"})),
}

# metric -> (fact, aggregate over that fact's rows)
SIMPLE = {
    "revenue": ("lines", "SUM(oi.quantity * oi.unit_price - oi.discount_amount)"),
    "units_sold": ("lines", "SUM(oi.quantity)"),
    "product_purchase_frequency": ("lines", "COUNT(DISTINCT oi.order_id)"),
    "order_count": ("orders", "COUNT(*)"),
    "buyer_count": ("orders", "COUNT(DISTINCT t.customer_id)"),
    "shipping_total": ("orders", "SUM(t.shipping_amount)"),
    "attributed_order_count": ("attributed_orders", "COUNT(*)"),
    "ad_spend": ("spend", "SUM(s.spend)"),
    "impressions": ("spend", "SUM(s.impressions)"),
    "clicks": ("spend", "SUM(s.clicks)"),
    "lead_count": ("leads", "COUNT(*)"),
    "meeting_count": ("leads", "SUM(CASE WHEN l.meeting_at IS NOT NULL THEN 1 ELSE 0 END)"),
    "new_customers": ("acquisitions", "COUNT(*)"),
}
# metric -> (numerator, denominator), both simple
RATIOS = {
    "aov": ("revenue", "order_count"),
    "purchase_frequency": ("order_count", "buyer_count"),
    "ctr": ("clicks", "impressions"),
    "lead_to_meeting_rate": ("meeting_count", "lead_count"),
    "cac": ("ad_spend", "new_customers"),
    "cost_per_lead": ("ad_spend", "lead_count"),
    "cost_per_order": ("ad_spend", "attributed_order_count"),
}
ALL_METRICS = tuple(SIMPLE) + tuple(RATIOS)


REPO_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def metric_flags() -> dict[str, dict]:
    """metric name -> its `fill_nulls_with` / `join_to_timespine`, straight from metrics/*.yml."""
    flags = {}
    for path in sorted((REPO_ROOT / "metrics").glob("*.yml")):
        for metric in (yaml.safe_load(path.read_text()) or {}).get("metrics") or []:
            flags[metric["name"]] = {k: metric[k] for k in ("fill_nulls_with", "join_to_timespine") if k in metric}
    return flags


def fill(metric: str, value):
    if value is None:
        return metric_flags().get(metric, {}).get("fill_nulls_with")
    return value


def period(day: date, grain: str) -> date:
    """The start of the period holding `day` (weeks start on Monday)."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    if grain == "year":
        return day.replace(month=1, day=1)
    raise ValueError(grain)


def periods_between(first: date, last: date, grain: str) -> list[str]:
    """Every period overlapping the days first..last (inclusive), as ISO dates."""
    out, day = set(), first
    while day <= last:
        out.add(period(day, grain).isoformat())
        day += timedelta(days=1)
    return sorted(out)


def spine_keys(keys: set[tuple], dims: Sequence[str], start, end) -> set[tuple]:
    """The groups a time-spine query shows: every period of the range x the other dimension values."""
    index = next(i for i, d in enumerate(dims) if d.startswith("metric_time"))
    grain = dims[index].split(".")[1] if "." in dims[index] else "day"
    seen = [date.fromisoformat(k[index]) for k in keys if k[index] is not None]
    if start is not None:
        first = datetime.fromisoformat(_ts(start, False)).date()
    elif seen:
        first = min(seen)
    else:
        return set(keys)
    if end is not None:  # the last day that overlaps [start, end)
        last = (datetime.fromisoformat(_ts(end, True)) - timedelta(microseconds=1)).date()
    elif seen:
        last = max(seen)
    else:
        return set(keys)
    others = {k[:index] + k[index + 1:] for k in keys}
    if len(dims) == 1:
        others = {()}  # periods of the range even when no data falls in it
    spine = {o[:index] + (p,) + o[index:] for p, o in itertools.product(periods_between(first, last, grain), others)}
    return spine | set(keys)  # a period holding data is never dropped


def ratio(numerator, denominator):
    if numerator is None or denominator is None:
        return None
    denominator = float(denominator)
    return None if denominator == 0 else float(numerator) / denominator


def supports(metric: str, dims: Sequence[str]) -> bool:
    """Whether every fact behind `metric` can group by `dims`."""
    simple = RATIOS.get(metric, (metric,))
    for name in simple:
        fact = FACTS[SIMPLE[name][0]]
        try:
            [fact.dim(d) for d in dims]
        except KeyError:
            return False
    return True


def oracle_sql(metric: str, dims: Sequence[str] = (), where: Sequence[str] = (), start=None, end=None) -> str:
    """The hand-written SQL of one simple metric (for reading and for single-fact checks)."""
    fact_name, aggregate = SIMPLE[metric]
    return FACTS[fact_name].sql(dims, {metric: aggregate}, where, start, end)


_CACHE: dict[tuple, tuple] = {}


def _cached_execute(warehouse, sql: str):
    """Oracle results are reused across tests (a ratio reads the facts its inputs already read)."""
    key = (id(warehouse), warehouse.url, sql)
    if key not in _CACHE:
        _CACHE[key] = warehouse.execute(sql)
    return _CACHE[key]


def oracle_rows(warehouse, metrics: Sequence[str], dims: Sequence[str] = (), where: Sequence[str] = (),
                start: str | None = None, end: str | None = None, fill_gaps: bool | None = None) -> list[list]:
    """Rows [dims..., metrics...]: every fact aggregated on its own, full outer joined on the dims
    (NULL keys match), ratios after aggregation. `where` is SQL over the oracle's aliases."""
    needed: list[str] = []
    for m in metrics:
        for s in RATIOS.get(m, (m,)):
            if s not in needed:
                needed.append(s)
    by_fact: dict[str, dict[str, str]] = {}
    for s in needed:
        fact_name, aggregate = SIMPLE[s]
        by_fact.setdefault(fact_name, {})[s] = aggregate
    combined: dict[tuple, dict[str, object]] = {}
    for fact_name, aggregates in by_fact.items():
        sql = FACTS[fact_name].sql(dims, aggregates, where, start, end)
        names, rows = _cached_execute(warehouse, sql)
        for row in rows:
            key = tuple(normalize(v) for v in row[:len(dims)])
            values = combined.setdefault(key, {})
            for name, value in zip(names[len(dims):], row[len(dims):]):
                values[name.lower()] = value
    declared = any(metric_flags().get(m, {}).get("join_to_timespine") for m in metrics)
    pure_series = bool(dims) and all(d.startswith("metric_time") for d in dims)
    if fill_gaps or (fill_gaps is None and declared and pure_series):
        for key in spine_keys(set(combined), dims, start, end):
            combined.setdefault(key, {})
    out = []
    for key, values in combined.items():
        row = list(key)
        for m in metrics:
            if m in RATIOS:
                num, den = RATIOS[m]
                row.append(fill(m, ratio(fill(num, values.get(num)), fill(den, values.get(den)))))
            else:
                row.append(fill(m, values.get(m)))
        out.append(row)
    return out


def check(catalog, warehouse, metrics: Sequence[str], dims: Sequence[str] = (), *, canon_where: Sequence[str] = (),
          oracle_where: Sequence[str] = (), start=None, end=None, rel: float = 1e-9,
          nonempty: bool = True, fill_gaps: bool | None = None) -> list[list]:
    """Canon == oracle for one request; returns Canon's rows (for extra assertions).
    With `nonempty`, the oracle must find some data (a filter that matches nothing proves little)."""
    request = QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims), where=tuple(canon_where),
                           start=start, end=end, fill_gaps=fill_gaps)
    got = canon_rows(catalog, warehouse, request)
    want = oracle_rows(warehouse, metrics, dims, oracle_where, start, end, fill_gaps)
    if nonempty:
        assert any(v is not None for row in want for v in row[len(dims):]), "the oracle found no data"
    assert_same(got, want, keys=len(dims), rel=rel,
                label=f"{list(metrics)} by {list(dims)} where {list(canon_where)} [{start}, {end}]")
    return got
