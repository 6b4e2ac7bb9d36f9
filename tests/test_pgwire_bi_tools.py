"""BI tools' query shapes over the wire (Superset, Metabase, Power BI, postgres.js/JDBC parameters),
against an in-process server on the demo warehouse. Every number is compared with the runtime's answer
to the equivalent QueryRequest (what POST /v1/query returns)."""

from __future__ import annotations

import struct
from datetime import date, datetime

import psycopg
import pytest

from canon.compiler.compile import load_catalog
from canon.compiler.request import QueryRequest
from canon.server.pgwire.server import start_pg_server
from canon.server.runtime import Runtime
from canon.server.warehouses.duckdb import DuckDBWarehouse
from tests.support.servers import ROOT, build_warehouse


USER, PASSWORD = "analyst", "s3cret-pw"  # as tests.test_pgwire_clients' raw-socket helper logs in


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    path = build_warehouse(tmp_path_factory.mktemp("bi") / "demo.duckdb", scale=0.2)
    warehouse = DuckDBWarehouse(str(path))
    runtime = Runtime.over(load_catalog(ROOT), warehouse)
    yield runtime
    warehouse.close()


@pytest.fixture(scope="module")
def port(runtime):
    handle = start_pg_server(runtime, port=0, user=USER, password=PASSWORD)
    yield handle.port
    handle.stop()


@pytest.fixture()
def conn(port):
    with psycopg.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="canon",
                         autocommit=True, connect_timeout=10) as c:
        yield c


def oracle(runtime, **kwargs):
    return [tuple(_n(v) for v in row) for row in runtime.query(QueryRequest(**kwargs)).rows]


def _n(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), 4)
    if hasattr(value, "is_nan"):
        return round(float(value), 4)
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    return value


def rows(conn, sql, params=None):
    return [tuple(_n(v) for v in row) for row in conn.execute(sql, params).fetchall()]


# --- Superset --------------------------------------------------------------------------------------------

def test_superset_time_range_with_to_date_and_to_timestamp(conn, runtime):
    want = oracle(runtime, metrics=["revenue"], dimensions=["product.category"],
                  where=["metric_time >= '2025-01-01' AND metric_time < '2025-04-01'"], order=["product.category"])
    got = rows(conn, "SELECT product_category AS product_category, SUM(revenue) AS \"SUM(revenue)\" FROM sales "
                     "WHERE metric_time >= TO_DATE('2025-01-01', 'YYYY-MM-DD') "
                     "AND metric_time < TO_DATE('2025-04-01', 'YYYY-MM-DD') GROUP BY product_category "
                     "ORDER BY product_category LIMIT 10000")
    assert got == want and len(want) > 1
    got = rows(conn, "SELECT product_category, SUM(revenue) FROM sales "
                     "WHERE metric_time >= TO_TIMESTAMP('2025-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') "
                     "AND metric_time < TO_TIMESTAMP('2025-04-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') "
                     "GROUP BY product_category ORDER BY product_category")
    assert got == want


def test_superset_count_star_and_row_count_wrapper(conn, runtime):
    total = oracle(runtime, metrics=["order_count"])
    assert rows(conn, "SELECT COUNT(*) AS count FROM sales") == total
    by_cat = oracle(runtime, metrics=["order_count"], dimensions=["product.category"], order=["product.category"])
    got = rows(conn, "SELECT product_category, COUNT(*) AS count FROM sales GROUP BY product_category "
                     "ORDER BY product_category")
    assert got == by_cat
    got = rows(conn, "SELECT COUNT(*) AS rowcount FROM (SELECT product_category AS product_category, "
                     "SUM(revenue) AS \"SUM(revenue)\" FROM sales GROUP BY product_category LIMIT 10000) AS rowcount_qry")
    assert got == [(float(len(by_cat)),)]


def test_superset_series_limit_join(conn, runtime):
    top = oracle(runtime, metrics=["revenue"], dimensions=["product.category"], order=["-revenue"], limit=2)
    names = [r[0] for r in top]
    want = oracle(runtime, metrics=["revenue"], dimensions=["metric_time.year", "product.category"],
                  where=[f"product.category IN ('{names[0]}', '{names[1]}')"],
                  order=["metric_time.year", "product.category"])
    got = rows(conn, "SELECT DATE_TRUNC('year', metric_time) AS metric_time, product_category AS product_category, "
                     "SUM(revenue) AS \"SUM(revenue)\" FROM sales JOIN (SELECT product_category AS "
                     "product_category__, SUM(revenue) AS mme_inner__ FROM sales GROUP BY product_category "
                     "ORDER BY mme_inner__ DESC LIMIT 2) AS series_limit ON product_category = product_category__ "
                     "GROUP BY DATE_TRUNC('year', metric_time), product_category ORDER BY 1, 2 LIMIT 10000")
    assert got == want and len(got) >= 2


def test_superset_virtual_dataset_filters_on_an_unselected_column(conn, runtime):
    want = oracle(runtime, metrics=["revenue"], dimensions=["product.category"],
                  where=["order.sales_channel = 'web'"], order=["product.category"])
    got = rows(conn, "SELECT product_category, SUM(revenue) FROM (SELECT product_category, revenue FROM sales "
                     "WHERE order_sales_channel = 'web') AS virtual_table GROUP BY product_category ORDER BY 1")
    assert got == want


def test_now_current_date_and_interval_arithmetic_follow_calendar_now(conn, runtime):
    # canon.yml pins calendar.now to 2025-12-31: three months back, truncated to the month = 2025-09-01
    want = oracle(runtime, metrics=["revenue"], where=["metric_time >= '2025-09-01'"])
    assert rows(conn, "SELECT SUM(revenue) FROM sales WHERE metric_time >= "
                      "DATE_TRUNC('month', NOW() + INTERVAL '-3 month')") == want
    want = oracle(runtime, metrics=["revenue"], where=["metric_time >= '2025-12-24'"])
    assert rows(conn, "SELECT SUM(revenue) FROM sales WHERE metric_time >= CURRENT_DATE - 7") == want


# --- post-aggregation SQL ----------------------------------------------------------------------------------

def test_arithmetic_case_round_coalesce_over_metrics(conn, runtime):
    base = oracle(runtime, metrics=["revenue", "order_count"], dimensions=["product.category"],
                  order=["product.category"])
    got = rows(conn, "SELECT product_category, ROUND(SUM(revenue) / 1000, 1) AS k, "
                     "CASE WHEN SUM(revenue) > 100000 THEN 'big' ELSE 'small' END AS size, "
                     "COALESCE(MEASURE(order_count), 0) * 2 AS twice FROM sales GROUP BY 1 ORDER BY 1")
    want = [(c, round(round(r / 1000, 1), 4), "big" if r > 100000 else "small", n * 2) for c, r, n in base]
    assert got == want


def test_extract_and_coarser_grouping_of_an_additive_metric(conn, runtime):
    want = oracle(runtime, metrics=["revenue"], dimensions=["metric_time.year"], order=["metric_time.year"])
    got = rows(conn, "SELECT EXTRACT(YEAR FROM metric_time) AS y, SUM(revenue) FROM sales GROUP BY 1 ORDER BY 1")
    assert [(r[1],) for r in got] == [(r[1],) for r in want]
    assert [int(r[0]) for r in got] == [int(r[0][:4]) for r in want]
    with pytest.raises(psycopg.Error) as info:  # a ratio cannot be summed over days
        conn.execute("SELECT EXTRACT(YEAR FROM metric_time), MEASURE(aov) FROM sales GROUP BY 1")
    assert info.value.sqlstate == "42803"


def test_count_distinct_dimension(conn, runtime):
    cats = oracle(runtime, metrics=["revenue"], dimensions=["customer.segment", "product.category"])
    want = {}
    for segment, _category, _ in cats:
        want[segment] = want.get(segment, 0) + 1
    got = rows(conn, "SELECT customer_segment, COUNT(DISTINCT product_category) FROM sales GROUP BY 1 ORDER BY 1")
    assert got == sorted((k, float(v)) for k, v in want.items())


def test_power_bi_qualified_outer_columns_and_not_null(conn, runtime):
    want = oracle(runtime, metrics=["revenue"], dimensions=["product.category"], order=["product.category"])
    got = rows(conn, 'select "_"."product_category", "_"."a0" from (select "rows"."product_category" as '
                     '"product_category", sum("rows"."revenue") as "a0" from (select "product_category", "revenue" '
                     'from "public"."sales" "$Table") "rows" group by "product_category") "_" '
                     'where not "_"."a0" is null order by "_"."product_category" limit 1000001')
    assert got == want


def test_refusals_name_the_supported_form(conn):
    for sql, state in [("SELECT product_category, random() FROM sales GROUP BY 1", "42883"),
                       ("SELECT * FROM (SELECT product_category FROM sales) t JOIN sales s ON true", "0A000")]:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
        assert info.value.sqlstate == state and info.value.diag.message_hint
        assert conn.execute("SELECT 1").fetchone() == (1,)


# --- parameters ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["2025-01-01", "2025-01-01 +00", "2025-01-01 00:00:00+00",
                                  "2025-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000+00:00"])
def test_date_and_timestamp_parameters_in_every_driver_form(conn, runtime, text):
    want = oracle(runtime, metrics=["revenue"], where=["metric_time >= '2025-01-01'"])
    for cast in ("date", "timestamp", "timestamptz"):
        got = rows(conn, f"SELECT SUM(revenue) FROM sales WHERE metric_time >= %s::{cast}", [text])
        assert got == want, (text, cast)


def test_in_list_without_spaces_and_array_parameters(conn, runtime):
    want = oracle(runtime, metrics=["revenue"], dimensions=["order.sales_channel"],
                  where=["order.sales_channel IN ('web', 'store')"], order=["order.sales_channel"])
    cur = conn.cursor()
    # psycopg writes $1, $2 itself; a raw extended-protocol Prepare with $1,$2 goes through the same parser
    got = cur.execute("SELECT order_sales_channel, SUM(revenue) FROM sales WHERE order_sales_channel "
                      "IN (%s,%s) GROUP BY 1 ORDER BY 1", ["web", "store"]).fetchall()
    assert [tuple(_n(v) for v in r) for r in got] == want
    got = rows(conn, "SELECT order_sales_channel, SUM(revenue) FROM sales WHERE order_sales_channel = ANY(%s) "
                     "GROUP BY 1 ORDER BY 1", [["web", "store"]])
    assert got == want


def test_session_user_and_integer_division(conn):
    assert conn.execute("SELECT session_user, current_user").fetchone() == (USER, USER)
    assert conn.execute("SELECT 7 / 2").fetchone()[0] == 3


# --- extended protocol: an error is flushed at once ----------------------------------------------------------

def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def test_parse_error_is_flushed_at_once_and_in_list_without_spaces_parses(port):
    from tests.test_pgwire_clients import _authenticated_socket, _reader

    sock = _authenticated_socket(port)
    sock.settimeout(5)  # a server that holds the error until Sync makes this read time out
    read = _reader(sock)
    try:
        sock.sendall(_message(b"P", b"\x00SELECT nope FROM sales WHERE product_category = $1\x00\x00\x00")
                     + _message(b"D", b"S\x00") + _message(b"H", b""))
        assert read()[0] == b"1"  # ParseComplete; the Describe fails (the column is unknown)
        kind, body = read()
        assert kind == b"E" and b"42703" in body
        sock.sendall(_message(b"S", b""))
        assert read()[0] == b"Z"
        text = b"SELECT product_category FROM sales WHERE order_sales_channel IN ($1,$2) GROUP BY 1"
        sock.sendall(_message(b"P", b"\x00" + text + b"\x00\x00\x00") + _message(b"D", b"S\x00")
                     + _message(b"H", b""))
        assert [read()[0] for _ in range(3)] == [b"1", b"t", b"T"]
        sock.sendall(_message(b"S", b""))
        assert read()[0] == b"Z"
    finally:
        sock.close()


# --- pgJDBC DatabaseMetaData (Metabase, DBeaver) and date/timestamp/array parameters ------------------------

@pytest.mark.java
def test_jdbc_database_metadata_and_parameters(port, runtime):
    import shutil
    import subprocess
    from pathlib import Path

    jar = Path("/usr/share/java/postgresql.jar")
    assert shutil.which("java") and jar.is_file(), "CI installs default-jdk-headless and libpostgresql-jdbc-java"
    done = subprocess.run(["java", "-cp", str(jar), "JdbcMetadata.java", str(port), USER, PASSWORD],
                          cwd=Path(__file__).parent / "pgwire_clients", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert not [l for l in done.stdout.splitlines() if l.startswith("fail")], done.stdout
    assert lines["tables"] == "3" and int(lines["columns"]) > 10 and int(lines["type_info"]) > 10  # sales, marketing, customer_category_spend
    assert lines["primary_keys"] == lines["imported_keys"] == lines["index_info"] == "0"  # views have no keys
    since = oracle(runtime, metrics=["revenue"], where=["metric_time >= '2025-01-01'"])[0][0]
    assert round(float(lines["date"]), 4) == round(float(lines["timestamp"]), 4) == since
    channels = oracle(runtime, metrics=["revenue"], where=["order.sales_channel IN ('web', 'store')"])[0][0]
    assert round(float(lines["array"]), 4) == channels


# --- node-postgres and postgres.js ---------------------------------------------------------------------------

NODE_DIR = __import__("pathlib").Path(__file__).parent / "pgwire_clients" / "node"


@pytest.mark.node
def test_node_postgres_and_postgres_js(port, runtime):
    import json
    import shutil
    import subprocess

    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed (.ci/run's machine has them)"
    if not (NODE_DIR / "node_modules" / "pg").is_dir() or not (NODE_DIR / "node_modules" / "postgres").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                       check=True, capture_output=True, timeout=600)
    done = subprocess.run(["node", "check.js", str(port), USER, PASSWORD], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    def same(got, want):
        return [[_n(v) for v in row] for row in got] == [list(row) for row in want]

    web = oracle(runtime, metrics=["revenue"], dimensions=["order.sales_channel"],
                 where=["order.sales_channel = 'web'"])
    both = oracle(runtime, metrics=["revenue"], where=["order.sales_channel IN ('web', 'store')"])
    store = oracle(runtime, metrics=["revenue"], where=["order.sales_channel = 'store'"])
    since = oracle(runtime, metrics=["revenue"], where=["metric_time >= '2025-01-01'"])
    big = oracle(runtime, metrics=["revenue"], dimensions=["product.category"], having=["revenue > 1000"],
                 order=["product.category"])
    for prefix in ("pg", "js"):
        assert same(out[f"{prefix}_text"], web) and same(out[f"{prefix}_in"], both)
        assert same(out[f"{prefix}_date"], since) and same(out[f"{prefix}_number"], big)
        assert out[f"{prefix}_error"] == "42703" and same(out[f"{prefix}_after"], store)
    assert same(out["pg_any"], both) and len(out["pg_limit"]) == 2


# --- pieces, without a server -------------------------------------------------------------------------------

def test_date_folding_follows_postgresql():
    import sqlglot

    from canon.server.pgwire.datefold import fold_dates

    now = datetime(2025, 3, 31, 15, 30)

    def fold(sql):
        return fold_dates(sqlglot.parse_one(sql, read="postgres"), now).sql("duckdb")

    assert fold("SELECT NOW() + INTERVAL '-1 month'") == "SELECT CAST('2025-02-28 15:30:00' AS TIMESTAMP)"
    assert fold("SELECT DATE_TRUNC('quarter', CURRENT_DATE)") == "SELECT CAST('2025-01-01 00:00:00' AS TIMESTAMP)"
    assert fold("SELECT CURRENT_DATE - 7, DATE '2024-02-29' + INTERVAL '1 year'") == \
        "SELECT CAST('2025-03-24' AS DATE), CAST('2025-02-28 00:00:00' AS TIMESTAMP)"
    assert fold("SELECT DATE_TRUNC('week', TIMESTAMP '2025-03-30 10:00')") == \
        "SELECT CAST('2025-03-24 00:00:00' AS TIMESTAMP)"
    assert fold("SELECT a + INTERVAL '1 day'") == "SELECT a + INTERVAL '1' DAY"  # over a column: left alone


def test_array_and_timestamp_text_forms():
    from canon.server.pgwire import types as t

    assert t.parse_array_text('{a,"b c",NULL,"x\\"y","NULL"}') == ["a", "b c", None, 'x"y', "NULL"]
    assert t.decode_param(b"2025-01-01 05:00:00-05", 0, t.TIMESTAMPTZ) == datetime(2025, 1, 1, 10)
    assert t.decode_param(b"2025-01-01 05:00:00-05", 0, t.TIMESTAMP) == datetime(2025, 1, 1, 5)
    with pytest.raises(t.ParameterError):
        t.decode_param(b"2025-13-01", 0, t.DATE)


def test_catalog_functions_over_the_wire(conn, port):
    got = conn.execute("SELECT pg_size_pretty(10240::bigint), pg_size_pretty(1073741824::bigint), "
                       "format('%s|%I|%L|%%', NULL, 'A', NULL), quote_ident('a\"b')").fetchone()
    assert got == ("10 kB", "1024 MB", "|\"A\"|NULL|%", '"a""b"')
    assert conn.execute("SELECT inet_server_port()").fetchone() == (port,)


def test_binary_results_and_typed_array_parameter_with_asyncpg(port, runtime):
    import asyncio

    import asyncpg

    async def go():
        c = await asyncpg.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, database="canon")
        try:
            grouped = await c.fetch("SELECT DATE_TRUNC('month', metric_time) AS m, ROUND(SUM(revenue) / 1000, 1) AS k, "
                                    "COUNT(*) AS n FROM sales WHERE metric_time >= $1 GROUP BY 1 ORDER BY 1",
                                    date(2025, 11, 1))
            channels = await c.fetchval("SELECT SUM(revenue) FROM sales WHERE order_sales_channel = ANY($1::text[])",
                                        ["web", "store"])
            return grouped, channels
        finally:
            await c.close()

    grouped, channels = asyncio.run(go())
    want = oracle(runtime, metrics=["revenue", "order_count"], dimensions=["metric_time.month"],
                  where=["metric_time >= '2025-11-01'"], order=["metric_time.month"])
    assert [(r["m"].isoformat()[:10], round(float(r["k"]), 4), float(r["n"])) for r in grouped] == \
        [(m, round(round(rev / 1000, 1), 4), n) for m, rev, n in want]
    assert isinstance(grouped[0]["n"], int)  # COUNT(*) is a bigint
    assert _n(channels) == oracle(runtime, metrics=["revenue"], where=["order.sales_channel IN ('web', 'store')"])[0][0]


def test_sql_over_the_result_is_checked_and_bounded():
    import sqlglot

    from canon.server.pgwire.errors import PgError
    from canon.server.pgwire.post_aggregation import Engine, PostQuery
    from canon.server.pgwire.semantic import translate
    from canon.server.pgwire.views import view_tables
    from tests.support.servers import ROOT

    catalog = load_catalog(ROOT)
    views = view_tables(catalog)

    def plan(sql):
        return translate(sqlglot.parse_one(sql, read="postgres"), catalog, views)

    query = plan("SELECT product_category, SUM(revenue) * 2 AS twice FROM sales GROUP BY 1 ORDER BY 1")
    assert isinstance(query, PostQuery) and query.levels[0].request.dimensions == ("product.category",)
    rows = [("A", 1.5, 3), ("B", 2.0, 4), ("C", None, 5)]  # the level's rows: category, revenue (by its columns)
    level = query.levels[0]
    rows = [tuple({"product.category": r[0], "revenue": r[1]}[key] for _, key, _ in level.columns) for r in rows]
    engine = Engine(max_rows=2)
    columns, out = engine.run(query, [rows])
    assert [c[0] for c in columns] == ["product_category", "twice"] and out == [("A", 3.0), ("B", 4.0)]
    assert engine.truncated
    for sql, state in [("SELECT * FROM (SELECT product_category FROM sales GROUP BY 1) t, "
                        "(SELECT relname FROM pg_class) u", "42P01"),
                       ("SELECT product_category, SUM(revenue) * 2 FROM sales GROUP BY 1 "
                        "HAVING SUM(revenue) > (SELECT 1 FROM read_csv('/etc/passwd'))", "0A000"),
                       ("SELECT product_category, pg_sleep(1) FROM sales GROUP BY 1", "42883")]:
        with pytest.raises(PgError) as info:
            plan(sql)
        assert info.value.sqlstate == state, (sql, info.value.message)
