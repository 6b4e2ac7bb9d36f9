"""Hostile YAML is refused before it is composed or expanded, with a file:line error: alias bombs,
recursive aliases, deep nesting (which crashes libyaml's composer outright), too many nodes, files over
the size cap, bytes that are not UTF-8; in definition files and in canon.yml."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from canon.compiler import yaml_limits
from canon.compiler.errors import ConfigError
from canon.compiler.load import MAX_FILE_BYTES, load_project, load_text

LAUGHS = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]) + "\n"  # 9**9 nodes


def tiny_project(root: Path) -> Path:
    (root / "semantic_models").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "semantic_models" / "orders.yml").write_text(
        "semantic_model:\n  name: order\n  table: orders\n  owner: &team sales\n"
        "  entities:\n    - {name: order, type: primary, expr: order_id}\n"
        "  measures:\n    - {name: order_count, agg: count, expr: order_id}\n")
    (root / "metrics" / "orders.yml").write_text(
        "metrics:\n  - {name: orders, type: simple, measure: order.order_count}\n")
    return root


# Run in a child process capped at 2 GiB of address space and 60 s: without the guards an alias bomb
# there grows past the cap (it took a server to 3 GB) and deep nesting segfaults libyaml's composer, so
# a regression fails this test instead of taking the test run down. Each case prints one line.
BOMBS_CHILD = """
import resource, sys, time
from pathlib import Path
from canon.compiler.compile import load_catalog
from canon.compiler.errors import CanonError, CatalogErrors
from canon.server.project import load_config

project = Path(sys.argv[1])
print(f"baseline\t{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}", flush=True)  # after the imports
def case(name, load):
    started = time.perf_counter()
    try:
        load()
        outcome = "loaded"
    except CatalogErrors as error:
        outcome = " | ".join(str(e) for e in error.errors)
    except CanonError as error:
        outcome = str(error)
    print(f"{name}\t{time.perf_counter() - started:.3f}\t{outcome}", flush=True)

laughs, deep = (project / "laughs.txt").read_text(), (project / "deep.txt").read_text()
bomb = project / "metrics" / "bomb.yml"
bomb.write_text(laughs)
case("definition", lambda: load_catalog(project))
bomb.write_text(deep)
case("deep", lambda: load_catalog(project))
bomb.unlink()
(project / "canon.yml").write_text(laughs)
case("canon.yml", lambda: load_catalog(project))
case("config", lambda: load_config(project))
print(f"maxrss\t{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}", flush=True)
"""


def test_alias_bombs_and_deep_nesting_are_refused_fast_and_small(tmp_path):
    import resource

    project = tiny_project(tmp_path / "project")
    (project / "laughs.txt").write_text(LAUGHS)
    (project / "deep.txt").write_text("metrics: " + "[" * 200_000 + "]" * 200_000 + "\n")
    cap = 2 << 30

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    out = subprocess.run([sys.executable, "-c", BOMBS_CHILD, str(project)], capture_output=True, text=True,
                         timeout=60, preexec_fn=limit)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr[-3000:])
    rows = {name: rest for name, *rest in (line.split("\t") for line in out.stdout.splitlines())}
    assert len(LAUGHS.encode()) < 500
    for name, where in (("definition", "metrics/bomb.yml:6"), ("canon.yml", "canon.yml:6"), ("config", "canon.yml:6")):
        seconds, message = rows[name]
        assert message.startswith(f"{where}: the YAML alias *a4 would expand the file past 100,000 nodes "
                                  "(an alias bomb?)"), (name, message)
        float(seconds)  # printed for the record (~0.01 s); the 60 s timeout and the 2 GiB cap are the bounds
    assert rows["deep"][1].startswith("metrics/bomb.yml:1: the YAML nests deeper than 64 levels"), rows["deep"]
    growth = int(rows["maxrss"][0]) - int(rows["baseline"][0])
    assert growth < 200, f"peak RSS grew by {growth} MB while refusing the bombs"  # unguarded: past the 2 GiB cap


def refused(text: str, file: str = "metrics/x.yml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(text, file, "metrics")
    return caught.value


def test_recursive_alias_is_refused():
    error = refused("metrics: &m\n  - name: x\n  - *m\n")
    assert "contains it" in error.message and str(error.location) == "metrics/x.yml:3"


def test_too_many_aliases_are_refused_and_a_few_are_fine():
    few = "owners: &o sales\nmetrics:\n" + "".join(f"  - {{name: m{i}, owner: *o}}\n" for i in range(10))
    assert load_text(few, "metrics/x.yml", "metrics").data["metrics"][9]["owner"] == "sales"
    many = "owners: &o sales\nmetrics:\n" + "".join(f"  - {{name: m{i}, owner: *o}}\n"
                                                   for i in range(yaml_limits.MAX_ALIASES + 1))
    error = refused(many)
    assert "aliases" in error.message and error.location.line == yaml_limits.MAX_ALIASES + 3


def test_too_many_nodes_are_refused_at_their_line():
    text = "metrics:\n" + "  - {name: a, type: simple}\n" * (yaml_limits.MAX_NODES // 5 + 10)
    started = time.perf_counter()
    error = refused(text)
    assert time.perf_counter() - started < 5  # stops at the limit (~0.2 s) instead of composing it all
    assert "more than 100,000 YAML nodes" in error.message and error.location.line == yaml_limits.MAX_NODES // 5 + 1


def test_oversized_file_is_refused_with_its_line(tmp_path):
    project = tiny_project(tmp_path)
    line = "# " + "x" * 97 + "\n"  # 100 bytes a line
    (project / "metrics" / "big.yml").write_text(line * (MAX_FILE_BYTES // 100 + 1))
    documents, problems = load_project(project)
    assert [str(p.location) for p in problems] == [f"metrics/big.yml:{MAX_FILE_BYTES // 100 + 1}"], problems
    assert "5 MiB limit" in problems[0].message
    assert sorted(d.file for d in documents) == ["metrics/orders.yml", "semantic_models/orders.yml"]


def test_bytes_that_are_not_utf8_are_an_error_at_their_line(tmp_path):
    project = tiny_project(tmp_path)
    (project / "metrics" / "latin1.yml").write_bytes(b"metrics:\n  - name: caf\xe9\n")
    _, problems = load_project(project)
    assert [str(p.location) for p in problems] == ["metrics/latin1.yml:2"] and "UTF-8" in problems[0].message


def test_anchors_within_limits_still_load(tmp_path):
    from canon.compiler.compile import load_catalog

    catalog = load_catalog(tiny_project(tmp_path))  # orders.yml defines &team: an unused anchor is fine
    assert list(catalog.metrics) == ["orders"]
