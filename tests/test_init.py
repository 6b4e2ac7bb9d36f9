"""`canon init` on a warehouse unlike the demo, then validate and query it; strict canon.yml.

The warehouse: different names, a DATE and a TIMESTAMP column, no declared keys, no time spine.
`canon init` proposes the project; nothing is edited by hand; `canon validate --warehouse` passes and
the numbers (a sum by month, with and without a time zone, a ratio by a joined dimension, and rolling,
to-date and all-time metrics over the generated time spine) equal
hand-written SQL over the raw tables.
"""

from __future__ import annotations

import ast
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from canon.compiler.request import QueryRequest
from canon.server.cli import main
from canon.server.project import KNOWN_KEYS, load_config, warehouse_url
from canon.server.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]


def _build(path: Path) -> None:
    import duckdb

    rng = random.Random(15)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE outlets (outlet_id INTEGER, outlet_name VARCHAR, region VARCHAR, opened_on DATE)")
        con.executemany("INSERT INTO outlets VALUES (?, ?, ?, ?)",
                        [(1, "Harbour", "coast", date(2019, 3, 1)), (2, "Mill", "inland", date(2020, 7, 15)),
                         (3, "Quay", "coast", date(2021, 1, 1))])
        con.execute("CREATE TABLE tickets (ticket_id INTEGER, outlet_id INTEGER, shopper_id INTEGER, sold_on DATE, "
                    "rung_up_at TIMESTAMP, net_amount DECIMAL(10, 2), units INTEGER, is_return BOOLEAN, "
                    "channel VARCHAR)")
        rows = []
        for i in range(1, 241):
            day = date(2023, 11, 25) + timedelta(days=rng.randrange(0, 100))
            if i % 10 == 0:
                day = date(2024, 1, 1)  # first days of months, the ones a time zone would move
            at = datetime(day.year, day.month, day.day, rng.choice([1, 3, 4, 12, 23]), rng.randrange(60))
            rows.append((i, rng.randint(1, 3), rng.randint(1, 40), day, at, round(rng.uniform(2, 90), 2),
                         rng.randint(1, 5), rng.random() < 0.1, rng.choice(["web", "store", "phone"])))
        con.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("till") / "till.duckdb"
    _build(path)
    return path


def _init(*args: str):
    return CliRunner().invoke(main, ["init", *args])


@pytest.fixture(scope="module")
def project(warehouse, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("till_project")
    result = _init(str(root), "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output + result.stderr
    return root


def test_init_writes_a_model_per_table_with_marked_guesses(project):
    assert sorted(p.name for p in (project / "semantic_models").iterdir()) == ["outlet.yml", "ticket.yml"]
    ticket = (project / "semantic_models" / "ticket.yml").read_text()
    parsed = yaml.safe_load(ticket)["semantic_model"]
    assert parsed["table"] == "tickets" and parsed["default_time"] == "sold_on"
    assert {e["name"]: (e["type"], e["expr"]) for e in parsed["entities"]} == {
        "ticket": ("primary", "ticket_id"), "outlet": ("foreign", "outlet_id")}
    dims = {d["name"]: d for d in parsed["dimensions"]}
    assert dims["sold_on"] == {"name": "sold_on", "type": "time", "stored_as": "date"}
    assert dims["rung_up_at"] == {"name": "rung_up_at", "type": "time"}
    assert dims["is_return"]["type"] == "boolean" and "channel" in dims
    assert "shopper_id" in dims  # a key to a table that is not here: a dimension, not a dangling entity
    assert {m["name"]: m["agg"] for m in parsed["measures"]} == {"ticket_count": "count", "net_amount": "sum",
                                                                 "units": "sum"}
    for guessed in ("expr: ticket_id", "expr: outlet_id", "name: shopper_id", "name: rung_up_at", "agg: sum"):
        line = next(line for line in ticket.splitlines() if guessed in line)
        assert "# REVIEW:" in line, line
    assert "stored_as: date}" in next(line for line in ticket.splitlines() if "name: sold_on" in line)
    assert load_config(project) == {"warehouse": str(project.parent / "till.duckdb")} or \
        Path(load_config(project)["warehouse"]).name == "till.duckdb"


def test_the_proposed_project_validates_against_the_warehouse(project):
    result = CliRunner().invoke(main, ["validate", "--project", str(project), "--warehouse"])
    assert result.exit_code == 0, result.stderr
    assert "2 semantic models" in result.stdout and "checked on" in result.stdout


def _rows(rows) -> list[tuple]:
    return sorted(tuple(str(v)[:10] if isinstance(v, (date, datetime)) or v is None or isinstance(v, str)
                        else round(float(v), 6) for v in row) for row in rows)


@pytest.mark.parametrize("zone", [None, "America/New_York", "Asia/Tokyo"])
def test_a_sum_by_month_equals_hand_sql(project, zone):
    with Runtime.open(project) as runtime:
        got = runtime.query(QueryRequest(metrics=("ticket_net_amount",), dimensions=("metric_time.month",),
                                         timezone=zone)).rows
        _, expected = runtime.run_sql("SELECT CAST(DATE_TRUNC('month', sold_on) AS DATE), SUM(net_amount) "
                                      "FROM tickets GROUP BY 1")
    assert _rows(got) == _rows(expected)  # sold_on is a DATE: no time zone moves a ticket to another month


def test_a_ratio_by_a_joined_dimension_equals_hand_sql(project):
    with Runtime.open(project) as runtime:
        got = runtime.query(QueryRequest(metrics=("ticket_net_amount_per_ticket", "ticket_count"),
                                         dimensions=("outlet.region", "metric_time.month"))).rows
        _, expected = runtime.run_sql(
            "SELECT o.region, CAST(DATE_TRUNC('month', t.sold_on) AS DATE), "
            "CAST(SUM(t.net_amount) AS DOUBLE) / COUNT(*), COUNT(*) "
            "FROM tickets t LEFT JOIN outlets o ON o.outlet_id = t.outlet_id GROUP BY 1, 2")
    assert _rows(got) == _rows(expected)


TIME_METRICS = """metrics:
  - {name: net_rolling_7d, type: cumulative, metric: ticket_net_amount, window: 7 days}
  - {name: net_mtd, type: cumulative, metric: ticket_net_amount, grain_to_date: month}
  - {name: net_to_date, type: cumulative, metric: ticket_net_amount, window: unbounded}
"""
DAYS = ("WITH d AS (SELECT CAST(range AS DATE) AS day FROM range((SELECT MIN(sold_on) FROM tickets), "
        "(SELECT MAX(sold_on) FROM tickets) + INTERVAL 1 DAY, INTERVAL 1 DAY)) ")


@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_rolling_to_date_and_all_time_on_the_generated_spine(project, tmp_path, zone):
    """Metrics a user adds to the proposed project (no time spine in the warehouse: the days are
    generated in SQL) equal hand SQL; the DATE column keeps its days in any time zone."""
    import shutil

    copy = tmp_path / "till"
    shutil.copytree(project, copy)
    (copy / "metrics" / "time.yml").write_text(TIME_METRICS)
    with Runtime.open(copy) as runtime:
        daily = runtime.query(QueryRequest(metrics=("net_rolling_7d",), dimensions=("metric_time.day",),
                                           timezone=zone)).rows
        monthly = runtime.query(QueryRequest(metrics=("net_mtd", "net_to_date"), dimensions=("metric_time.month",),
                                             timezone=zone)).rows
        _, want_daily = runtime.run_sql(
            DAYS + "SELECT day, s FROM (SELECT day, (SELECT SUM(net_amount) FROM tickets WHERE sold_on > day - 7 "
                   "AND sold_on <= day) AS s FROM d) WHERE s IS NOT NULL")
        _, want_monthly = runtime.run_sql(
            "WITH m AS (SELECT DISTINCT CAST(DATE_TRUNC('month', sold_on) AS DATE) AS m FROM tickets) "
            "SELECT m, (SELECT SUM(net_amount) FROM tickets WHERE DATE_TRUNC('month', sold_on) = m), "
            "(SELECT SUM(net_amount) FROM tickets WHERE sold_on < m + INTERVAL 1 MONTH) FROM m")
    assert len(daily) > 90 and _rows(daily) == _rows(want_daily)
    assert _rows(monthly) == _rows(want_monthly)


def test_init_never_overwrites_without_force(project, warehouse):
    model = project / "semantic_models" / "ticket.yml"
    model.write_text(model.read_text() + "# my edit\n")
    result = _init(str(project), "--warehouse", str(warehouse))
    assert result.exit_code != 0
    assert "already exist" in result.stderr and "--force" in result.stderr
    assert model.read_text().endswith("# my edit\n")
    result = _init(str(project), "--warehouse", str(warehouse), "--force")
    assert result.exit_code == 0, result.stderr
    assert "# my edit" not in model.read_text()


def test_tables_chooses_and_names_the_valid_choices(warehouse, tmp_path):
    result = _init(str(tmp_path / "a"), "--warehouse", str(warehouse), "--tables", "outlets")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in (tmp_path / "a" / "semantic_models").iterdir()] == ["outlet.yml"]
    result = _init(str(tmp_path / "b"), "--warehouse", str(warehouse), "--tables", "outlet")
    assert result.exit_code != 0 and "did you mean 'outlets'?" in result.stderr
    assert not (tmp_path / "b").exists()


def test_declared_keys_are_used_without_review_marks(tmp_path):
    import duckdb

    path = tmp_path / "music.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE artists (artist_no INTEGER PRIMARY KEY, artist_name VARCHAR)")
        con.execute("CREATE TABLE tracks (track_no INTEGER PRIMARY KEY, artist_no INTEGER REFERENCES artists, "
                    "title VARCHAR, released DATE, price DECIMAL(6, 2))")
    result = _init(str(tmp_path / "p"), "--warehouse", str(path))
    assert result.exit_code == 0, result.stderr
    track = (tmp_path / "p" / "semantic_models" / "track.yml").read_text()
    assert "- {name: track, type: primary, expr: track_no}\n" in track
    assert "- {name: artist, type: foreign, expr: artist_no}\n" in track
    result = CliRunner().invoke(main, ["validate", "--project", str(tmp_path / "p"), "--warehouse"])
    assert result.exit_code == 0, result.stderr


# --- canon.yml: strict keys, paths relative to the project --------------------------------------------


def test_an_unknown_setting_is_rejected_with_its_line_and_a_suggestion(project, tmp_path):
    root = tmp_path / "p"
    for part in ("semantic_models", "metrics"):
        (root / part).mkdir(parents=True)
        for file in (project / part).iterdir():
            (root / part / file.name).write_text(file.read_text())
    (root / "canon.yml").write_text(f"warehouse: {load_config(project)['warehouse']}\nlimts:\n  max_rows: 5\n")
    result = CliRunner().invoke(main, ["query", "--project", str(root), "-m", "ticket_count"])
    assert result.exit_code != 0
    assert "canon.yml:2: unknown setting 'limts' — did you mean 'limits'?" in result.stderr


def test_a_relative_warehouse_resolves_from_the_project(warehouse, tmp_path, monkeypatch):
    root = tmp_path / "proj"
    result = _init(str(root), "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.stderr
    (root / "canon.yml").write_text("warehouse: ../data/till.duckdb\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "till.duckdb").write_bytes(warehouse.read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CANON_WAREHOUSE", raising=False)
    assert Path(warehouse_url(root)) == root / "../data/till.duckdb"
    result = CliRunner().invoke(main, ["query", "--project", str(root), "-m", "ticket_count", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    assert '"rows": [[240]]' in result.stdout


def _top_level_reads(tree: ast.AST) -> set[str]:
    """Keys read as `config.get("x")` / `config["x"]` in a function taking the whole canon.yml as its
    `config` parameter (the `from_config` style), and as `load_config(...).get("x")`."""
    found: set[str] = set()

    class Reads(ast.NodeVisitor):
        takes_config = False

        def visit_FunctionDef(self, node):
            outer, self.takes_config = self.takes_config, "config" in [a.arg for a in node.args.args + node.args.kwonlyargs]
            self.generic_visit(node)
            self.takes_config = outer

        visit_AsyncFunctionDef = visit_FunctionDef

        def _read(self, target, key):
            if not isinstance(key, str):
                return
            if self.takes_config and isinstance(target, ast.Name) and target.id == "config":
                found.add(key)
            if isinstance(target, ast.Call) and getattr(target.func, "id", getattr(target.func, "attr", "")) == "load_config":
                found.add(key)

        def visit_Call(self, node):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                self._read(node.func.value, node.args[0].value)
            self.generic_visit(node)

        def visit_Subscript(self, node):
            if isinstance(node.slice, ast.Constant):
                self._read(node.value, node.slice.value)
            self.generic_visit(node)

    Reads().visit(tree)
    return found


def test_every_setting_the_code_reads_is_known():
    """A new canon.yml section must be listed in project.KNOWN_KEYS, or strict loading would reject it."""
    read = set()
    for path in [*(REPO / "server").rglob("*.py"), *(REPO / "compiler").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        if "config" in text:  # parse only the files that may read it
            read |= _top_level_reads(ast.parse(text))
    from canon.compiler.model import Settings

    read |= set(Settings.model_fields)
    assert read and read <= set(KNOWN_KEYS), sorted(read - set(KNOWN_KEYS))


@pytest.mark.postgres
def test_init_on_postgres_uses_declared_keys_and_answers_like_hand_sql(pg_server_url, tmp_path):
    import psycopg

    from tests.support.pg_server import create_database

    url = create_database(pg_server_url, "canon_init_music")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE labels (label_no integer PRIMARY KEY, label_name text)")
        con.execute("CREATE TABLE releases (release_no integer PRIMARY KEY, label_no integer REFERENCES labels, "
                    "issued date, streamed_at timestamp, plays bigint, revenue numeric(10, 2))")
        con.execute("INSERT INTO labels VALUES (1, 'North'), (2, 'South')")
        con.execute("INSERT INTO releases SELECT g, 1 + g % 2, DATE '2024-01-01' + g % 70, "
                    "TIMESTAMP '2024-01-01 02:00' + g * INTERVAL '9 hours', g * 10, g * 1.25 "
                    "FROM generate_series(1, 150) AS g")
    root = tmp_path / "music"
    result = _init(str(root), "--warehouse", url)
    assert result.exit_code == 0, result.stderr
    release = (root / "semantic_models" / "release.yml").read_text()
    assert "- {name: label, type: foreign, expr: label_no}\n" in release  # declared: no REVIEW mark
    assert "- {name: issued, type: time, stored_as: date}\n" in release
    result = CliRunner().invoke(main, ["validate", "--project", str(root), "--warehouse"])
    assert result.exit_code == 0, result.stderr
    with Runtime.open(root) as runtime:
        got = runtime.query(QueryRequest(metrics=("release_revenue", "release_plays_per_release"),
                                         dimensions=("label.label_name", "metric_time.month"),
                                         timezone="Europe/Berlin")).rows
        _, expected = runtime.run_sql(
            "SELECT l.label_name, CAST(DATE_TRUNC('month', r.issued) AS DATE), SUM(r.revenue), "
            "CAST(SUM(r.plays) AS DOUBLE PRECISION) / COUNT(*) "
            "FROM releases r LEFT JOIN labels l ON l.label_no = r.label_no GROUP BY 1, 2")
    assert _rows(got) == _rows(expected)
