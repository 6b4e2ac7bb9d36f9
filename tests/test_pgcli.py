"""pgcli against Canon's wire server: its own code (pgcli.pgexecute.PGExecute, the object pgcli's REPL
and completion refresher use, and pgspecial's backslash commands) sends its startup and completion
queries, including `COALESCE(proallargtypes::regtype[], proargtypes::regtype[])::text[]` and
`c.relkind = ANY('{r,p,""}')`. Data read through it equals the runtime's answer (POST /v1/query)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from pgcli.completion_refresher import CompletionRefresher
from pgcli.pgexecute import PGExecute
from pgspecial.main import PGSpecial

from canon.compiler.compile import load_catalog
from canon.compiler.request import QueryRequest
from canon.server.pgwire.server import start_pg_server
from canon.server.runtime import Runtime
from canon.server.warehouses.duckdb import DuckDBWarehouse
from tests.support.servers import ROOT, build_warehouse

USER, PASSWORD = "analyst", "s3cret-pw"
VIEWS = {"sales", "marketing"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    warehouse = DuckDBWarehouse(str(build_warehouse(tmp_path_factory.mktemp("pgcli") / "demo.duckdb", scale=0.2)))
    yield Runtime.over(load_catalog(ROOT), warehouse)
    warehouse.close()


@pytest.fixture(scope="module")
def port(runtime):
    handle = start_pg_server(runtime, port=0, user=USER, password=PASSWORD)
    yield handle.port
    handle.stop()


@pytest.fixture()
def pgexecute(port):
    executor = PGExecute(database="canon", user=USER, password=PASSWORD, host="127.0.0.1", port=port, dsn="")
    yield executor
    executor.conn.close()


def test_startup_reads_what_pgcli_shows(pgexecute):
    assert pgexecute.dbname == "canon" and pgexecute.user == USER
    assert pgexecute.server_version and pgexecute.superuser is False
    assert pgexecute.search_path() == ["pg_catalog", "public"]
    assert pgexecute.get_timezone()


def test_completion_metadata_queries(pgexecute):
    assert "public" in pgexecute.schemata()
    assert VIEWS <= {name for schema, name in pgexecute.tables() if schema == "public"}
    columns = {(table, column, kind) for _, table, column, kind, *_ in pgexecute.table_columns()}
    assert {("sales", "metric_time", "date"), ("sales", "product_category", "text")} <= columns
    assert pgexecute.databases() == ["canon"]
    assert list(pgexecute.foreignkeys()) == []
    assert list(pgexecute.views()) == [] and list(pgexecute.view_columns()) == []
    list(pgexecute.datatypes())


def test_function_list_reads_regtype_arrays(pgexecute):
    functions = list(pgexecute.functions())  # the ::regtype[] query; 'trigger'::regtype resolves
    assert functions, "pg_proc rows whose return type is not trigger"
    by_name = {f.func_name: f for f in functions}
    assert by_name["boolin"].return_type == "boolean"


def test_regtype_arrays_are_type_names(port):
    with psycopg.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="canon",
                         autocommit=True) as conn:
        row = conn.execute("SELECT '23 25'::oidvector::regtype[]::text[], "
                           "COALESCE(NULL::regtype[], '{1043,16}'::regtype[])::text[], "
                           "NULL::regtype[] IS NULL, (SELECT prorettype::regtype != 'trigger'::regtype "
                           "FROM pg_proc WHERE proname = 'boolin')").fetchone()
    assert row == (["integer", "text"], ["character varying", "boolean"], True, True)


def test_completion_refresher_fills_the_completer(pgexecute):
    done = []
    refresher = CompletionRefresher()
    refresher._bg_refresh(pgexecute, PGSpecial(), [done.append], None,
                          {"single_connection": True, "generate_casing_file": False, "casing_file": None})
    assert done, "the refresher never called back: a refresh step failed"
    completer = done[0]
    assert VIEWS <= set(completer.dbmetadata["tables"]["public"])
    assert "revenue" in completer.dbmetadata["tables"]["public"]["sales"]


@pytest.mark.parametrize("command, expect", [("\\dt", VIEWS), ("\\d sales", {"metric_time", "revenue"}),
                                             ("\\l", {"canon"}), ("\\dn", {"public"}), ("\\dv", set())])
def test_backslash_commands(pgexecute, command, expect):
    results = list(pgexecute.run(command, pgspecial=PGSpecial()))
    assert len(results) == 1
    title, cursor, headers, status, *_ = results[0]
    cells = {value for row in (cursor or []) for value in row if isinstance(value, str)}
    assert expect <= cells, (command, cells)


def test_a_query_equals_the_runtime(pgexecute, runtime):
    want = runtime.query(QueryRequest(metrics=["revenue"], dimensions=["product.category"],
                                      order=["product.category"])).rows
    (_, cursor, headers, status, *_), = list(pgexecute.run(
        "SELECT product_category, SUM(revenue) FROM sales GROUP BY 1 ORDER BY 1"))
    got = [tuple(row) for row in cursor]
    assert headers[0] == "product_category"
    assert [(c, Decimal(str(v)).quantize(Decimal("0.01"))) for c, v in got] == \
        [(c, Decimal(str(v)).quantize(Decimal("0.01"))) for c, v in want]
