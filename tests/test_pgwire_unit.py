"""Semantic SQL -> QueryRequest, wire encodings and SCRAM, without a server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlglot

from canon.compiler.compile import load_catalog
from canon.server.pgwire import protocol, types as t
from canon.server.pgwire.errors import PgError
from canon.server.pgwire.semantic import translate
from canon.server.pgwire.views import view_tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


def req(catalog, sql, params=None):
    return translate(sqlglot.parse_one(sql, read="postgres"), catalog, view_tables(catalog), params)


def test_semantic_select_becomes_a_request(catalog):
    q = req(catalog, "SELECT product_category AS cat, MEASURE(revenue), SUM(order_count) FROM sales "
                     "WHERE customer_segment = 'enterprise' AND metric_time BETWEEN DATE '2024-01-01' AND '2024-02-01' "
                     "GROUP BY 1 ORDER BY 2 DESC LIMIT 10 OFFSET 5")
    r = q.request
    assert r.metrics == ("revenue", "order_count") and r.dimensions == ("product.category",)
    assert r.order == ("-revenue",) and (r.limit, r.offset) == (10, 5)
    assert tuple(w.sql("duckdb") for w in r.where) == ("\"customer\".\"segment\" = 'enterprise' AND \"metric_time\" BETWEEN CAST('2024-01-01' AS DATE) "
                       "AND '2024-02-01'",)
    assert [(o.name, o.oid) for o in q.outputs] == [("cat", 25), ("revenue", 1700), ("order_count", 1700)]


def test_time_grain_params_and_wrappers(catalog):
    q = req(catalog, "SELECT * FROM (SELECT DATE_TRUNC('month', metric_time) AS m, revenue FROM sales "
                     "WHERE order_status = $1 GROUP BY 1) AS t LIMIT $2", ["completed", 3])
    assert q.request.dimensions == ("metric_time.month",) and q.request.limit == 3
    assert tuple(w.sql("duckdb") for w in q.request.where) == ("\"order\".\"status\" = 'completed'",)
    assert [o.oid for o in q.outputs] == [t.DATE, t.NUMERIC]
    assert req(catalog, "SELECT * FROM sales LIMIT 0").empty


@pytest.mark.parametrize("sql, state", [
    ("SELECT nope FROM sales", "42703"),
    ("SELECT SUM(aov) FROM sales", "0A000"),
    ("SELECT revenue FROM sales WHERE revenue > 3", "42803"),
    ("SELECT product_category FROM sales GROUP BY revenue", "42803"),
    ("SELECT product_category, random() FROM sales GROUP BY 1", "42883"),  # COUNT(*) now answers (bi_tools)
    ("SELECT a.revenue FROM sales s JOIN marketing a ON true", "0A000"),
    ("SELECT revenue FROM sales LIMIT 'x'", "42601"),
])
def test_translation_errors_carry_sqlstates(catalog, sql, state):
    with pytest.raises(PgError) as info:
        req(catalog, sql)
    assert info.value.sqlstate == state


def test_hostile_where_is_refused_by_the_compiler_allow_list(catalog):
    from canon.compiler.errors import CanonError
    from canon.compiler.resolve import resolve

    q = req(catalog, "SELECT revenue FROM sales WHERE product_category IN (SELECT * FROM read_csv('/etc/passwd'))")
    with pytest.raises(CanonError):
        resolve(catalog, q.request)


@pytest.mark.parametrize("value", [Decimal("0"), Decimal("123.4500"), Decimal("-0.0001"), Decimal("98765432.1"),
                                   Decimal("10000"), 1.5])
def test_numeric_binary_round_trip(value):
    assert t._decode_numeric(t.encode_binary(value, t.NUMERIC)) == Decimal(str(value))


def test_dates_and_timestamps_binary():
    assert t.decode_param(t.encode_binary(date(2024, 2, 29), t.DATE), 1, t.DATE) == date(2024, 2, 29)
    stamp = datetime(2024, 2, 29, 13, 5, 7, 123)
    assert t.decode_param(t.encode_binary(stamp, t.TIMESTAMP), 1, t.TIMESTAMP) == stamp


def test_scram_accepts_the_right_password_only():
    for password, ok in (("pw", True), ("wrong", False)):
        server = protocol.ScramServer("pw")
        first_bare = "n=,r=abc"
        server_first = server.first(("n,," + first_bare).encode()).decode()
        attrs = dict(part.split("=", 1) for part in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        key = hmac.digest(salted, b"Client Key", "sha256")
        without = f"c=biws,r={attrs['r']}"
        sig = hmac.digest(hashlib.sha256(key).digest(), f"{first_bare},{server_first},{without}".encode(), "sha256")
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(key, sig))).decode()
        assert (server.final(f"{without},p={proof}".encode()) is not None) == ok
