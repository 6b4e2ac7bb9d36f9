"""Real PostgreSQL clients against a real `canon pg` (a subprocess on a free port, demo warehouse).

Every answer is compared with the runtime's answer (tests.support.oracle.canon_result) to the same metric request. The clients here
are the ones CI installs (see docs/pgwire.md); a missing client fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from canon.compiler.compile import load_catalog
from canon.compiler.request import QueryRequest
from tests.support.oracle import canon_result
from canon.server.warehouses.duckdb import DuckDBWarehouse
from tests.support.servers import ROOT, build_warehouse, start_pg

USER, PASSWORD = "analyst", "s3cret-pw"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("pgwire") / "demo.duckdb", scale=0.2)


@pytest.fixture(scope="module")
def server(demo):
    server = start_pg(ROOT, demo, user=USER, password=PASSWORD)
    yield server.port
    assert server.stop(timeout=10) is not None


@pytest.fixture(scope="module")
def reference(demo):
    catalog = load_catalog(ROOT)
    warehouse = DuckDBWarehouse(str(demo))

    def run(**kwargs):
        result = canon_result(catalog, warehouse, QueryRequest(**kwargs))
        return norm(result.rows)

    yield run
    warehouse.close()


def norm(rows):
    out = []
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, (Decimal, float)) and not isinstance(value, bool):
                value = round(float(value), 6)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, date):
                value = value.isoformat()
            cells.append(value)
        out.append(tuple(cells))
    return out


def dsn(port, database="analytics"):
    return f"host=127.0.0.1 port={port} user={USER} password={PASSWORD} dbname={database}"


TOP_CATEGORIES = ("SELECT product_category, MEASURE(revenue) FROM sales WHERE order_sales_channel IN ('web', 'app') "
                  "GROUP BY 1 ORDER BY 2 DESC LIMIT 5")
TOP_REQUEST = dict(metrics=["revenue"], dimensions=["product.category"],
                   where=["order.sales_channel IN ('web', 'app')"], order=["-revenue"], limit=5)


# --- psql ---------------------------------------------------------------------------------------------


def _psql(port, *commands):
    assert shutil.which("psql"), "psql is missing: CI installs Debian's postgresql-client"
    args = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "canon"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, env={**os.environ, "PGPASSWORD": PASSWORD}, capture_output=True, text=True, timeout=60)


@pytest.mark.postgres  # psql: Debian's postgresql-client
def test_psql_lists_views_and_describes_sales(server):
    done = _psql(server, r"\dt", r"\d sales")
    assert done.returncode == 0, done.stderr
    listed = {tuple(c.strip() for c in line.split("|"))[:3] for line in done.stdout.splitlines() if line.count("|") >= 3}
    assert {("public", "sales", "table"), ("public", "marketing", "table"),
            ("public", "customer_category_spend", "table")} <= listed, done.stdout
    assert 'Table "public.sales"' in done.stdout
    assert "product_category" in done.stdout and "numeric" in done.stdout and "metric_time" in done.stdout


@pytest.mark.postgres  # psql: Debian's postgresql-client
def test_psql_query_matches_service(server, reference):
    done = _psql(server, r"\pset format unaligned", r"\pset tuples_only on", TOP_CATEGORIES)
    assert done.returncode == 0, done.stderr
    lines = [line.split("|") for line in done.stdout.splitlines() if "|" in line]
    got = [(name, round(float(value), 6)) for name, value in lines]
    assert got == reference(**TOP_REQUEST)


@pytest.mark.postgres  # psql: Debian's postgresql-client
def test_psql_error_names_valid_columns(server):
    done = _psql(server, "SELECT nope FROM sales")
    assert done.returncode != 0
    assert 'column "nope" does not exist' in done.stderr and "product_category" in done.stderr


@pytest.mark.postgres  # psql: Debian's postgresql-client
def test_psql_bad_password_is_rejected(server):
    done = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(server), "-U", USER, "-d", "x", "-c", "select 1"],
                          env={**os.environ, "PGPASSWORD": "wrong"}, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "password authentication failed" in done.stderr


# --- psycopg 3 ----------------------------------------------------------------------------------------


def test_psycopg_simple_and_parameterised(server, reference):
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        rows = conn.execute(TOP_CATEGORIES).fetchall()
        assert norm(rows) == reference(**TOP_REQUEST)
        rows = conn.execute("SELECT customer_segment, SUM(revenue) AS revenue, order_count FROM sales "
                            "WHERE product_category = %s AND metric_time >= %s GROUP BY customer_segment ORDER BY 1",
                            ("Phones", date(2024, 3, 1))).fetchall()
        assert norm(rows) == reference(metrics=["revenue", "order_count"], dimensions=["customer.segment"],
                                       where=["product.category = 'Phones'", "metric_time >= DATE '2024-03-01'"],
                                       order=["customer.segment"])
        # binary results, a time grain, a date literal and BETWEEN
        cur = conn.cursor(binary=True)
        rows = cur.execute("SELECT DATE_TRUNC('month', metric_time) AS month, revenue FROM sales "
                           "WHERE metric_time BETWEEN DATE '2024-01-01' AND DATE '2024-06-30' GROUP BY 1 ORDER BY 1").fetchall()
        assert [d.type_code for d in cur.description] == [1082, 1700]
        assert norm(rows) == reference(metrics=["revenue"], dimensions=["metric_time.month"],
                                       where=["metric_time BETWEEN DATE '2024-01-01' AND DATE '2024-06-30'"],
                                       order=["metric_time.month"])


def test_psycopg_types_and_column_discovery(server):
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        cur = conn.execute("SELECT * FROM sales LIMIT 0")
        types = {d.name: d.type_code for d in cur.description}
        assert cur.fetchall() == []
        assert types["product_category"] == 25 and types["revenue"] == 1700 and types["metric_time"] == 1082
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL")
        assert conn.execute("SELECT current_schema(), current_database()").fetchone() == ("public", "analytics")
        assert conn.execute("SHOW server_version").fetchone()[0]
        conn.execute("SET application_name = 'tests'")
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                              "ORDER BY 1").fetchall()
        assert tables == [("customer_category_spend",), ("marketing",), ("sales",)]
        oid = conn.execute("SELECT 'sales'::regclass::oid").fetchone()[0]
        names = conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                             "WHERE attrelid = %s AND attnum > 0 ORDER BY attnum", (oid,)).fetchall()
        assert names[0] == ("product_category", "text") and ("revenue", "numeric") in names


def test_psycopg_wrappers_having_distinct(server, reference):
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        wrapped = conn.execute("SELECT * FROM (SELECT product_category, MEASURE(revenue) AS revenue FROM sales "
                               "GROUP BY 1) AS t ORDER BY revenue DESC LIMIT 3").fetchall()
        assert norm(wrapped) == reference(metrics=["revenue"], dimensions=["product.category"], order=["-revenue"], limit=3)
        cte = conn.execute("WITH q AS (SELECT customer_segment, revenue FROM sales) "
                           "SELECT customer_segment, SUM(revenue) FROM q GROUP BY 1 ORDER BY 1").fetchall()
        assert norm(cte) == reference(metrics=["revenue"], dimensions=["customer.segment"], order=["customer.segment"])
        having = conn.execute("SELECT product_category, MEASURE(revenue) FROM sales GROUP BY 1 "
                              "HAVING MEASURE(revenue) > 100000 ORDER BY 2 DESC").fetchall()
        full = reference(metrics=["revenue"], dimensions=["product.category"], order=["-revenue"])
        assert norm(having) == [row for row in full if row[1] > 100000] and having
        values = conn.execute("SELECT DISTINCT customer_segment FROM sales ORDER BY 1").fetchall()
        assert values == [("consumer",), ("enterprise",), ("small_business",)]
        like = conn.execute("SELECT product_category, order_count FROM sales WHERE product_category LIKE 'Coffee%' "
                            "AND customer_country_code IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 5 OFFSET 1").fetchall()
        assert norm(like) == reference(metrics=["order_count"], dimensions=["product.category"],
                                       where=["product.category LIKE 'Coffee%'", "customer.country_code IS NOT NULL"],
                                       order=["product.category"], limit=5, offset=1)


def test_psycopg_server_side_cursor(server, reference):
    import psycopg

    with psycopg.connect(dsn(server)) as conn:
        with conn.cursor(name="by_country") as cur:
            cur.execute("SELECT customer_country_code, revenue FROM sales GROUP BY 1 ORDER BY 1")
            first = cur.fetchmany(3)
            rest = cur.fetchall()
        assert norm(first + rest) == reference(metrics=["revenue"], dimensions=["customer.country_code"],
                                               order=["customer.country_code"])


def test_psycopg_errors_keep_the_connection_usable(server):
    import psycopg
    from psycopg import errors

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(errors.UndefinedColumn) as info:
            conn.execute("SELECT revenu FROM sales")
        assert "revenue" in (info.value.diag.message_hint or "")
        with pytest.raises(errors.UndefinedTable):
            conn.execute("SELECT * FROM nope")
        with pytest.raises(errors.SyntaxError):
            conn.execute("SELEC 1")
        with pytest.raises(errors.FeatureNotSupported) as info:
            conn.execute("SELECT SUM(aov) FROM sales")
        assert "MEASURE(aov)" in (info.value.diag.message_hint or "")
        with pytest.raises(errors.FeatureNotSupported):
            conn.execute("SELECT product_category FROM sales JOIN marketing ON true")
        with pytest.raises(psycopg.Error) as info:
            conn.execute("DELETE FROM sales")
        assert info.value.sqlstate == "25006"
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(dsn(server)) as conn:  # in a transaction: failed until ROLLBACK
        with pytest.raises(errors.UndefinedColumn):
            conn.execute("SELECT nope FROM sales")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT MEASURE(order_count) FROM sales").fetchone()[0] > 0


def test_bad_password_sqlstate(server):
    import psycopg

    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(f"host=127.0.0.1 port={server} user={USER} password=nope dbname=x")
    assert "password authentication failed" in str(info.value)


# --- psycopg2, asyncpg, pg8000, SQLAlchemy --------------------------------------------------------------


def test_psycopg2(server, reference):
    import psycopg2

    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor()
        cur.execute("SELECT customer_segment, revenue FROM sales WHERE customer_segment = %s GROUP BY 1", ("enterprise",))
        assert norm(cur.fetchall()) == reference(metrics=["revenue"], dimensions=["customer.segment"],
                                                 where=["customer.segment = 'enterprise'"])
        named = conn.cursor("named")
        named.execute("SELECT customer_segment, order_count FROM sales GROUP BY 1 ORDER BY 1")
        assert norm(named.fetchall()) == reference(metrics=["order_count"], dimensions=["customer.segment"],
                                                   order=["customer.segment"])
    finally:
        conn.close()


def test_asyncpg_prepared_statements(server, reference):
    import asyncpg

    async def go():
        conn = await asyncpg.connect(host="127.0.0.1", port=server, user=USER, password=PASSWORD, database="x")
        try:
            statement = await conn.prepare(
                "SELECT customer_segment, revenue, metric_time FROM sales WHERE customer_segment = $1 "
                "AND metric_time >= $2 GROUP BY 1, 3 ORDER BY 3 LIMIT $3")
            first = await statement.fetch("enterprise", date(2024, 2, 1), 5)
            second = await statement.fetch("consumer", date(2024, 3, 1), 2)
            top = await conn.fetch(TOP_CATEGORIES)
            return [tuple(r) for r in first], [tuple(r) for r in second], [tuple(r) for r in top]
        finally:
            await conn.close()

    first, second, top = asyncio.run(go())
    assert [(a, c, b) for a, b, c in norm(first)] == reference(metrics=["revenue"], dimensions=["customer.segment", "metric_time"],
                                    where=["customer.segment = 'enterprise'", "metric_time >= DATE '2024-02-01'"],
                                    order=["metric_time"], limit=5)
    assert len(second) == 2 and norm(top) == reference(**TOP_REQUEST)


def test_pg8000(server, reference):
    import pg8000.native

    conn = pg8000.native.Connection(USER, host="127.0.0.1", port=server, password=PASSWORD, database="x")
    try:
        rows = conn.run("SELECT customer_segment, revenue FROM sales WHERE customer_segment = :s GROUP BY 1", s="enterprise")
    finally:
        conn.close()
    assert norm(rows) == reference(metrics=["revenue"], dimensions=["customer.segment"],
                                   where=["customer.segment = 'enterprise'"])


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sqlalchemy(server, reference, driver):
    import sqlalchemy as sa

    engine = sa.create_engine(f"postgresql+{driver}://{USER}:{PASSWORD}@127.0.0.1:{server}/canon")
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert sorted(inspector.get_table_names()) == ["customer_category_spend", "marketing", "sales"]
            columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("sales")}
            assert columns["product_category"] == "TEXT" and columns["revenue"] == "NUMERIC"
            sales = sa.Table("sales", sa.MetaData(), autoload_with=conn)
            query = (sa.select(sales.c.customer_segment, sa.func.sum(sales.c.revenue).label("revenue"))
                     .where(sales.c.product_category.in_(["Phones", "Laptops"]))
                     .group_by(sales.c.customer_segment).order_by(sa.desc("revenue")))
            rows = conn.execute(query).fetchall()
    finally:
        engine.dispose()
    assert norm(rows) == reference(metrics=["revenue"], dimensions=["customer.segment"],
                                   where=["product.category IN ('Phones', 'Laptops')"], order=["-revenue"])


# --- robustness -----------------------------------------------------------------------------------------


def _startup(port) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


# slow: payloads the server waits on (it needs more bytes) take the test's 2 s read timeout
@pytest.mark.parametrize("payload", [
    pytest.param(b"", marks=pytest.mark.slow),  # connect and leave
    b"\x00\x00\x00\x08\x04\xd2\x16\x2f",  # SSLRequest, then nothing
    b"\x00\x00\x00\x03",  # length below the minimum
    b"\x7f\xff\xff\xff" + b"x" * 64,  # oversized startup packet
    pytest.param(b"\x00\x00\x00\x10\x00\x03\x00\x00user\x00", marks=pytest.mark.slow),  # truncated parameters
    b"\x00\x00\x00\x08\x00\x09\x00\x00",  # unknown protocol version
    pytest.param(os.urandom(512), id="noise"),  # fresh noise every run, under an id pytest-xdist can match
    b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02",  # CancelRequest for nobody
])
def test_fuzz_startup_does_not_bring_the_server_down(server, payload):
    sock = _startup(server)
    try:
        sock.sendall(payload)
        sock.settimeout(2)
        try:
            sock.recv(1024)
        except OSError:
            pass
    finally:
        sock.close()
    _assert_alive(server)


def _authenticated_socket(port) -> socket.socket:
    """A connection past authentication, using psycopg's libpq would hide the bytes: do SCRAM by hand."""
    import base64
    import hashlib
    import hmac

    sock = _startup(port)
    params = b"user\x00" + USER.encode() + b"\x00database\x00x\x00\x00"
    sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    read = _reader(sock)
    kind, body = read()
    assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 10
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"
    first = ("n,," + first_bare).encode()
    msg = b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first
    sock.sendall(b"p" + struct.pack("!i", len(msg) + 4) + msg)
    kind, body = read()
    server_first = body[4:].decode()
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    final = f"{without_proof},p={proof}".encode()
    sock.sendall(b"p" + struct.pack("!i", len(final) + 4) + final)
    while True:
        kind, body = read()
        if kind == b"Z":
            return sock
        assert kind != b"E", body


def _reader(sock):
    buffer = bytearray()

    def read():
        while len(buffer) < 5 or len(buffer) < 1 + struct.unpack("!i", bytes(buffer[1:5]))[0]:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buffer.extend(chunk)
        length = struct.unpack("!i", bytes(buffer[1:5]))[0]
        kind, body = bytes(buffer[:1]), bytes(buffer[5:1 + length])
        del buffer[:1 + length]
        return kind, body

    return read


# slow: a payload the server waits on (it needs more bytes) takes the test's 2 s read timeout
@pytest.mark.parametrize("payload", [
    b"Q\x7f\xff\xff\xff",  # oversized message
    b"Q\x00\x00\x00\x02",  # length below 4
    b"P\x00\x00\x00\x06ab",  # Parse without terminators
    b"B\x00\x00\x00\x05\x00",  # Bind for a statement that does not exist
    b"Z\x00\x00\x00\x04",  # a backend-only message type
    pytest.param(b"Q\x00\x00\x00\x0cSELECT", marks=pytest.mark.slow),  # truncated mid-message, then disconnect
    b"Q\x00\x00\x00\x09\xff\xfe\xfd\x00\x00",  # invalid UTF-8
])
def test_fuzz_messages_do_not_bring_the_server_down(server, payload):
    sock = _authenticated_socket(server)
    try:
        sock.sendall(payload)
        sock.settimeout(2)
        try:
            sock.recv(4096)
        except OSError:
            pass
    finally:
        sock.close()
    _assert_alive(server)


def test_protocol_error_then_sync_keeps_the_session(server):
    sock = _authenticated_socket(server)
    read = _reader(sock)
    try:
        # Bind to a missing statement: ErrorResponse, messages skipped until Sync, then ReadyForQuery
        bind = b"\x00nope\x00" + b"\x00\x00\x00\x00\x00\x00"
        sock.sendall(b"B" + struct.pack("!i", 4 + len(bind)) + bind)
        sock.sendall(b"S\x00\x00\x00\x04")
        kinds = []
        while not kinds or kinds[-1] != b"Z":
            kinds.append(read()[0])
        assert kinds == [b"E", b"Z"]
        query = b"SELECT 1\x00"
        sock.sendall(b"Q" + struct.pack("!i", len(query) + 4) + query)
        kinds = []
        while not kinds or kinds[-1] != b"Z":
            kinds.append(read()[0])
        assert kinds == [b"T", b"D", b"C", b"Z"]
    finally:
        sock.close()


def _assert_alive(port):
    import psycopg

    with psycopg.connect(dsn(port), autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT MEASURE(order_count) FROM sales").fetchone()[0] > 0


# --- JDBC and ODBC (Debian: libpostgresql-jdbc-java + default-jdk-headless; odbc-postgresql + unixodbc) ----


JDBC_JAR = Path("/usr/share/java/postgresql.jar")


@pytest.mark.java
def test_jdbc_driver(server, reference):
    assert shutil.which("java") and JDBC_JAR.is_file(), \
        "CI installs Debian's default-jdk-headless and libpostgresql-jdbc-java"
    done = subprocess.run(["java", "-cp", str(JDBC_JAR), "JdbcCheck.java", str(server), USER, PASSWORD],
                          cwd=Path(__file__).parent / "pgwire_clients", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert sorted(l[1] for l in lines if l[0] == "table") == ["customer_category_spend", "marketing", "sales"]
    columns = {l[1]: l[2] for l in lines if l[0] == "column"}
    assert columns["revenue"] == "numeric" and columns["metric_time"] == "date"
    rows = [(l[1], round(float(l[2]), 6)) for l in lines if l[0] == "row"]
    assert rows == reference(metrics=["revenue"], dimensions=["customer.segment"],
                             where=["customer.segment <> 'consumer'"], order=["customer.segment"])
    assert ["error", "42703"] in lines and any(l[0] == "after" and int(l[1]) > 0 for l in lines)


@pytest.mark.odbc
def test_odbc_driver(server, reference):
    import pyodbc

    assert "PostgreSQL Unicode" in pyodbc.drivers(), "CI installs Debian's odbc-postgresql and unixodbc"
    conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={server};DATABASE=canon;"
                          f"UID={USER};PWD={PASSWORD}", timeout=10)
    try:
        cur = conn.cursor()
        assert sorted(r.table_name for r in cur.tables(schema="public", tableType="TABLE")) == ["customer_category_spend", "marketing", "sales"]
        rows = cur.execute("SELECT customer_segment, MEASURE(revenue) FROM sales WHERE customer_segment <> ? "
                           "GROUP BY 1 ORDER BY 1", "consumer").fetchall()
        assert norm([tuple(r) for r in rows]) == reference(metrics=["revenue"], dimensions=["customer.segment"],
                                                           where=["customer.segment <> 'consumer'"],
                                                           order=["customer.segment"])
        with pytest.raises(pyodbc.Error) as info:
            cur.execute("SELECT nope FROM sales")
        assert info.value.args[0] == "42703"
        assert cur.execute("SELECT MEASURE(order_count) FROM sales").fetchone()[0] > 0
    finally:
        conn.close()
