"""The business glossary and catalog search: terms are validated, and people find metrics by the words
they use (a synonym such as "bought together" finds the cross-sell metrics)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from canon.compiler.compile import load_catalog
from canon.compiler.errors import CatalogErrors
from canon.compiler.search import search
from tests.support.servers import build_warehouse, copy_project, serve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


def test_every_glossary_term_points_at_real_metrics_and_dimensions(catalog):
    assert {"cross_sell", "customer_acquisition_cost", "funnel_conversion", "rfm", "upsell"} <= set(catalog.glossary)
    for entry in catalog.glossary.values():
        assert set(entry.metrics) <= set(catalog.metrics)
        assert entry.metrics or entry.dimensions


@pytest.mark.parametrize("text, first", [
    ("bought together", ("term", "cross_sell")),
    ("cac", ("metric", "cac")),  # an exact metric name comes first
    ("cost per acquisition", ("term", "customer_acquisition_cost")),
    ("lead to order", ("term", "funnel_conversion")),
    ("revenue growth", ("metric", "revenue_mom_growth")),
])
def test_search_ranks_what_people_mean(catalog, text, first):
    hits = search(catalog, text)
    assert (hits[0].kind, hits[0].name) == first, [h.to_dict() for h in hits[:3]]


def test_a_matching_term_brings_its_metrics(catalog):
    names = {(h.kind, h.name) for h in search(catalog, "bought together")}
    assert {("metric", "cross_sell_score"), ("metric", "cross_sell_lift")} <= names


def test_every_word_must_match(catalog):
    assert search(catalog, "revenue zebra") == [] and search(catalog, "  ") == []


def test_unknown_metric_in_a_term_is_reported_with_its_line(tmp_path):
    copy_project(tmp_path)
    (tmp_path / "metrics" / "extra_terms.yml").write_text(
        "glossary:\n"
        "  - name: margin\n"
        "    term: Gross margin\n"
        "    definition: Revenue minus cost of goods.\n"
        "    metrics: [gross_margn]\n")
    with pytest.raises(CatalogErrors) as error:
        load_catalog(tmp_path)
    assert str(error.value) == ("metrics/extra_terms.yml:2: glossary term 'margin' names unknown metric "
                                "'gross_margn' — valid choices: " + str(error.value).split("valid choices: ")[1])
    assert "glossary term 'margin'" in str(error.value)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "canon.server.cli", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.slow  # runs the canon CLI as a subprocess
def test_cli_search_and_glossary():
    found = json.loads(_cli("search", "attach rate", "--format", "json").stdout)
    assert found[0]["kind"] == "term" and found[0]["name"] in ("cross_sell", "confidence")
    text = _cli("glossary", "rfm").stdout
    assert "RFM segment" in text and "customer.rfm_segment" in text
    missing = _cli("search", "zebra")
    assert missing.returncode == 1 and "nothing matches 'zebra'" in missing.stderr


@pytest.mark.slow  # a server of its own
def test_http_search_and_glossary(tmp_path):
    project = copy_project(tmp_path / "project")
    warehouse = build_warehouse(tmp_path / "demo.duckdb", scale=0.05)
    with serve(project, warehouse, "--reload-interval", "0") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            results = client.get("/v1/search", params={"q": "basket value"}).json()["results"]
            first = results[0]
            assert (first["kind"], first["name"], first["label"]) == ("term", "average_order_value",
                                                                      "Average order value (AOV)")
            assert "synonym" in first["why"]
            terms = client.get("/v1/glossary").json()["terms"]
            assert [t["name"] for t in terms] == sorted(t["name"] for t in terms) and len(terms) >= 10
            assert [t["name"] for t in client.get("/v1/glossary", params={"q": "mtd"}).json()["terms"]] == ["period_to_date"]
            assert client.get("/v1/search").status_code == 422


def test_docs_site_lists_the_glossary(catalog, tmp_path):
    from canon.server.governance.docs import build_site

    build_site(catalog, tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "<dt id='term-cross_sell'>Cross-sell</dt>" in index and "href='metrics/cross_sell_score.html'" in index
    entries = json.loads((tmp_path / "search.json").read_text())
    assert {"kind": "term", "name": "rfm"}.items() <= next(e for e in entries if e["name"] == "rfm").items()
