"""PostgreSQL as a warehouse, on a real throwaway server (fixtures in tests/support/pg_server.py).

- PostgresWarehouse: results and types, query errors, statement timeout, unreachable servers, threads,
  stale pooled connections, read-only sessions.
- `canon demo --target URL` loads the same rows as the DuckDB demo (counts and full-table checksums),
  with the demo's column types and keys.
- `canon query --warehouse postgresql://...` (and CANON_WAREHOUSE) answers like DuckDB.
- Every metric of the catalog, by at least one dimension, gives the same numbers on both warehouses.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.compiler.errors import CanonError, WarehouseError
from canon.compiler.request import QueryRequest
from canon.server.cli import main as canon
from canon.server.demo import TABLES
from canon.server.warehouses.postgres import PostgresWarehouse, redact
from tests.support.oracle import canon_result
from canon.server.warehouses import open_warehouse
from canon.server.warehouses.duckdb import DuckDBWarehouse
from tests.support.pg_server import create_database

REPO_ROOT = Path(__file__).resolve().parent.parent
REL_TOL = 1e-9


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pg(pg_demo_url):
    warehouse = open_warehouse(pg_demo_url)
    assert isinstance(warehouse, PostgresWarehouse)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def duck(pg_demo_duckdb):
    warehouse = DuckDBWarehouse(str(pg_demo_duckdb))
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def canon_catalog():
    return load_catalog(REPO_ROOT)


@pytest.fixture(scope="module")
def refused_url():
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://canon:s3cret@127.0.0.1:{port}/canon_demo"


# ------------------------------------------------------------------------------- the warehouse


def test_dialect_and_routing(pg_demo_url, pg):
    assert pg.dialect == "postgres"
    assert pg.url == pg_demo_url
    assert isinstance(open_warehouse(pg_demo_url.replace("postgresql://", "postgres://")), PostgresWarehouse)


def test_execute_returns_names_and_typed_rows(pg):
    names, rows = pg.execute(
        "SELECT product_id, product_name, list_price, CAST('2024-03-01' AS DATE) AS d, "
        "CAST('2024-03-01 10:20:30' AS TIMESTAMP) AS ts, CAST(NULL AS BIGINT) AS nothing, 0.5::float8 AS f "
        "FROM products ORDER BY product_id LIMIT 2")
    assert names == ["product_id", "product_name", "list_price", "d", "ts", "nothing", "f"]
    assert len(rows) == 2 and all(isinstance(r, tuple) for r in rows)
    first = rows[0]
    assert first[0] == 1001 and isinstance(first[1], str)
    assert isinstance(first[2], Decimal) and first[2].as_tuple().exponent == -2
    assert first[3] == date(2024, 3, 1) and first[4] == datetime(2024, 3, 1, 10, 20, 30)
    assert first[5] is None and first[6] == 0.5


def test_percent_signs_reach_the_server_verbatim(pg):
    # no parameters are bound, so '%' is not a placeholder: LIKE patterns work as written
    _, rows = pg.execute("SELECT count(*) FROM products WHERE product_name LIKE '%Phone%'")
    assert rows[0][0] > 0


def test_query_error_is_a_warehouse_error_with_the_first_line(pg):
    with pytest.raises(WarehouseError) as info:
        pg.execute("SELECT no_such_column FROM products")
    message = str(info.value)
    assert 'column "no_such_column" does not exist' in message
    assert "LINE 1" not in message and "\n" not in message
    assert info.value.http_status == 503
    # the connection that saw the error went back to the pool in a usable state
    assert pg.execute("SELECT 1")[1] == [(1,)]


def test_read_only_sessions_refuse_writes(pg_demo_url):
    with PostgresWarehouse(pg_demo_url, read_only=True) as reader:
        with pytest.raises(WarehouseError, match="read-only"):
            reader.execute("CREATE TABLE canon_should_not_exist (x int)")
        assert reader.execute("SELECT count(*) FROM campaigns")[1] == [(40,)]


def test_writable_by_default_and_utc_sessions(pg_demo_url):
    # the recommendation feedback loader creates its table and inserts through execute()
    with PostgresWarehouse(pg_demo_url) as writer:
        writer.execute("CREATE TABLE IF NOT EXISTS canon_scratch (x int)")
        writer.execute("INSERT INTO canon_scratch VALUES (1)")
        assert writer.execute("SELECT count(*) FROM canon_scratch")[1] == [(1,)]
        writer.execute("DROP TABLE canon_scratch")
        # the throwaway server runs in Pacific/Auckland: Canon's sessions are UTC anyway
        assert writer.execute("SELECT current_setting('TimeZone')")[1] == [("UTC",)]


def test_statement_timeout(pg_demo_url):
    with PostgresWarehouse(pg_demo_url, statement_timeout_ms=150) as slow:
        with pytest.raises(WarehouseError) as info:
            slow.execute("SELECT pg_sleep(3)")
        assert "query exceeded 150 ms" in str(info.value)
        assert slow.execute("SELECT 1")[1] == [(1,)]  # and the warehouse goes on serving
    with pytest.raises(ValueError):
        PostgresWarehouse(pg_demo_url, statement_timeout_ms=0)


def test_connection_refused_names_host_port_reason_and_hint(refused_url):
    warehouse = open_warehouse(refused_url)  # lazy: opening does not connect
    with pytest.raises(WarehouseError) as info:
        warehouse.execute("SELECT 1")
    message = str(info.value)
    port = refused_url.rsplit(":", 1)[1].split("/")[0]
    assert f"127.0.0.1:{port}" in message
    assert "refused" in message.lower()
    assert info.value.hint and "server is running" in info.value.hint
    assert "s3cret" not in message
    warehouse.close()


def test_unknown_database_and_user_hints(pg_server_url):
    with pytest.raises(WarehouseError, match='database "no_such_db" does not exist') as info:
        PostgresWarehouse(pg_server_url.rsplit("/", 1)[0] + "/no_such_db").ping()
    assert "canon demo --target" in info.value.hint
    with pytest.raises(WarehouseError, match='role "nobody_here" does not exist'):
        PostgresWarehouse(pg_server_url.replace("canon@", "nobody_here@")).ping()


def test_redact_hides_passwords():
    assert redact("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert "hunter2" not in redact("postgresql://db/x?user=bob&password=hunter2")
    assert redact("postgresql://bob@db/x") == "postgresql://bob@db/x"


def test_closed_warehouse_refuses_queries(pg_demo_url):
    warehouse = PostgresWarehouse(pg_demo_url)
    warehouse.execute("SELECT 1")
    warehouse.close()
    with pytest.raises(WarehouseError, match="closed"):
        warehouse.execute("SELECT 1")


def test_thread_safe_under_concurrency(pg_demo_url):
    warehouse = PostgresWarehouse(pg_demo_url, max_idle=4)
    try:
        def work(i: int):
            _, rows = warehouse.execute(f"SELECT {i} AS i, count(*) FROM orders WHERE order_id <= {i + 1}")
            return rows

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(work, range(200)))
        assert results == [[(i, i + 1)] for i in range(200)]
        assert len(warehouse._idle) <= 4
    finally:
        warehouse.close()


def test_stale_pooled_connection_is_replaced(pg_demo_url, pg_server_url):
    warehouse = PostgresWarehouse(pg_demo_url)
    try:
        _, [(pid,)] = warehouse.execute("SELECT pg_backend_pid()")
        with psycopg.connect(pg_server_url, autocommit=True) as admin:  # e.g. a server restart or idle kill
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        _, [(new_pid,)] = warehouse.execute("SELECT pg_backend_pid()")
        assert new_pid != pid
    finally:
        warehouse.close()


# ---------------------------------------------------------------------------------- the loader


def _table_digest(rows) -> tuple[int, str]:
    """Row count and an order-independent digest of a table's rows (values typed as the drivers give them)."""
    lines = sorted(repr(tuple(_canonical(v) for v in row)) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _canonical(value):
    if isinstance(value, Decimal):
        return ("dec", str(value))
    if isinstance(value, datetime):
        return ("ts", value.isoformat())
    if isinstance(value, date):
        return ("date", value.isoformat())
    return value


def _duckdb_tables(path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                          "WHERE table_schema = 'main' ORDER BY table_name").fetchall()]


def _digests_duckdb(path, tables) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: _table_digest(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


def _digests_pg(url, tables) -> dict[str, tuple[int, str]]:
    with psycopg.connect(url) as con:
        return {t: _table_digest(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


def test_cli_demo_target_loads_identical_tables(pg_server_url, pg_demo_duckdb):
    url = create_database(pg_server_url, "canon_cli_demo")
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE canon_cli_demo")
    runner = CliRunner()
    for _ in range(2):  # the first run creates the database, the second replaces the tables of the first
        result = runner.invoke(canon, ["demo", "--project", str(REPO_ROOT), "--target", url,
                                       "--scale", "1", "--seed", "42"])
        assert result.exit_code == 0, result.output
    with duckdb.connect(str(pg_demo_duckdb), read_only=True) as con:
        expected_counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t, _ in TABLES}
    for table, count in expected_counts.items():
        assert f"{table:<12} {count:>12,} rows" in result.output
    tables = _duckdb_tables(pg_demo_duckdb)
    assert set(tables) >= {t for t, _ in TABLES}
    assert _digests_pg(url, tables) == _digests_duckdb(pg_demo_duckdb, tables)


def test_cli_demo_target_rejects_non_postgres_urls():
    result = CliRunner().invoke(canon, ["demo", "--project", str(REPO_ROOT), "--target", "mysql://x/y"])
    assert result.exit_code != 0
    assert "postgresql://" in result.output


def test_cli_demo_target_unreachable(refused_url):
    result = CliRunner().invoke(canon, ["demo", "--project", str(REPO_ROOT), "--target", refused_url,
                                        "--scale", "0.01"])
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL" in result.output and "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_loaded_schema_matches_the_demo(pg_demo_url):
    with psycopg.connect(pg_demo_url) as con:
        columns = {(t, c): (dt, p, s, nullable) for t, c, dt, p, s, nullable in con.execute(
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable "
            "FROM information_schema.columns WHERE table_schema = current_schema()")}
        keys = set(con.execute(
            "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name "
            "AND tc.table_schema = kcu.table_schema "
            "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()").fetchall())
        analyzed = dict(con.execute(
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables").fetchall())
    expected_type = {"BIGINT": "bigint", "INTEGER": "integer", "VARCHAR": "character varying",
                     "DECIMAL(12,2)": "numeric", "TIMESTAMP": "timestamp without time zone", "DATE": "date"}
    for table, cols in TABLES:
        assert analyzed.get(table), f"{table} was not analyzed"
        for name, declaration in cols:
            data_type, precision, scale, nullable = columns[(table, name)]
            assert data_type == expected_type[declaration.split()[0]], (table, name)
            if data_type == "numeric":
                assert (precision, scale) == (12, 2)
            assert (nullable == "NO") == ("NOT NULL" in declaration or "PRIMARY KEY" in declaration), (table, name)
            assert ((table, name) in keys) == ("PRIMARY KEY" in declaration), (table, name)


# ------------------------------------------------------------------------------- the CLI on PG


def _cli_json(args: list[str], env: dict | None = None) -> dict:
    result = CliRunner().invoke(canon, ["query", "--project", str(REPO_ROOT), *args, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_query_on_postgres_matches_duckdb(pg_demo_url, pg_demo_duckdb):
    args = ["--metric", "revenue", "--metric", "order_count", "--by", "product.category",
            "--where", "customer.segment = 'enterprise'", "--order", "-revenue", "--limit", "5"]
    on_pg = _cli_json([*args, "--warehouse", pg_demo_url])
    on_duck = _cli_json([*args, "--warehouse", str(pg_demo_duckdb)])
    assert on_pg["columns"] == on_duck["columns"]
    assert len(on_pg["rows"]) == 5
    _assert_rows_close(on_pg["rows"], on_duck["rows"], ordered=True)
    assert '"' in on_pg["sql"]  # PostgreSQL quoting, not DuckDB's


def test_canon_warehouse_env_points_query_at_postgres(pg_demo_url, pg_demo_duckdb):
    args = ["--metric", "ad_spend", "--by", "campaign.channel"]
    on_pg = _cli_json(args, env={"CANON_WAREHOUSE": pg_demo_url})
    on_duck = _cli_json([*args, "--warehouse", str(pg_demo_duckdb)])
    _assert_rows_close(on_pg["rows"], on_duck["rows"], ordered=False)


def test_cli_query_on_unreachable_postgres_fails_cleanly(refused_url):
    result = CliRunner().invoke(canon, ["query", "--project", str(REPO_ROOT), "--metric", "revenue",
                                        "--warehouse", refused_url])
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------- same KPIs, both sides

AFFINITY_PAIR = ("antecedent.product.category", "consequent.product.category")
CANDIDATE_DIMENSIONS = ("product.category", "campaign.channel", "lead.source", "customer.segment",
                        "order.sales_channel", "customer.country_code")


def _requests_for_every_metric(catalog, reference=None) -> list[QueryRequest]:
    """Per metric: by month where it has a time axis, and by one categorical dimension (with quarters
    where that works); affinity metrics by item pairs. A request "works" when it compiles and, given a
    `reference` warehouse, runs there."""
    from canon.compiler.compile import compile_request

    def compiles(request: QueryRequest) -> bool:
        try:
            compile_request(catalog, request, "postgres")
            if reference is not None:
                canon_result(catalog, reference, request)
        except CanonError:
            return False
        return True

    requests = []
    for name, metric in sorted(catalog.metrics.items()):
        if metric.type == "affinity":
            requests.append(QueryRequest(metrics=(name,), dimensions=AFFINITY_PAIR))
            requests.append(QueryRequest(metrics=(name,), dimensions=("antecedent.product.product_name",
                                                                      "consequent.product.product_name"),
                                         where=("order.sales_channel = 'web'",)))
            continue
        if metric.type == "cohort":  # rows per cohort and period since its start (compiler/cohort.py)
            requests.append(QueryRequest(metrics=(name,), dimensions=("metric_time.quarter", "cohort.periods_since",
                                                                      "customer.segment")))
            continue
        mine = [QueryRequest(metrics=(name,), dimensions=("metric_time.month",))]
        for dimension in CANDIDATE_DIMENSIONS:
            candidates = [QueryRequest(metrics=(name,), dimensions=(dimension, "metric_time.quarter")),
                          QueryRequest(metrics=(name,), dimensions=(dimension,))]
            found = next((r for r in candidates if compiles(r)), None)
            if found:
                mine.append(found)
                break
        mine = [r for r in mine if compiles(r)] or mine[:1]  # none works: keep one, to report it
        requests += mine
    return requests


MIXED_REQUESTS = [
    QueryRequest(metrics=("revenue", "ad_spend", "cac"), dimensions=("metric_time.month", "campaign.channel")),
    QueryRequest(metrics=("revenue", "aov"), dimensions=("metric_time.week",), start="2024-11-01", end="2024-12-31"),
    QueryRequest(metrics=("revenue",), dimensions=("metric_time.day",), timezone="America/New_York",
                 start="2025-01-01", end="2025-01-31"),
    QueryRequest(metrics=("units_sold", "revenue"), dimensions=("product.category", "product.tier"),
                 where=("product.tier IN ('mid', 'premium')",), order=("-revenue",), limit=10),
    QueryRequest(metrics=("lead_count", "meeting_count", "lead_to_meeting_rate"),
                 dimensions=("campaign.channel", "metric_time.year")),
    QueryRequest(metrics=("cross_sell_score", "cross_sell_lift", "cross_sell_support"),
                 dimensions=AFFINITY_PAIR, limit=20,
                 # lift is symmetric (A->B ties B->A): name a tie-break, or the 20 rows differ by engine
                 order=("-cross_sell_lift", *AFFINITY_PAIR)),
    QueryRequest(metrics=("order_count",)),
]


def _compare_on_both(catalog, duck, pg, requests) -> tuple[list[str], list[str]]:
    """Run each request on both warehouses: (differences, requests that prove nothing: neither warehouse
    answers them, or both answer no rows, e.g. an empty feedback table)."""
    failures, unanswerable = [], []
    for request in requests:
        outcomes = []
        for warehouse in (duck, pg):
            try:
                outcomes.append(canon_result(catalog, warehouse, request))
            except CanonError as error:
                outcomes.append(error)
        on_duck, on_pg = outcomes
        if isinstance(on_duck, CanonError) and isinstance(on_pg, CanonError):
            unanswerable.append(f"{request}: {on_duck}")  # not a PostgreSQL difference
            continue
        if isinstance(on_duck, CanonError) or isinstance(on_pg, CanonError):
            failures.append(f"{request}: duckdb -> {on_duck if isinstance(on_duck, CanonError) else 'ok'}; "
                            f"postgres -> {on_pg if isinstance(on_pg, CanonError) else 'ok'}")
            continue
        try:
            assert on_pg.columns == on_duck.columns
            if not on_duck.rows and not on_pg.rows:
                unanswerable.append(f"{request}: no rows on either warehouse")
                continue
            _assert_rows_close(on_pg.rows, on_duck.rows, ordered=bool(request.order))
        except AssertionError as error:
            failures.append(f"{request}: {error}\n  postgres SQL: {on_pg.sql}")
    return failures, unanswerable


def _is_percentile(catalog, request: QueryRequest) -> bool:
    from canon.compiler.compile import compile_request

    sql = compile_request(catalog, request, "postgres").sql.upper()
    return "PERCENTILE_" in sql or "MEDIAN(" in sql


def test_every_metric_gives_the_same_numbers_on_duckdb_and_postgres(canon_catalog, duck, pg):
    requests = _requests_for_every_metric(canon_catalog, duck) + MIXED_REQUESTS
    covered = {m for r in requests for m in r.metrics}
    assert covered == set(canon_catalog.metrics)
    requests = [r for r in requests if not _is_percentile(canon_catalog, r)]  # see the test below
    failures, unanswerable = _compare_on_both(canon_catalog, duck, pg, requests)
    assert not failures, "\n".join(failures)
    if unanswerable:
        warnings.warn("requests that prove nothing (no answer or no rows on both warehouses):\n"
                      + "\n".join(unanswerable))
    assert len(unanswerable) <= len(requests) // 4, "too many requests prove nothing"


def test_percentile_metrics_give_the_same_numbers_on_duckdb_and_postgres(canon_catalog, duck, pg):
    """Medians interpolate (1.505 stays 1.505): the measure is cast to DOUBLE before PERCENTILE_CONT."""
    requests = [r for r in _requests_for_every_metric(canon_catalog) if _is_percentile(canon_catalog, r)]
    assert requests, "the catalog has median_order_value: its requests must be found"
    failures, _ = _compare_on_both(canon_catalog, duck, pg, requests)
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------- helpers


def _key(row):
    return tuple((v is None, str(v) if not isinstance(v, (int, float)) else float(v)) for v in row)


def _assert_rows_close(left, right, *, ordered: bool):
    assert len(left) == len(right), f"{len(left)} rows vs {len(right)}"
    if not ordered:
        left, right = sorted(left, key=_key), sorted(right, key=_key)
    for a_row, b_row in zip(left, right):
        assert len(a_row) == len(b_row)
        for a, b in zip(a_row, b_row):
            if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)) \
                    and not isinstance(a, bool) and not isinstance(b, bool):
                assert math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=1e-12), (a_row, b_row)
            else:
                assert a == b, (a_row, b_row)


def test_no_thread_leak_from_pool(pg_demo_url):
    # compare identities, not counts: a thread of an earlier test (a query's timer) may end meanwhile
    before = set(threading.enumerate())
    with PostgresWarehouse(pg_demo_url) as warehouse:
        warehouse.execute("SELECT 1")
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
