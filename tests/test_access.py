"""Who may see what (issue 12): tokens, policies on every path, the audit log — on DuckDB and PostgreSQL.

The app runs in process (FastAPI's TestClient, with its lifespan) over a copy of the demo project whose
canon.yml declares the issue's three policies, a SCRAM user, and the audit log. Numbers are checked
against hand-written SQL over the raw tables: a DE country manager's revenue equals the DE rows of the
unrestricted answer, by month, by product category (a query that never names customers), through the
Cube API and over the wire with SUM(revenue).
"""

from __future__ import annotations

import json
import os
import time

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from canon.server.http_api import create_app
from canon.server.runtime.audit import read_audit
from canon.server.runtime.authn import ScramVerifier
from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import copy_project

SECRET = "test-secret-for-canon-access-policies-0123456789"
ANN_PASSWORD = "ann-wire-password"

POLICIES = """
access:
  default: deny
  policies:
    - name: country_managers
      when: "user.role = 'country_manager'"
      row_filter: "customer.country_code = {{ user.country }}"
      deny: [ad_spend, cac, cost_per_lead, cost_per_order]
    - name: agency
      when: "user.role = 'agency'"
      deny: ["customer.*"]
    - name: finance
      when: "user.role in ('finance', 'admin')"
users:
  ann:
    password: "%s"
    attributes: {role: country_manager, country: FR}
cors_origins: [https://app.example.com]
audit:
  path: audit/audit.log
"""

REVENUE = ("SELECT {keys} SUM(oi.quantity * oi.unit_price - oi.discount_amount) FROM order_items oi "
           "JOIN orders o ON o.order_id = oi.order_id JOIN customers c ON c.customer_id = o.customer_id "
           "JOIN products p ON p.product_id = oi.product_id WHERE o.status = 'completed' {where} {group}")


def token(claims: dict | None = None, *, secret: str = SECRET, expires_in: int = 600, **extra) -> str:
    payload = {"sub": "tester", "exp": int(time.time()) + expires_in, **(claims or {}), **extra}
    return jwt.encode(payload, secret, algorithm="HS256")


DE = {"sub": "greta", "role": "country_manager", "country": "DE"}
AGENCY = {"sub": "adam", "role": "agency"}
FINANCE = {"sub": "fiona", "role": "finance"}
NOBODY = {"sub": "nina", "role": "intern"}


def bearer(claims) -> dict:
    return {"Authorization": f"Bearer {token(claims)}"}


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    project = copy_project(root / "project")
    verifier = ScramVerifier.make(ANN_PASSWORD).text()
    with (project / "canon.yml").open("a") as config:
        config.write(POLICIES % verifier)
    if request.param == "duckdb":
        from tests.support.project import shared_demo

        url = str(shared_demo())
    else:
        url = request.getfixturevalue("pg_demo_url")
    old = os.environ.get("CANON_API_SECRET")
    os.environ["CANON_API_SECRET"] = SECRET
    try:
        app = create_app(project, url, reload_interval_s=0, pg=("127.0.0.1", 0))
        with TestClient(app) as client:
            warehouse = open_warehouse(url)
            yield {"client": client, "project": project, "warehouse": warehouse,
                   "pg_port": app.state.runtime.pg_port, "kind": request.param}
            warehouse.close()
    finally:
        if old is None:
            os.environ.pop("CANON_API_SECRET", None)
        else:
            os.environ["CANON_API_SECRET"] = old


def hand(site, *, keys: str = "", where: str = "", group: str = "") -> list:
    _, rows = site["warehouse"].execute(REVENUE.format(keys=keys, where=where, group=group))
    return [list(r) for r in rows]


def query(site, claims, body: dict, status: int = 200):
    response = site["client"].post("/v1/query", json=body, headers=bearer(claims))
    assert response.status_code == status, response.text
    return response.json()


# --- identity -----------------------------------------------------------------------------------------------


def test_tokens_are_required_and_checked(site):
    client = site["client"]
    body = {"metrics": ["revenue"]}
    assert client.get("/healthz").status_code == 200  # public
    none = client.post("/v1/query", json=body)
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    assert none.json()["code"] == "unauthenticated"
    expired = token(FINANCE, expires_in=-60)
    wrong = token(FINANCE, secret="another-secret-another-secret-another")
    unsigned = jwt.encode({"sub": "x", "role": "finance"}, None, algorithm="none")
    for bad in (expired, wrong, unsigned, "garbage", "a.b.c", "Bearer ", "x" * 20000):
        response = client.post("/v1/query", json=body, headers={"Authorization": bad})
        assert response.status_code == 401, (bad[:40], response.text)
        assert response.json()["message"]
    assert "expired" in client.get("/v1/metrics", headers={"Authorization": expired}).json()["message"]
    # with and without "Bearer ", as Cube's clients send it
    assert client.get("/v1/metrics", headers={"Authorization": token(FINANCE)}).status_code == 200
    assert client.get("/v1/metrics", headers=bearer(FINANCE)).status_code == 200


def test_cube_api_answers_403_in_cubes_shape(site):
    client = site["client"]
    missing = client.post("/cubejs-api/v1/load", json={"query": {"measures": ["sales.revenue"]}})
    assert missing.status_code == 403 and missing.json()["error"] == "Authorization header isn't set"
    bad = client.get("/cubejs-api/v1/meta", headers={"Authorization": "not-a-token"})
    assert bad.status_code == 403 and bad.json()["error"] == "Invalid token"


def test_cors_preflight_and_headers(site):
    client = site["client"]
    preflight = client.options("/cubejs-api/v1/load", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    answer = client.get("/v1/metrics", headers={"Origin": "https://app.example.com", **bearer(FINANCE)})
    assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
    other = client.options("/v1/query", headers={"Origin": "https://evil.example.org",
                                                 "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


# --- row filters: the numbers -----------------------------------------------------------------------------------


def test_country_manager_total_equals_the_de_rows(site):
    got = query(site, DE, {"metrics": ["revenue"]})["rows"]
    assert_same(got, hand(site, where="AND c.country_code = 'DE'"), keys=0)
    everything = query(site, FINANCE, {"metrics": ["revenue"]})["rows"]
    assert_same(everything, hand(site), keys=0)
    assert got[0][0] < everything[0][0]


def test_row_filter_applies_when_the_query_never_names_customers(site):
    got = query(site, DE, {"metrics": ["revenue"], "dimensions": ["product.category"]})["rows"]
    want = hand(site, keys="p.category,", where="AND c.country_code = 'DE'", group="GROUP BY 1")
    assert_same(got, want, keys=1)
    by_month = query(site, DE, {"metrics": ["revenue"], "dimensions": ["metric_time.month"]})["rows"]
    month = "DATE_TRUNC('month', o.ordered_at)::DATE,"
    assert_same(by_month, hand(site, keys=month, where="AND c.country_code = 'DE'", group="GROUP BY 1"), keys=1)


def test_list_claim_becomes_an_in_list(site):
    claims = {**DE, "country": ["DE", "FR"]}
    got = query(site, claims, {"metrics": ["revenue"]})["rows"]
    assert_same(got, hand(site, where="AND c.country_code IN ('DE', 'FR')"), keys=0)


def test_compile_shows_the_row_filter(site):
    response = site["client"].post("/v1/compile", json={"metrics": ["revenue"]}, headers=bearer(DE))
    assert response.status_code == 200 and "'DE'" in response.json()["sql"]


@pytest.mark.parametrize("hostile", ["DE' OR '1'='1", "'; drop table orders; --", "DE\u2019 OR 1=1", "\\' OR 1=1",
                                     "DE\x00", ["DE", "x') OR ('1'='1"]])
def test_hostile_claims_stay_literals(site, hostile):
    response = site["client"].post("/v1/query", json={"metrics": ["revenue", "order_count"]},
                                   headers=bearer({**DE, "country": hostile}))
    if response.status_code == 400:  # a NUL character is refused as a value, like in any filter
        assert "NUL" in response.json()["message"]
        return
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    if isinstance(hostile, list):  # an IN list of literals: DE's rows, nothing from the injection
        assert_same([[rows[0][0]]], hand(site, where="AND c.country_code = 'DE'"), keys=0)
    else:
        assert rows in ([], [[None, 0]], [[None, None]]) or rows[0][1] in (0, None), rows


def test_nested_claim_and_missing_claim_fail_closed(site):
    for claims in ({**DE, "country": {"code": "DE"}}, {"sub": "x", "role": "country_manager"}):
        body = query(site, claims, {"metrics": ["revenue"]}, status=403)
        assert body["code"] == "access_denied" and "country_managers" in body["message"]


def test_metric_that_cannot_reach_the_filter_is_refused(site):
    body = query(site, DE, {"metrics": ["clicks"]}, status=403)
    assert "country_managers" in body["message"] and "cannot be narrowed" in body["message"]


# --- members: denied everywhere ----------------------------------------------------------------------------------


def test_denied_metrics_and_dimensions_are_403(site):
    assert query(site, DE, {"metrics": ["cac"]}, status=403)["code"] == "access_denied"
    assert query(site, AGENCY, {"metrics": ["revenue"], "dimensions": ["customer.segment"]}, status=403)
    assert query(site, AGENCY, {"metrics": ["revenue"], "where": ["customer.country_code = 'DE'"]}, status=403)
    # the extension model keyed on customer is behind the same glob
    assert query(site, AGENCY, {"metrics": ["revenue"], "dimensions": ["customer.rfm_segment"]}, status=403)
    assert query(site, NOBODY, {"metrics": ["revenue"]}, status=403)["code"] == "access_denied"
    assert query(site, FINANCE, {"metrics": ["cac"]})["rows"]


def test_denied_members_disappear_from_listings(site):
    client = site["client"]
    names = lambda claims: {m["name"] for m in client.get("/v1/metrics", headers=bearer(claims)).json()["metrics"]}  # noqa: E731
    assert {"cac", "ad_spend", "clicks"} <= names(FINANCE)
    assert not {"cac", "ad_spend", "cost_per_order", "clicks"} & names(DE) and "revenue" in names(DE)
    assert names(NOBODY) == set()
    dims = client.get("/v1/dimensions", params={"metrics": "revenue"}, headers=bearer(AGENCY)).json()["dimensions"]
    refs = {d["ref"] for d in dims}
    assert refs and not any(r.startswith("customer.") for r in refs)
    assert client.get("/v1/metrics/cac", headers=bearer(DE)).status_code == 403
    hits = client.get("/v1/search", params={"q": "acquisition cost"}, headers=bearer(DE)).json()["results"]
    assert not any(h["kind"] == "metric" and h["name"] == "cac" for h in hits)
    lineage = client.get("/v1/metrics/ad_spend/lineage", headers=bearer(AGENCY)).json()
    assert any(n["name"] == "cac" for n in lineage["nodes"])  # agency may see cac
    up = client.get("/v1/metrics/revenue/lineage", headers=bearer(DE)).json()
    assert not any(n["kind"] == "metric" and n["name"] in ("cac", "cost_per_order") for n in up["nodes"])


def test_dimension_values_follow_the_policies(site):
    client = site["client"]
    values = client.get("/v1/dimensions/customer.country_code/values", headers=bearer(DE)).json()
    assert values["values"] == ["DE"]
    assert client.get("/v1/dimensions/customer.segment/values", headers=bearer(AGENCY)).status_code == 403
    # product values cannot be narrowed to DE customers without a metric: refused, not leaked
    assert client.get("/v1/dimensions/product.category/values", headers=bearer(DE)).status_code == 403
    assert len(client.get("/v1/dimensions/product.category/values", headers=bearer(FINANCE)).json()["values"]) > 3


def test_cube_api_obeys_the_row_filter(site):
    client = site["client"]
    meta = client.get("/cubejs-api/v1/meta", headers={"Authorization": token(DE)}).json()
    members = {m["name"] for cube in meta["cubes"] for kind in ("measures", "dimensions") for m in cube[kind]}
    assert not any(name.endswith(".cac") or name.endswith(".ad_spend") for name in members)
    load = client.post("/cubejs-api/v1/load", json={"query": {"measures": ["sales.revenue"]}},
                       headers={"Authorization": token(DE)})
    assert load.status_code == 200, load.text
    value = float(load.json()["data"][0]["sales.revenue"])
    assert_same([[value]], hand(site, where="AND c.country_code = 'DE'"), keys=0, rel=1e-6)
    sql = client.post("/cubejs-api/v1/sql", json={"query": {"measures": ["sales.revenue"]}},
                      headers={"Authorization": token(DE)}).json()
    assert "'DE'" in json.dumps(sql)  # the SQL shown is the SQL run: the row filter is in it
    denied = client.post("/cubejs-api/v1/load", json={"query": {"measures": ["marketing.cac"]}},
                         headers={"Authorization": token(DE)})
    assert denied.status_code in (400, 403), denied.text


# --- the wire --------------------------------------------------------------------------------------------------


def connect(site, user: str, password: str):
    return psycopg.connect(host="127.0.0.1", port=site["pg_port"], user=user, password=password, dbname="canon",
                           connect_timeout=10, autocommit=True)


def test_wire_token_as_password(site):
    with connect(site, "any-bi-tool", token(DE)) as conn:
        got = conn.execute("SELECT SUM(revenue) FROM sales").fetchall()
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'marketing'").fetchall()}
        with pytest.raises(psycopg.Error) as denied:
            conn.execute("SELECT cac FROM marketing").fetchall()
    assert_same([[float(got[0][0])]], hand(site, where="AND c.country_code = 'DE'"), keys=0, rel=1e-9)
    assert "sales" in tables
    assert "cac" not in columns and "ad_spend" not in columns
    assert denied.value.sqlstate == "42501", denied.value


def test_wire_declared_scram_user_and_refusals(site):
    with connect(site, "ann", ANN_PASSWORD) as conn:
        got = conn.execute("SELECT SUM(revenue) FROM sales").fetchall()
    assert_same([[float(got[0][0])]], hand(site, where="AND c.country_code = 'FR'"), keys=0, rel=1e-9)
    for user, password in (("ann", "wrong"), ("nobody", "x"), ("x", token(FINANCE, expires_in=-10))):
        with pytest.raises(psycopg.OperationalError) as refused:
            connect(site, user, password)
        assert "password authentication failed" in str(refused.value)


# --- audit ------------------------------------------------------------------------------------------------------


def test_audit_log_records_queries_and_no_secrets(site):
    query(site, DE, {"metrics": ["revenue"], "dimensions": ["product.category"]})
    query(site, DE, {"metrics": ["cac"]}, status=403)
    path = site["project"] / "audit" / "audit.log"
    text = path.read_text()
    assert SECRET not in text and "eyJ" not in text and ANN_PASSWORD not in text
    entries = list(read_audit(path, user="greta"))
    ok = [e for e in entries if e["outcome"] == "ok" and e["dimensions"] == ["product.category"]]
    assert ok and ok[-1]["policies"] == ["country_managers"] and ok[-1]["rows"] > 0
    assert ok[-1]["sql_sha256"] and "'DE'" in " ".join(ok[-1]["filters"]) and ok[-1]["via"] == "http"
    assert any(e["outcome"] == "denied" and e["metrics"] == ["cac"] for e in entries)
    for entry in entries:
        assert set(entry) >= {"time", "user", "via", "metrics", "dimensions", "filters", "policies", "sql_sha256",
                              "rows", "elapsed_ms", "outcome"}
    json.dumps(entries)


# --- recommendations: a snapshot of every basket, so row filters fail closed ---------------------------------------


def test_recommendation_paths_fail_closed(site):
    client = site["client"]
    for path in ("/v1/cross-sell?level=category&value=Phones", "/v1/recommendations/1", "/v1/upsell/1"):
        refused = client.get(path, headers=bearer(DE))
        assert refused.status_code == 403 and "country_managers" in refused.json()["message"], refused.text
        assert client.get(path, headers=bearer(NOBODY)).status_code == 403
    assert client.get("/v1/recommendations/1", headers=bearer(AGENCY)).status_code == 403
    feedback = client.post("/v1/recommendations/feedback", headers=bearer(DE),
                           json={"customer_id": 1, "product_id": 1, "event": "click"})
    assert feedback.status_code == 403
    assert client.get("/v1/cross-sell?level=category&value=Phones", headers=bearer(AGENCY)).status_code == 200
    assert client.get("/v1/cross-sell?level=category&value=Phones", headers=bearer(FINANCE)).status_code == 200


# --- serving without authentication is for loopback only ---------------------------------------------------------


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["pg", "--port", "0"]])
def test_open_server_refuses_a_public_address(tmp_path, command):
    import subprocess
    import sys

    project = copy_project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if k not in ("CANON_API_SECRET", "CANON_PG_PASSWORD", "CANON_PG_USER")}
    done = subprocess.run([sys.executable, "-m", "canon.server.cli", *command, "--project", str(project),
                           "--host", "0.0.0.0"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0
    assert "without authentication" in done.stderr and "CANON_API_SECRET" in done.stderr, done.stderr


# --- settings: RS256, live policy edits, the audit CLI -------------------------------------------------------------


@pytest.fixture
def small_site(tmp_path, monkeypatch):
    """A DuckDB-only app whose canon.yml the test may edit."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.support.project import shared_demo

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "api.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    project = copy_project(tmp_path / "project")
    config = project / "canon.yml"
    config.write_text(config.read_text() + f"auth: {{public_key_file: {tmp_path / 'api.pem'}}}\n"
                      "access: {default: deny, policies: [{name: finance, when: \"user.role = 'finance'\"}]}\n")
    monkeypatch.delenv("CANON_API_SECRET", raising=False)
    app = create_app(project, str(shared_demo()), reload_interval_s=0)
    with TestClient(app) as client:
        yield {"client": client, "project": project, "key": key}


def test_rs256_tokens_and_live_policy_edits(small_site):
    client, key = small_site["client"], small_site["key"]
    sign = lambda claims: jwt.encode({"sub": "r", "exp": int(time.time()) + 600, **claims}, key, algorithm="RS256")  # noqa: E731
    assert client.get("/v1/metrics", headers=bearer(FINANCE)).status_code == 401  # HS256 is not accepted here
    assert client.post("/v1/query", json={"metrics": ["revenue"]}, headers={"Authorization": sign(FINANCE)}).status_code == 200
    sales = {"Authorization": sign({"role": "sales"})}
    assert client.post("/v1/query", json={"metrics": ["revenue"]}, headers=sales).status_code == 403
    config = small_site["project"] / "canon.yml"
    config.write_text(config.read_text().replace("user.role = 'finance'", "user.role in ('finance', 'sales')"))
    deadline = time.monotonic() + 10
    while client.post("/v1/query", json={"metrics": ["revenue"]}, headers=sales).status_code != 200:
        assert time.monotonic() < deadline, "the policy edit was not picked up"
        time.sleep(0.3)
    config.write_text(config.read_text().replace("access:", "access: [broken"))  # invalid: keeps the last good one
    time.sleep(1.2)
    assert client.post("/v1/query", json={"metrics": ["revenue"]}, headers=sales).status_code == 200


def test_audit_cli_reads_the_log(site):
    from click.testing import CliRunner

    from canon.server.cli import main

    query(site, FINANCE, {"metrics": ["order_count"], "dimensions": ["order.sales_channel"]})
    out = CliRunner().invoke(main, ["audit", "--project", str(site["project"]), "--user", "fiona", "--format", "json"])
    assert out.exit_code == 0, out.output
    entries = json.loads(out.output)
    assert any(e["metrics"] == ["order_count"] and e["outcome"] == "ok" for e in entries)
    assert all(e["user"] == "fiona" for e in entries)
    table = CliRunner().invoke(main, ["audit", "--project", str(site["project"]), "--since", "2000-01-01"])
    assert table.exit_code == 0 and "fiona@http" in table.output
    bad = CliRunner().invoke(main, ["audit", "--project", str(site["project"]), "--since", "yesterday-ish"])
    assert bad.exit_code != 0 and "--since" in bad.output


def test_audit_covers_the_wire_and_the_cube_api(site):
    site["client"].post("/cubejs-api/v1/load", json={"query": {"measures": ["sales.order_count"]}},
                        headers={"Authorization": token(DE)})
    with connect(site, "bi", token(DE)) as conn:
        conn.execute("SELECT SUM(order_count) FROM sales").fetchall()
    entries = list(read_audit(site["project"] / "audit" / "audit.log", user="greta"))
    vias = {e["via"] for e in entries if e["metrics"] == ["order_count"] and e["outcome"] == "ok"}
    assert {"cube", "pgwire"} <= vias, vias
    assert all(e["policies"] == ["country_managers"] for e in entries if e["metrics"] == ["order_count"])


# --- the matrix: every path × every kind of caller ---------------------------------------------------------------

CUBE_QUERY = {"query": {"measures": ["sales.revenue"], "dimensions": ["sales.product_category"]}}
PATHS = {
    "metrics": ("GET", "/v1/metrics", None),
    "metric": ("GET", "/v1/metrics/revenue", None),
    "dimensions": ("GET", "/v1/dimensions?metrics=revenue", None),
    "search": ("GET", "/v1/search?q=revenue", None),
    "glossary": ("GET", "/v1/glossary", None),
    "lineage": ("GET", "/v1/metrics/revenue/lineage", None),
    "query": ("POST", "/v1/query", {"metrics": ["revenue"], "dimensions": ["product.category"]}),
    "compile": ("POST", "/v1/compile", {"metrics": ["revenue"]}),
    "values": ("GET", "/v1/dimensions/customer.country_code/values", None),
    "status": ("GET", "/v1/status", None),
    "cube_meta": ("GET", "/cubejs-api/v1/meta", None),
    "cube_load": ("POST", "/cubejs-api/v1/load", CUBE_QUERY),
    "cube_sql": ("POST", "/cubejs-api/v1/sql", CUBE_QUERY),
    "cube_dry_run": ("POST", "/cubejs-api/v1/dry-run", CUBE_QUERY),
    "cross_sell": ("GET", "/v1/cross-sell?level=category&value=Phones", None),
    "recommend": ("GET", "/v1/recommendations/1", None),
    "upsell": ("GET", "/v1/upsell/1", None),
}
ALL_OK = {name: 200 for name in PATHS}
EXPECTED = {
    "finance": ALL_OK,
    "country_manager": {**ALL_OK, "cross_sell": 403, "recommend": 403, "upsell": 403},
    "agency": {**ALL_OK, "values": 403, "recommend": 403, "upsell": 403},
    "no policy": {**ALL_OK, "metric": 403, "dimensions": 403, "lineage": 403, "query": 403, "compile": 403,
                  "values": 403, "cube_load": 403, "cube_sql": 403, "cube_dry_run": 403, "cross_sell": 403,
                  "recommend": 403, "upsell": 403},
}
CALLERS = {"finance": FINANCE, "country_manager": DE, "agency": AGENCY, "no policy": NOBODY}


def call(client, path: str, headers: dict):
    method, url, body = PATHS[path]
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("caller", ["no token", "bad token", *CALLERS])
def test_every_path_for_every_caller(site, caller):
    client = site["client"]
    problems = []
    for path in PATHS:
        cube = path.startswith("cube")
        if caller == "no token":
            headers, want = {}, 403 if cube else 401
        elif caller == "bad token":
            headers, want = {"Authorization": token(FINANCE, secret="wrong-secret-wrong-secret-wrong-secret")}, \
                403 if cube else 401
        else:
            headers, want = bearer(CALLERS[caller]), EXPECTED[caller][path]
        response = call(client, path, headers)
        if response.status_code != want:
            problems.append(f"{path}: {response.status_code} (want {want}) {response.text[:200]}")
        elif want >= 400:
            body = response.json()
            if not (body.get("error") if cube else body.get("message")):
                problems.append(f"{path}: no message in {body}")
    assert not problems, "\n".join(problems)
    if caller == "no policy":  # listings are empty, not refused
        assert call(client, "metrics", bearer(NOBODY)).json()["metrics"] == []
        assert call(client, "cube_meta", {"Authorization": token(NOBODY)}).json()["cubes"] == []
        assert call(client, "search", bearer(NOBODY)).json()["results"] == []


def test_audit_lines_survive_a_killed_server(tmp_path):
    """Each line is written before the answer leaves: SIGKILL right after the answers loses none."""
    import signal

    import httpx

    from tests.support.project import shared_demo
    from tests.support.servers import start_serve

    project = copy_project(tmp_path / "project")
    with (project / "canon.yml").open("a") as config:
        config.write("access: {default: deny, policies: [{name: finance, when: \"user.role = 'finance'\"}]}\n")
    server = start_serve(project, warehouse=shared_demo(), env={"CANON_API_SECRET": SECRET})
    try:
        for channel in ("web", "app", "sales_assisted"):
            response = httpx.post(server.url + "/v1/query", headers=bearer(FINANCE), timeout=30, json={
                "metrics": ["order_count"], "where": [f"order.sales_channel = '{channel}'"]})
            assert response.status_code == 200, response.text
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    entries = list(read_audit(project / ".canon" / "audit.log", user="fiona"))
    assert [e["filters"] for e in entries] == [[f"order.sales_channel = '{c}'"] for c in ("web", "app", "sales_assisted")]
