"""`canon docs`: a static site with an index and one page per metric."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.server.cli import main
from canon.server.governance.docs import build_site

ROOT = Path(__file__).resolve().parents[1]


def test_site_has_an_index_and_a_page_per_metric(tmp_path):
    catalog = load_catalog(ROOT)
    written = build_site(catalog, tmp_path)
    assert (tmp_path / "index.html") in written
    pages = {p.stem for p in (tmp_path / "metrics").glob("*.html")}
    assert pages == set(catalog.metrics)
    assert {p.stem for p in (tmp_path / "models").glob("*.html")} == set(catalog.models)
    index = (tmp_path / "index.html").read_text()
    for name in catalog.metrics:
        assert f"href='metrics/{name}.html'" in index
    assert "<span class='tier certified'>certified</span>" in index


def test_metric_page_shows_definition_owner_tier_lineage_and_dependents(tmp_path):
    build_site(load_catalog(ROOT), tmp_path)
    page = (tmp_path / "metrics" / "cac.html").read_text()
    assert "Customer acquisition cost" in page and "marketing-analytics" in page and "tier certified" in page
    assert "numerator: ad_spend" in page and "denominator: new_customers" in page  # the definition
    assert "tables: ad_spend, customers, orders" in page  # lineage down to tables
    assert "ad_spend._etl_loaded_at" in page
    assert "class=mermaid" in page and "flowchart RL" in page
    assert "<li>views: <a href='../views/marketing.html'>marketing</a></li>" in page
    revenue = (tmp_path / "metrics" / "revenue.html").read_text()
    assert "<a href='../metrics/aov.html'>aov</a>" in revenue  # what depends on it
    assert "SELECT" in revenue  # compiled SQL


def test_html_is_escaped(tmp_path):
    from tests.support.project import copy_project

    copy_project(tmp_path / "p")
    path = tmp_path / "p" / "metrics" / "sales.yml"
    path.write_text(path.read_text().replace("description: Revenue per completed order.",
                                             "description: \"Revenue <script>alert(1)</script> per order.\""))
    build_site(load_catalog(tmp_path / "p"), tmp_path / "site")
    page = (tmp_path / "site" / "metrics" / "aov.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.slow  # builds the whole static site through the CLI
def test_cli_docs(tmp_path):
    out = CliRunner().invoke(main, ["docs", "--project", str(ROOT), "--out", str(tmp_path / "site")])
    assert out.exit_code == 0, out.output
    assert "catalog site:" in out.output and (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "metrics" / "aov.html").is_file()
