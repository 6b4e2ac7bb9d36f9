"""docs/getting-started.md, followed literally: its shell blocks run in order, in one bash, in an
empty folder; then the served answer is checked against hand SQL over the page's own warehouse."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"
_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```$", re.S | re.M)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shell_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def test_the_page_has_the_steps_of_a_new_user():
    script = "\n".join(shell_blocks(PAGE.read_text()))
    for step in ("canon init", "canon validate --warehouse", "canon query", "canon serve", "cat > metrics/"):
        assert step in script


@pytest.mark.slow  # the canon CLI and a server as subprocesses
def test_getting_started_runs_as_written(tmp_path):
    # the harness (not the page) stops a server left running when a step fails
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(shell_blocks(PAGE.read_text()))
    env = {k: v for k, v in os.environ.items() if k not in ("CANON_PROJECT", "CANON_WAREHOUSE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this Python's `canon`
    env["PORT"] = str(_free_port())  # the page's own default may be taken on a shared machine
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ok" in done.stdout and "checked on" in done.stdout  # validate --warehouse
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"columns"')]
    served = answers[-1]  # the curl, after `canon query --format json`
    assert [c["name"] for c in served["columns"]] == ["customer.city", "revenue", "paid_orders"]
    with duckdb.connect(str(tmp_path / "canon-tour" / "shop.duckdb"), read_only=True) as con:
        expected = con.execute("SELECT c.city, SUM(o.amount), COUNT(*) FROM orders o JOIN customers c "
                               "ON c.customer_id = o.customer_id WHERE o.status = 'paid' GROUP BY 1").fetchall()
    assert sorted((r[0], round(r[1], 2), r[2]) for r in served["rows"]) == \
        sorted((city, round(float(total), 2), n) for city, total, n in expected)
    city_query = answers[0]  # revenue by city without Oslo
    assert sorted(r[0] for r in city_query["rows"]) == ["Lyon", "Porto"]
