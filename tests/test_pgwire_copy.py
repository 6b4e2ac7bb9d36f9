"""COPY (SELECT …) TO STDOUT over the wire (issue 13): psycopg's copy and psql's \\copy read the same rows
as the query itself, in PostgreSQL's text and CSV formats; every writing form of COPY is refused."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess

import psycopg
import pytest

from canon.server.pgwire.server import start_pg_server
from canon.server.runtime import Runtime
from tests.support.project import ROOT, shared_demo

QUERY = "SELECT product_category, SUM(revenue) AS revenue FROM sales GROUP BY 1 ORDER BY 1"


@pytest.fixture(scope="module")
def port():
    runtime = Runtime.open(ROOT, str(shared_demo()))
    handle = start_pg_server(runtime, "127.0.0.1", 0)
    yield handle.port
    handle.stop()
    runtime.close()


@pytest.fixture
def conn(port):
    with psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="canon", autocommit=True) as connection:
        yield connection


def copied(conn, statement: str) -> str:
    out = io.StringIO()
    with conn.cursor().copy(statement) as copy:
        for data in copy:
            out.write(bytes(data).decode("utf-8"))
    return out.getvalue()


def test_csv_with_header_equals_the_query(conn):
    rows = conn.execute(QUERY).fetchall()
    text = copied(conn, f"COPY ({QUERY}) TO STDOUT WITH (FORMAT csv, HEADER true)")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["product_category", "revenue"]
    assert [(r[0], float(r[1])) for r in parsed[1:]] == [(c, float(v)) for c, v in rows]
    old_syntax = copied(conn, f"COPY ({QUERY}) TO STDOUT CSV HEADER")
    assert old_syntax == text


def test_text_format_nulls_and_escapes(conn):
    text = copied(conn, "COPY (SELECT NULL AS a, 'x' || chr(9) || 'y\\z' AS b, '' AS c) TO STDOUT")
    assert text == "\\N\tx\\ty\\\\z\t\n"
    csv_text = copied(conn, "COPY (SELECT NULL AS a, 'p,q' AS b, '' AS c) TO STDOUT (FORMAT csv)")
    assert csv_text == ',"p,q",""\n'  # NULL unquoted, an empty string quoted
    with conn.cursor().copy("COPY (SELECT product_category, order_count FROM sales ORDER BY 1 LIMIT 3) TO STDOUT") as copy:
        copy.set_types(["text", "int8"])
        rows = list(copy.rows())
    assert rows == conn.execute("SELECT product_category, order_count FROM sales ORDER BY 1 LIMIT 3").fetchall()


def test_a_view_by_name(conn):
    rows = copied(conn, "COPY marketing TO STDOUT").splitlines()
    assert len(rows) == len(conn.execute("SELECT * FROM marketing").fetchall())


@pytest.mark.parametrize("statement, sqlstate", [
    ("COPY sales FROM STDIN", "42501"),
    ("COPY (SELECT 1) TO '/tmp/canon-copy-must-not-exist.csv'", "42501"),
    ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/canon-copy-must-not-exist.csv'", "42501"),
    ("COPY (SELECT 1) TO STDOUT (FORMAT binary)", "0A000"),
    ("COPY (SELECT 1) TO STDOUT (ENCODING 'latin1')", "42601"),
])
def test_writing_forms_are_refused(conn, statement, sqlstate):
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    assert refused.value.sqlstate == sqlstate, refused.value
    assert not os.path.exists("/tmp/canon-copy-must-not-exist.csv")
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_psql_backslash_copy(port, tmp_path):
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is needed (.ci/run installs postgresql-client)")
    target = tmp_path / "revenue.csv"
    done = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "analyst", "-d", "canon", "-X", "-v",
                           "ON_ERROR_STOP=1", "-c", f"\\copy ({QUERY}) to '{target}' csv header"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("COPY ")
    with psycopg.connect(host="127.0.0.1", port=port, user="analyst", dbname="canon") as conn:
        rows = conn.execute(QUERY).fetchall()
    parsed = list(csv.reader(target.open()))
    assert [(r[0], float(r[1])) for r in parsed[1:]] == [(c, float(v)) for c, v in rows]
