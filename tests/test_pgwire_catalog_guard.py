"""The wire catalog is read-only by construction (issue 11): an allow-list of query shapes, checked node by
node (server/pgwire/catalog_guard.py), over a DuckDB connection that cannot write anyway.

A corpus of hostile statements goes over the real wire (psycopg against `canon pg`): every one is refused
with an ErrorResponse, the connection stays usable, nothing is written, and another session's catalog
answers (the `\\dt` query, psql's own describe queries) are exactly what they were before.
"""

from __future__ import annotations

import shutil
import subprocess

import duckdb
import pytest
import sqlglot

from canon.server.pgwire.catalog_guard import ALLOWED_FUNCTIONS, check_catalog_query
from canon.server.pgwire.errors import PgError
from tests.support.servers import ROOT, build_warehouse, start_pg

USER, PASSWORD = "analyst", "guard-pw"

# statements that write, change settings, reach files or run unparsed: each is refused wherever it appears
PAYLOADS = [
    "DELETE FROM pg_class",
    "DELETE FROM pg_catalog.pg_class WHERE relname = 'sales'",
    "DELETE FROM information_schema.tables",
    "UPDATE pg_attribute SET attname = 'hacked'",
    "UPDATE pg_catalog.pg_class SET relname = 'renamed' WHERE relname = 'sales'",
    "UPDATE pg_description SET description = 'planted'",
    "INSERT INTO pg_roles (oid, rolname, rolsuper) VALUES (1, 'root', true)",
    "INSERT INTO pg_catalog.pg_user (usename, usesuper) VALUES ('root', true)",
    "INSERT INTO pg_description VALUES (16384, 1259, 0, 'planted')",
    "INSERT INTO pg_class (oid, relname) SELECT 1, 'fake'",
    "MERGE INTO pg_class USING pg_class AS s ON false WHEN NOT MATCHED THEN INSERT VALUES (1)",
    "CREATE MACRO evil(x) AS x",
    "CREATE OR REPLACE MACRO pg_table_is_visible(x) AS false",
    "CREATE TABLE pg_evil (a int)",
    "CREATE VIEW pg_evil AS SELECT 1",
    "CREATE TEMP TABLE evil AS SELECT * FROM pg_class",
    "CREATE SCHEMA evil",
    "CREATE SEQUENCE evil",
    "DROP TABLE pg_class",
    "DROP MACRO pg_table_is_visible",
    "ALTER TABLE pg_class RENAME TO gone",
    "ALTER TABLE pg_attribute RENAME COLUMN attname TO x",
    "TRUNCATE pg_class",
    "COMMENT ON TABLE pg_class IS 'planted'",
    "PRAGMA database_list",
    "PRAGMA enable_profiling",
    "PRAGMA threads = 1",
    "CALL pragma_version()",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ATTACH '{tmp}/evil.duckdb' AS evil",
    "DETACH memory",
    "USE evil",
    "COPY pg_class TO '{tmp}/leak.csv'",
    "COPY (SELECT * FROM pg_roles) TO '{tmp}/leak.csv'",
    "COPY pg_class FROM '{tmp}/leak.csv'",
    "EXPORT DATABASE '{tmp}/export'",
    "IMPORT DATABASE '{tmp}/export'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET ALL",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('{tmp}/x.parquet')",
    "SELECT * FROM read_json('{tmp}/x.json')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT getenv('HOME')",
    "SELECT pg_catalog.getenv('HOME')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM pragma_database_list()",
    "SELECT * FROM query('DELETE FROM canon_pg.pg_class')",
    "SELECT * FROM query_table('canon_pg.pg_class')",
    "SELECT * FROM canon_pg.pg_class",
    "SELECT * FROM memory.canon_pg.pg_class",
    "SELECT relname FROM pg_class WHERE relname IN (SELECT * FROM read_csv('/etc/passwd'))",
    "SELECT (SELECT getenv('HOME')) FROM pg_class",
    "SELECT 1 INTO evil",
    "SELECT * FROM pg_class FOR UPDATE",
    "SELECT setseed(0.5)",
    "SELECT nextval('evil')",
    "SELECT current_setting('enable_external_access', true) || getenv('PATH')",
]

# how a payload reaches the catalog: as it is, as the query of a cursor, after a CTE, as a subquery
WRAPPERS = [
    "{}",
    "DECLARE c CURSOR FOR {}",
    "WITH x AS (SELECT 1) {}",
]
EXTRA = [
    "WITH x AS (DELETE FROM pg_class RETURNING *) SELECT * FROM x",
    "WITH x AS (UPDATE pg_attribute SET attname = 'x' RETURNING *) SELECT count(*) FROM x",
    "WITH x AS (INSERT INTO pg_roles (rolname, rolsuper) VALUES ('root', true) RETURNING *) SELECT * FROM x",
    "DECLARE c CURSOR WITH HOLD FOR DELETE FROM pg_class",
    "DECLARE c SCROLL CURSOR FOR UPDATE pg_roles SET rolsuper = true",
    "DECLARE c CURSOR FOR WITH x AS (SELECT 1) DELETE FROM pg_class",
    "EXPLAIN DELETE FROM pg_class",
    "EXPLAIN ANALYZE UPDATE pg_class SET relname = 'x'",
    "EXPLAIN SELECT * FROM read_csv('/etc/passwd')",
    "(DELETE FROM pg_class)",
    "SELECT * FROM (DELETE FROM pg_class RETURNING *) AS t",
    "SELECT 1; DELETE FROM pg_class",
    "SELECT 1 UNION ALL SELECT count(*) FROM read_csv('/etc/passwd')",
    "VALUES ((SELECT getenv('HOME')))",
]
REFUSAL_CLASSES = ("42", "0A", "25", "26", "34")  # privilege/syntax/undefined, unsupported, read-only

DT_QUERY = ("SELECT n.nspname, c.relname, c.relkind, pg_catalog.pg_get_userbyid(c.relowner) "
            "FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r','p','v','m','S','f','') AND n.nspname <> 'pg_catalog' "
            "AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema' "
            "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2")
SNAPSHOT_QUERIES = [
    DT_QUERY,
    "SELECT attrelid, attname, atttypid, attnum FROM pg_catalog.pg_attribute ORDER BY 1, 4",
    "SELECT rolname, rolsuper FROM pg_catalog.pg_roles ORDER BY 1",
    "SELECT usename, usesuper FROM pg_catalog.pg_user ORDER BY 1",
    "SELECT objoid, objsubid, description FROM pg_catalog.pg_description ORDER BY 1, 2",
    "SELECT table_name, column_name FROM information_schema.columns ORDER BY 1, 2",
    "SELECT pg_catalog.pg_table_is_visible(16384), pg_catalog.format_type(23, NULL)",
]


def corpus(tmp) -> list[str]:
    """Every payload in every wrapper; SET and RESET on their own are the session's own settings (as in
    PostgreSQL: see test_top_level_set_of_a_duckdb_setting_stays_in_the_session), so only wrapped."""
    statements = [wrapper.format(payload.format(tmp=tmp)) for payload in PAYLOADS for wrapper in WRAPPERS
                  if wrapper != "{}" or not payload.startswith(("SET ", "RESET "))]
    return statements + EXTRA


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo = build_warehouse(tmp_path_factory.mktemp("guard") / "demo.duckdb", scale=0.05)
    server = start_pg(ROOT, demo, user=USER, password=PASSWORD)
    yield server.port
    server.stop(timeout=10)


def dsn(port):
    return f"host=127.0.0.1 port={port} user={USER} password={PASSWORD} dbname=canon sslmode=disable"


def snapshot(port) -> list:
    import psycopg

    with psycopg.connect(dsn(port), autocommit=True) as conn:
        return [conn.execute(query).fetchall() for query in SNAPSHOT_QUERIES]


def test_hostile_corpus_is_refused_over_the_wire(server, tmp_path):
    import psycopg

    before = snapshot(server)
    statements = corpus(tmp_path)
    assert len(statements) >= 100
    passed, bad_states = [], []
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        for statement in statements:
            try:
                conn.execute(statement)
                passed.append(statement)
            except psycopg.Error as error:
                if error.sqlstate is None or not error.sqlstate.startswith(REFUSAL_CLASSES):
                    bad_states.append((statement, error.sqlstate, str(error)[:200]))
            assert not conn.closed, f"the connection was closed (FATAL) after {statement!r}"
            assert conn.execute("SELECT 1").fetchone() == (1,), statement  # still usable
            conn.execute("CLOSE ALL")
    # a multi-statement query may run its first, harmless SELECT before the refused one
    assert passed == [], passed
    assert bad_states == [], bad_states
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert snapshot(server) == before  # another session sees the catalog exactly as before


def test_the_catalog_path_refuses_with_privilege_or_unsupported_states(server, tmp_path):
    """Through a cursor, each payload reaches the catalog emulation: refused by the guard, naming it."""
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        for payload, name in [("DELETE FROM pg_class", "DELETE"), ("PRAGMA database_list", "PRAGMA"),
                              ("CREATE MACRO m(x) AS x", "CREATE"), ("CHECKPOINT", "CHECKPOINT"),
                              ("CALL pragma_version()", "CALL"), (f"COPY pg_class TO '{tmp_path}/x.csv'", "COPY"),
                              ("SET enable_external_access = true", "SET"), ("LOAD httpfs", "LOAD"),
                              ("INSERT INTO pg_roles (rolname, rolsuper) VALUES ('root', true)", "INSERT")]:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(f"DECLARE c CURSOR FOR {payload}")
            assert info.value.sqlstate in ("42501", "0A000"), (payload, info.value.sqlstate)
            assert name in str(info.value), (payload, str(info.value))
        with pytest.raises(psycopg.Error) as info:
            conn.execute("DECLARE c CURSOR FOR SELECT * FROM read_csv('/etc/passwd')")
        assert info.value.sqlstate in ("0A000", "42883") and "read_csv" in str(info.value)


def test_top_level_set_of_a_duckdb_setting_stays_in_the_session(server):
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("SET enable_external_access = true")  # a session setting, as PostgreSQL keeps any
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT * FROM pg_class WHERE relname IN (SELECT * FROM read_csv('/etc/passwd'))")
        assert info.value.sqlstate in ("0A000", "42883")


@pytest.mark.postgres  # psql: Debian's postgresql-client
def test_psql_describe_answers_the_same_after_the_corpus(server, tmp_path):
    assert shutil.which("psql"), "CI installs Debian's postgresql-client"

    def describe():
        done = subprocess.run(["psql", dsn(server), "-X", "-c", "\\dt", "-c", "\\d sales", "-c", "\\dv"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    before = describe()
    assert "sales" in before and "marketing" in before
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        for statement in corpus(tmp_path):
            try:
                conn.execute(statement)
            except psycopg.Error:
                pass
    assert describe() == before


# --- without a server --------------------------------------------------------------------------------------

TABLES = frozenset({"canon_pg.pg_class", "canon_pg.pg_namespace"})


@pytest.mark.parametrize("sql, state", [
    ("DELETE FROM canon_pg.pg_class", "42501"),
    ("UPDATE canon_pg.pg_class SET relname = 'x'", "42501"),
    ("INSERT INTO canon_pg.pg_class (oid) VALUES (1)", "42501"),
    ("CREATE MACRO m(x) AS x", "42501"),
    ("PRAGMA database_list", "42501"),
    ("WITH x AS (DELETE FROM canon_pg.pg_class RETURNING *) SELECT * FROM x", "42501"),
    ("WITH x AS (SELECT 1) UPDATE canon_pg.pg_class SET relname = 'x'", "42501"),
    ("SELECT 1 INTO t", "42501"),
    ("SELECT * FROM canon_pg.pg_class FOR UPDATE", "42501"),
    ("SELECT getenv('HOME')", "42883"),
    ("SELECT * FROM read_csv('/etc/passwd')", "42883"),
    ("SELECT * FROM canon_pg.secret", "42P01"),
    ("SELECT * FROM other.pg_class", "42P01"),
    ("SELECT * FROM x.canon_pg.pg_class", "42P01"),
])
def test_guard_refuses(sql, state):
    tree = sqlglot.parse_one(sql, read="postgres")  # what a client sends, with its tables already moved
    with pytest.raises(PgError) as info:
        check_catalog_query(tree, tables=TABLES, functions=frozenset())
    assert info.value.sqlstate == state


@pytest.mark.parametrize("sql", [
    "SELECT c.relname FROM canon_pg.pg_class AS c JOIN canon_pg.pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE regexp_matches(c.relname, '^s') AND NOT c.relname IS NULL ORDER BY 1 LIMIT 5",
    "WITH x AS (SELECT oid FROM canon_pg.pg_class) SELECT count(*) FROM x UNION ALL SELECT 1",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT CASE WHEN 1 = 1 THEN coalesce(NULL, 'x') END, CAST(1 AS VARCHAR), [1, 2][1]",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT pg_table_is_visible(oid) FROM canon_pg.pg_class",
])
def test_guard_allows_read_only_shapes(sql):
    check_catalog_query(sqlglot.parse_one(sql, read="duckdb"), tables=TABLES,
                        functions=frozenset({"pg_table_is_visible"}))


def test_allowed_functions_do_no_io():
    assert not {"read_csv", "read_parquet", "glob", "getenv", "query", "query_table"} & ALLOWED_FUNCTIONS


def test_the_metadata_connection_cannot_write_even_past_the_guard(catalog):
    """Defense in depth: statements sent straight to the emulation's DuckDB fail in DuckDB itself."""
    from canon.server.pgwire.pgcatalog import PgCatalog
    from canon.server.pgwire.views import view_tables

    pgcat = PgCatalog(view_tables(catalog))
    cursor = pgcat._db.cursor()
    count = cursor.execute("SELECT count(*) FROM canon_pg.pg_class").fetchone()
    for statement in ["DELETE FROM canon_pg.pg_class", "UPDATE canon_pg.pg_roles SET rolsuper = true",
                      "INSERT INTO canon_pg.pg_roles (rolname, rolsuper) VALUES ('root', true)",
                      "CREATE MACRO canon_pg.evil(x) AS x", "CREATE OR REPLACE MACRO pg_table_is_visible(x) AS false",
                      "DROP TABLE canon_pg.pg_class", "SET enable_external_access = true",
                      "SET lock_configuration = false", "SELECT * FROM read_csv('/etc/passwd')",
                      "ATTACH ':memory:' AS other", "LOAD httpfs"]:
        with pytest.raises(duckdb.Error):
            cursor.execute(statement)
    assert pgcat._db.cursor().execute("SELECT count(*) FROM canon_pg.pg_class").fetchone() == count
    assert pgcat._db.cursor().execute("SELECT pg_table_is_visible(1)").fetchone() == (True,)
