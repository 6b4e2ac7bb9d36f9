"""The web app over HTTP (issue 17): its shell and assets, and the JSON endpoints it added.

In process (FastAPI's TestClient) over a copy of the demo project in a git repository with one
commit that changes revenue's filter, with tokens and access policies: a country manager sees
less, finance sees everything. The browser-level checks are in test_webapp_browser.py.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from canon.server.http_api import create_app
from canon.server.webapp.routes import STATIC
from tests.support.project import copy_project, shared_demo

SECRET = "test-secret-for-the-canon-web-app-0123456789"
POLICIES = """
access:
  default: deny
  policies:
    - name: country_managers
      when: "user.role = 'country_manager'"
      row_filter: "customer.country_code = {{ user.country }}"
      deny: [ad_spend, cac]
    - name: finance
      when: "user.role = 'finance'"
"""
DE = {"sub": "greta", "role": "country_manager", "country": "DE"}
FINANCE = {"sub": "fiona", "role": "finance"}
OLD = "    measure: order_item.line_revenue\n    filter: \"order.status = 'completed'\""
NEW = "    measure: order_item.line_revenue\n    filter: \"order.status IN ('completed', 'returned')\""


def bearer(claims: dict) -> dict:
    return {"Authorization": "Bearer " + jwt.encode({**claims, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                               "HOME": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"}).stdout


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("webapp_http")
    project = copy_project(root / "analytics")
    with (project / "canon.yml").open("a") as config:
        config.write(POLICIES)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base catalog")
    sales = project / "metrics" / "sales.yml"
    assert OLD in sales.read_text()
    sales.write_text(sales.read_text().replace(OLD, NEW, 1))
    git(root, "commit", "-q", "-am", "revenue counts returned orders too")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CANON_API_SECRET", SECRET)
        with TestClient(create_app(project, str(shared_demo()), reload_interval_s=0)) as c:
            yield c


# --- the shell and its assets -------------------------------------------------------------------------------


def test_the_app_is_served_at_the_root_with_a_same_origin_policy(client):
    page = client.get("/")  # no token: the shell holds no data
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # every script, style and preload is one of our own files, and each is served
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assets = [r for r in refs if r.startswith("/app/")]
    assert set(refs) - set(assets) <= {"#main", "#/catalog", "#/explore", "#/cross-sell", "#/review", "data:,", "/docs"}
    for path in assets:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].split(";")[0] in ("text/javascript", "text/css"), path
        again = client.get(path, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and not again.content, path


def test_nothing_shipped_loads_from_another_origin():
    """Imports are relative, and no file names a URL to fetch (the SVG namespace is a name, not a request)."""
    for file in STATIC.rglob("*"):
        if file.suffix not in (".js", ".css", ".html"):
            continue
        text = file.read_text()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, f"{file.name}: {urls}"
        for target in re.findall(r'from\s+"([^"]+)"|import\("([^"]+)"\)', text):
            spec = next(filter(None, target))
            assert spec.startswith(("./", "../")), f"{file.name} imports {spec}"
            assert (file.parent / spec).resolve().is_file(), f"{file.name} imports a missing {spec}"


@pytest.mark.parametrize("path", ["/app/../routes.py", "/app/%2e%2e/routes.py", "/app/..%2froutes.py",
                                  "/app/nothing.js", "/app/pages/../../__init__.py"])
def test_only_shipped_assets_are_served(client, path):
    answer = client.get(path)  # the client folds a plain `..` first: then it is a path outside /app/, which needs a token
    assert answer.status_code in (401, 404) and answer.json()["code"] in ("unknown_name", "not_found", "unauthenticated"), \
        (path, answer.text)


def test_the_data_still_needs_a_token(client):
    answer = client.get("/v1/metrics/revenue/source")
    assert answer.status_code == 401 and "token" in answer.json()["message"]


# --- a metric's source, history and checks -------------------------------------------------------------------


def test_source_gives_the_yaml_block_its_lines_and_its_commits(client):
    body = client.get("/v1/metrics/revenue/source", headers=bearer(FINANCE)).json()
    assert body["file"] == "metrics/sales.yml" and body["line"] < body["end_line"]
    assert body["yaml"].lstrip().startswith("- name: revenue") and "IN ('completed', 'returned')" in body["yaml"]
    assert "- name:" not in body["yaml"].lstrip()[len("- name:"):]  # only this metric's block
    subjects = [c["subject"] for c in body["history"]]
    assert subjects[:2] == ["revenue counts returned orders too", "base catalog"] and body["git"] is True
    # a metric untouched since the first commit has only that one
    order_count = client.get("/v1/metrics/order_count/source", headers=bearer(FINANCE)).json()
    assert [c["subject"] for c in order_count["history"]] == ["base catalog"]


def test_a_hidden_metric_stays_hidden(client):
    for path in ("/v1/metrics/ad_spend/source", "/v1/metrics/ad_spend/checks"):
        answer = client.get(path, headers=bearer(DE))
        assert answer.status_code == 403 and "ad_spend" in answer.json()["message"], path
    assert client.get("/v1/metrics/revenue/source", headers=bearer(DE)).status_code == 200


def test_checks_list_the_tests_to_anyone_who_sees_the_metric(client):
    listed = client.get("/v1/metrics/revenue/checks", headers=bearer(DE)).json()
    assert {"order", "order_item"} <= set(listed["models"])
    assert listed["tests"] and all(t["status"] is None and "SELECT" in t["sql"] for t in listed["tests"])
    refused = client.get("/v1/metrics/revenue/checks", params={"run": "true"}, headers=bearer(DE))
    assert refused.status_code == 403 and refused.json()["hint"]


@pytest.mark.slow  # runs every data test of the models behind revenue on the warehouse
def test_checks_run_for_whoever_sees_everything(client):
    listed = client.get("/v1/metrics/revenue/checks", headers=bearer(FINANCE)).json()
    ran = client.get("/v1/metrics/revenue/checks", params={"run": "true"}, headers=bearer(FINANCE)).json()
    assert {t["name"] for t in ran["tests"]} == {t["name"] for t in listed["tests"]}
    assert all(t["status"] in ("pass", "fail") for t in ran["tests"])


# --- change review -------------------------------------------------------------------------------------------


def test_refs_lists_branches_and_commits(client):
    body = client.get("/v1/diff/refs", headers=bearer(FINANCE)).json()
    assert body["git"] and "main" in [r["ref"] for r in body["refs"]]
    assert [c["subject"] for c in body["commits"]] == ["revenue counts returned orders too", "base catalog"]


@pytest.mark.parametrize("ref, message", [
    ("--output=/tmp/x", "is not a git ref"),
    ("HEAD..main", "is not a git ref"),
    ("main;ls", "is not a git ref"),
    ("no_such_branch", "no commit 'no_such_branch'"),
])
def test_a_bad_ref_is_a_400_that_names_it(client, ref, message):
    answer = client.get("/v1/diff", params={"base": ref}, headers=bearer(FINANCE))
    assert answer.status_code == 400 and message in answer.json()["message"] and "base" in answer.json()["message"]


def test_the_review_is_for_whoever_sees_everything(client):
    answer = client.get("/v1/diff", params={"base": "HEAD~1", "head": "HEAD"}, headers=bearer(DE))
    assert answer.status_code == 403 and "greta" in answer.json()["message"]
    assert client.get("/v1/diff/refs", headers=bearer(DE)).status_code == 403


@pytest.mark.slow  # compiles and samples the whole catalog at both refs
def test_diff_between_two_commits_shows_the_value_change(client):
    body = client.get("/v1/diff", params={"base": "HEAD~1", "head": "main"}, headers=bearer(FINANCE)).json()
    assert body["base"] == "HEAD~1" and body["head"] == "main" and len(body["base_sha"]) == 40
    revenue = next(c for c in body["changes"] if c["kind"] == "metric" and c["name"] == "revenue")
    assert revenue["severity"] == "value_changing" and revenue["recertify"]
    assert "IN ('completed', 'returned')" in revenue["sample"]["sql_diff"]
    moved = [r for r in revenue["sample"]["numbers"] if r["before"] != r["after"]]
    assert moved and all(r["after"] > r["before"] for r in moved)
    # the served catalog (no head) is the committed one here: nothing changed since HEAD
    same = client.get("/v1/diff", params={"base": "HEAD"}, headers=bearer(FINANCE)).json()
    assert same["head"] == "working tree" and same["changes"] == []
