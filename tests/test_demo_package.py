"""The demo catalog ships in the wheel: after a plain (non-editable) install, `canon demo` and
`canon query` work from an empty folder anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from canon.compiler.errors import ConfigError
from canon.server.demo import install_demo_project, packaged_project

ROOT = Path(__file__).resolve().parents[1]


def test_the_packaged_catalog_is_the_demo_catalog():
    source = packaged_project()
    for name in ("semantic_models/orders.yml", "metrics/sales.yml", "canon.yml"):
        assert (source / name).read_text() == (ROOT / name).read_text()


def test_install_demo_project_copies_into_an_empty_folder_only(tmp_path):
    written = install_demo_project(tmp_path)
    assert sorted(p.name for p in written) == ["canon.yml", "metrics", "semantic_models"]
    assert (tmp_path / "metrics" / "sales.yml").is_file()
    half = tmp_path / "half"
    (half / "semantic_models").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a complete Canon project"):
        install_demo_project(half)


@pytest.mark.slow  # builds the wheel with pip and installs it into a fresh virtual environment
def test_demo_and_query_from_an_empty_folder_after_a_wheel_install(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("canon_semantic-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"canon/demo_project/canon.yml", "canon/demo_project/metrics/sales.yml",
            "canon/demo_project/semantic_models/orders.yml"} <= names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python, canon = venv / "bin" / "python", venv / "bin" / "canon"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    empty = tmp_path / "anywhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CANON_PROJECT", "CANON_WAREHOUSE", "PYTHONPATH")}
    where = subprocess.run([str(python), "-c", "import canon; print(canon.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel, not the checkout
    demo = subprocess.run([str(canon), "demo", "--scale", "0.05"], cwd=empty, env=env, capture_output=True,
                          text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert (empty / ".canon" / "demo.duckdb").is_file() and (empty / "semantic_models" / "orders.yml").is_file()
    query = subprocess.run([str(canon), "query", "-m", "revenue", "--by", "product.category", "-f", "json"],
                           cwd=empty, env=env, capture_output=True, text=True, timeout=300)
    assert query.returncode == 0, query.stderr
    rows = json.loads(query.stdout)["rows"]
    assert len(rows) > 3 and all(revenue > 0 for _, revenue in rows)
