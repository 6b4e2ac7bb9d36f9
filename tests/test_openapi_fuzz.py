"""schemathesis over the whole OpenAPI (Cube's endpoints included), in process against the ASGI app:
no generated request may get a 5xx.

Each operation gets EXAMPLES examples from its declared parameters and bodies (schemathesis' own
generation through Hypothesis, derandomized so a run is reproducible), sent through schemathesis' ASGI
transport, which runs the app's lifespan once. It runs twice: on an open server, and with authentication
and access policies on (issue 12), every request carrying a country manager's token, so the row filter and
member checks meet every generated input too.
"""

from __future__ import annotations

import os
import time

import jwt
import pytest

from tests.support.servers import build_warehouse, copy_project

pytestmark = pytest.mark.slow  # about 30-60 s of requests by design

EXAMPLES = 8  # per operation; 29 operations -> about 200 requests
SECRET = "openapi-fuzz-secret-openapi-fuzz-secret"
POLICIES = """
access:
  default: deny
  policies:
    - name: country_managers
      when: "user.role = 'country_manager'"
      row_filter: "customer.country_code = {{ user.country }}"
      deny: [ad_spend, cac, cost_per_lead, cost_per_order]
"""


@pytest.fixture(scope="module", params=["open", "authenticated"])
def server(request, tmp_path_factory):
    """(schema, headers): the app's OpenAPI and the headers every generated request carries."""
    import schemathesis
    from schemathesis.python.asgi import shutdown_lifespans

    from canon.server.http_api import create_app

    root = tmp_path_factory.mktemp("openapi_fuzz")
    project = copy_project(root / "project")
    warehouse = build_warehouse(root / "demo.duckdb", scale=0.05)
    headers, saved = {}, os.environ.get("CANON_API_SECRET")
    if request.param == "authenticated":
        (project / "canon.yml").write_text((project / "canon.yml").read_text() + POLICIES)
        os.environ["CANON_API_SECRET"] = SECRET
        token = jwt.encode({"sub": "fuzz", "role": "country_manager", "country": "DE",
                            "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
        headers = {"Authorization": f"Bearer {token}"}
    else:
        os.environ.pop("CANON_API_SECRET", None)
    try:
        app = create_app(project, str(warehouse), reload_interval_s=0, query_timeout_s=5)
        yield schemathesis.openapi.from_asgi("/openapi.json", app), headers
        shutdown_lifespans()
    finally:
        if saved is None:
            os.environ.pop("CANON_API_SECRET", None)
        else:
            os.environ["CANON_API_SECRET"] = saved


def test_schemathesis_finds_no_server_error(server):
    from hypothesis import HealthCheck, given, settings

    schema, api_headers = server
    operations = [result.ok() for result in schema.get_all_operations()]
    names = {f"{op.method.upper()} {op.path}" for op in operations}
    assert len(operations) >= 25 and {"GET /cubejs-api/v1/load", "POST /cubejs-api/v1/load",
                                      "POST /cubejs-api/v1/sql", "POST /v1/query"} <= names, names
    failures, counts, started, statuses = [], {}, time.monotonic(), []
    for op in operations:
        sent: list[int] = []

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def one(case):
            response = case.call(headers=api_headers)
            sent.append(response.status_code)
            statuses.append(response.status_code)
            timed_out = response.status_code == 504 and response.json().get("code") == "query_timeout"
            assert response.status_code < 500 or timed_out, (
                f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:300]} -> "
                f"{response.status_code} {response.text[:300]}")
            if response.status_code >= 400:  # every refusal says what is wrong
                body = response.json()
                assert body.get("message") or body.get("error"), response.text[:300]

        try:
            one()
        except AssertionError as error:
            failures.append(str(error)[:800])
        counts[f"{op.method.upper()} {op.path}"] = len(sent)
    elapsed = time.monotonic() - started
    print(f"schemathesis ({'with a token' if api_headers else 'open'}): {len(operations)} operations, "
          f"{sum(counts.values())} requests in {elapsed:.1f} s")
    assert not failures, "\n".join(failures)
    if api_headers:  # the token got every request past authentication, to the policies and the endpoints
        assert 401 not in statuses and statuses.count(200) >= len(operations) // 2, sorted(set(statuses))
    # parameters are declared: every operation that takes input got several distinct examples
    assert all(n >= 1 for n in counts.values()) and counts["GET /cubejs-api/v1/load"] > 1, counts
