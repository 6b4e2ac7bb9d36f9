"""A hostile corpus (tests/fixtures/hostile/corpus.json plus generated nesting and size attacks) through
every HTTP front end (/v1/query, /v1/compile, /v1/dimensions/{ref}/values, Cube /load and /sql) and the
CLI (`canon query --where`): no attack succeeds, nothing answers 5xx, every refusal has a message.

"Succeeds" means rows that the input could only reach by escaping its literal or the allow-list: nearly
every filter is refused outright (a few are quoted literals that match nothing, as they should); values
must match nothing; every failure is a 4xx with a message.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.servers import build_warehouse, copy_project

pytestmark = pytest.mark.slow  # about 30 s: hundreds of requests and CLI runs

CORPUS = json.loads((Path(__file__).parent / "fixtures" / "hostile" / "corpus.json").read_text())
GENERATED = ([("(" * n + "product.category = 'x'" + ")" * n) for n in (50, 100, 1000, 3000)]
             + ["NOT " * n + "product.category = 'x'" for n in (50, 100, 1000)]
             + [("lower(" * n + "product.category" + ")" * n + " = 'x'") for n in (50, 1000)]
             + ["product.category = '" + "a" * 5000 + "'", " OR ".join(["product.category = 'x'"] * 500), "(" * 100_000,
                "product.category IN (" + ", ".join(["'x'"] * 5000) + ")"])
FILTERS = CORPUS["filters"] + GENERATED
TOTAL = len(FILTERS) + sum(len(CORPUS[k]) for k in ("values", "dates", "zones", "refs"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return copy_project(root / "project"), build_warehouse(root / "demo.duckdb", scale=0.05)


@pytest.fixture(scope="module")
def client(site):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app

    with TestClient(create_app(site[0], str(site[1]), reload_interval_s=0), raise_server_exceptions=False) as c:
        yield c


def refused(response, what):
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    body = response.json()
    assert body.get("message") or body.get("error"), (what, body)


def no_5xx(response, what):
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400:
        refused(response, what)


def test_the_corpus_is_large():
    assert TOTAL >= 300, TOTAL


def test_filters_never_succeed_over_http(client):
    answered = 0
    for text in FILTERS:
        for body in ({"metrics": ["revenue"], "where": text}, {"metrics": ["revenue"], "having": text}):
            response = client.post("/v1/query", json=body)
            no_5xx(response, body)
            if response.status_code == 200:  # a quoted literal that matched nothing: the attack stayed a value
                answered += 1
                assert response.json()["rows"] in ([], [[None]]), (body, response.text[:300])
            no_5xx(client.post("/v1/compile", json=body), body)
    assert answered <= 10, answered  # nearly every one is refused outright


def test_values_stay_literals(client):
    for value in CORPUS["values"]:
        structured = {"metrics": ["revenue"], "dimensions": ["product.category"],
                      "filters": [{"field": "product.category", "op": "equals", "values": [value]}]}
        response = client.post("/v1/query", json=structured)
        no_5xx(response, value)
        if response.status_code == 200:
            assert response.json()["rows"] == [], value  # no category is named like an attack
        cube = {"measures": ["metrics.revenue"], "dimensions": ["product.category"],
                "filters": [{"member": "product.category", "operator": "equals", "values": [value]}]}
        response = client.post("/cubejs-api/v1/load", json={"query": cube})
        no_5xx(response, value)
        if response.status_code == 200:
            assert response.json()["data"] == [], value
        no_5xx(client.post("/cubejs-api/v1/sql", json={"query": cube}), value)


def test_dates_zones_and_refs(client):
    cube = {"measures": ["metrics.revenue"]}
    for date in CORPUS["dates"]:
        for body in ({"start": date}, {"end": date}, {"time_range": date}, {"today": date, "time_range": "last 7 days"}):
            no_5xx(client.post("/v1/query", json={"metrics": ["revenue"], **body}), body)
        for query in ({**cube, "timeDimensions": [{"dimension": "metrics.metric_time", "dateRange": date}]},
                      {**cube, "filters": [{"member": "order.ordered_at", "operator": "afterDate", "values": [date]}]}):
            no_5xx(client.post("/cubejs-api/v1/load", json={"query": query}), query)
    for zone in CORPUS["zones"]:
        response = client.post("/v1/query", json={"metrics": ["revenue"], "timezone": zone})
        no_5xx(response, zone)
        no_5xx(client.post("/cubejs-api/v1/load", json={"query": {**cube, "timezone": zone}}), zone)
    for ref in CORPUS["refs"]:
        refused(client.post("/v1/query", json={"metrics": ["revenue"], "dimensions": [ref]}), ref)
        refused(client.post("/cubejs-api/v1/sql", json={"query": {**cube, "dimensions": [ref]}}), ref)
        no_5xx(client.get(f"/v1/dimensions/{quote(ref, safe='')}/values"), ref)


def test_filters_are_refused_by_the_cli(site):
    """In process (click's runner): the CLI's own error handling, exit codes and messages."""
    from click.testing import CliRunner

    from canon.server.cli import main

    runner = CliRunner()
    for text in FILTERS[::3] + GENERATED:  # a third of the static corpus and every generated attack
        result = runner.invoke(main, ["query", "--project", str(site[0]), "--warehouse", str(site[1]),
                                      "--metric", "revenue", "--where", text])
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert result.exit_code != 70 and "internal error" not in output, (text[:80], result.exit_code, output[:300])
        if result.exit_code:
            assert "error:" in output, (text[:80], output[:300])
        else:  # a quoted literal that matched nothing
            assert "DROP" in text, (text[:80], output[:300])
