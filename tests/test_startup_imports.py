"""`canon serve` answers within 3 s of its start at scale 200 (issue 14, bench/startup.py): most of that is
imports, so the paths it takes before answering must not pull in what only other front ends need."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.project import copy_project

pytestmark = pytest.mark.fast

CHECK = """
import sys
from canon.server import cli
cli._check_bind(sys.argv[1], "127.0.0.1", "canon serve")
print(sorted(m for m in ("canon.server.pgwire.server", "pyarrow", "mcp") if m in sys.modules))
"""


def test_the_bind_check_does_not_load_the_wire_server(tmp_path):
    # the wire credentials live in runtime/authn.py: reading them cost ~0.5 s of imports (pgwire, pyarrow)
    project = copy_project(tmp_path / "p")
    done = subprocess.run([sys.executable, "-c", CHECK, str(project)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_wire_server_still_reads_the_same_credentials(monkeypatch):
    from canon.server.pgwire.server import credentials
    from canon.server.runtime.authn import wire_credentials

    assert credentials is wire_credentials
    monkeypatch.delenv("CANON_PG_USER", raising=False)
    monkeypatch.delenv("CANON_PG_PASSWORD", raising=False)
    assert wire_credentials({"pg": {"user": "bi", "password": "s3cret"}}) == ("bi", "s3cret")
    assert wire_credentials({}) == ("canon", None)
    monkeypatch.setenv("CANON_PG_PASSWORD", "env")
    assert wire_credentials({"pg": {"password": "file"}}) == ("canon", "env")
