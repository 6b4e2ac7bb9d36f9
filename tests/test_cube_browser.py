"""Cube's JavaScript client in a real headless browser, on another origin than Canon (issues 12 and 16).

The client (`@cubejs-client/core`, bundled with esbuild as a web app would ship it) runs in a page
served from one loopback port and calls `canon serve` on another: CORS preflights, the token in
`Authorization`, the answer equal to hand-written SQL. A page on an origin not in `cors_origins` gets
nothing.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
from html import unescape
from pathlib import Path

import jwt
import pytest

from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo
from tests.support.servers import free_port, start_serve

pytestmark = [pytest.mark.node, pytest.mark.slow]

CLIENT_DIR = Path(__file__).parent / "cube_client"
SECRET = "browser-test-secret-browser-test-secret"
QUERY = {"measures": ["sales.revenue"], "dimensions": ["sales.product_category"]}
HAND = ("SELECT p.category, SUM(oi.quantity * oi.unit_price - oi.discount_amount) FROM order_items oi "
        "JOIN orders o ON o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
        "WHERE o.status = 'completed' GROUP BY 1")
PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="client.js"></script></head>
<body><script>runCanonQuery({api}, {token}, {query});</script></body></html>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("the browser test needs Debian's chromium (.ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if not (CLIENT_DIR / "node_modules" / "esbuild").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(CLIENT_DIR)],
                       check=True, capture_output=True, timeout=600)
    folder = tmp_path_factory.mktemp("page")
    subprocess.run([str(CLIENT_DIR / "node_modules" / ".bin" / "esbuild"), str(CLIENT_DIR / "browser_entry.js"),
                    "--bundle", "--format=iife", "--platform=browser", f"--outfile={folder / 'client.js'}"],
                   check=True, capture_output=True, timeout=120, cwd=CLIENT_DIR)
    return folder


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_page(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_page(folder: Path, page_port: int, api_url: str, token: str, profile: Path) -> dict:
    (folder / "index.html").write_text(PAGE.format(api=json.dumps(api_url), token=json.dumps(token),
                                                   query=json.dumps(QUERY)))
    page = serve_page(folder, page_port)
    try:
        for _ in range(3):  # the virtual time budget runs out before a slow first answer now and then
            done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                   "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                   "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=20000",
                                   "--dump-dom", f"http://127.0.0.1:{page_port}/index.html"],
                                  capture_output=True, text=True, timeout=120)
            dom = done.stdout
            for attribute in ("data-result", "data-error"):
                marker = f'{attribute}="'
                if marker in dom:
                    value = unescape(dom.split(marker, 1)[1].split('"', 1)[0])
                    return {attribute: json.loads(value) if attribute == "data-result" else value}
            time.sleep(1)
        raise AssertionError(f"the page never answered: {dom[-2000:]} {done.stderr[-2000:]}")
    finally:
        page.shutdown()


@pytest.fixture(scope="module")
def canon(tmp_path_factory):
    page_port = free_port()
    project = copy_project(tmp_path_factory.mktemp("browser") / "project")
    with (project / "canon.yml").open("a") as config:
        config.write(f"cors_origins: [http://127.0.0.1:{page_port}]\n")
    server = start_serve(project, warehouse=shared_demo(), env={"CANON_API_SECRET": SECRET})
    try:
        yield {"url": server.url, "page_port": page_port}
    finally:
        server.stop(timeout=10)


def token() -> str:
    return jwt.encode({"sub": "browser", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


def test_cube_client_in_a_browser_on_another_origin(canon, bundle, tmp_path):
    answer = run_page(bundle, canon["page_port"], canon["url"] + "/cubejs-api/v1", token(), tmp_path / "profile")
    assert "data-result" in answer, answer
    rows = [[r["sales.product_category"], float(r["sales.revenue"])] for r in answer["data-result"]["rows"]]
    warehouse = open_warehouse(str(shared_demo()))
    try:
        assert_same(rows, [list(r) for r in warehouse.execute(HAND)[1]], keys=1)
    finally:
        warehouse.close()
    assert answer["data-result"]["cubes"] > 0


def test_an_origin_not_listed_gets_nothing(canon, bundle, tmp_path):
    other_port = free_port()  # a page on another port is another origin, not in cors_origins
    answer = run_page(bundle, other_port, canon["url"] + "/cubejs-api/v1", token(), tmp_path / "profile")
    assert "data-error" in answer, answer


def test_a_bad_token_is_refused_in_the_browser(canon, bundle, tmp_path):
    answer = run_page(bundle, canon["page_port"], canon["url"] + "/cubejs-api/v1", "not-a-token", tmp_path / "profile")
    assert "data-error" in answer and "Invalid token" in answer["data-error"], answer
