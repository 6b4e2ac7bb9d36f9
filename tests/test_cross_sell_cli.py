"""The CLI: `canon recommendations refresh`, `canon cross-sell`, `canon recommend`, `canon upsell`,
against the reference implementation."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from tests.test_recommend_reference import Reference, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory, "cross_sell_cli", scale=0.3, seed=13)


@pytest.fixture(scope="module")
def ref(project):
    return Reference(project / ".canon" / "demo.duckdb")


def _canon(*args):
    from canon.server.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_refresh_persists_a_snapshot(project):
    result = _canon("recommendations", "refresh", "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "snapshot built" in result.output
    assert (project / ".canon" / "recommend" / "snapshot.pickle").is_file()
    assert not list((project / ".canon" / "recommend").glob("*.tmp"))


def test_cross_sell_command(project, ref):
    result = _canon("cross-sell", "--project", str(project), "--product", "1001", "--limit", "8", "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    want = ref.cross_sell(1001, 8)
    assert [i["product_id"] for i in body["items"]] == [b for b, *_ in want]
    assert all(math.isclose(i["cross_sell_score"], conf) for i, (_, _, conf, _) in zip(body["items"], want))
    table = _canon("cross-sell", "--project", str(project), "--product", "Lumen Smartphone Go", "--limit", "3")
    assert table.exit_code == 0 and "Bought with Lumen Smartphone Go" in table.stdout
    assert _canon("cross-sell", "--project", str(project), "--category", "Phones").exit_code == 0


def test_recommend_and_upsell_commands(project, ref):
    customer = sorted(ref.history)[3]
    body = json.loads(_canon("recommend", "--project", str(project), "--customer", str(customer),
                             "--format", "json").stdout)
    assert [(i["product_id"], i["antecedent"]["product_id"]) for i in body["items"]] == \
        [(b, a) for b, a, *_ in ref.recommend(customer, 10)]
    body = json.loads(_canon("upsell", "--project", str(project), "--customer", str(customer), "--format", "json").stdout)
    assert {c["category"]: [(i["product_id"], i["expected_uplift"]) for i in c["items"]] for c in body["categories"]} \
        == ref.upsell(customer, 5)


@pytest.mark.parametrize("args, text", [
    (("recommend", "--customer", "987654321"), "unknown customer 987654321"),
    (("cross-sell", "--product", "12"), "unknown product 12"),
    (("cross-sell",), "exactly one of --product"),
    (("upsell", "--customer", "987654321"), "unknown customer"),
])
def test_cli_errors(project, args, text):
    result = _canon(*args, "--project", str(project))
    assert result.exit_code == 1
    assert text in result.output
