"""canon.Client, the notebook client (issue 17), against a running `canon serve`: answers equal to
hand-written SQL, DataFrames, errors as Canon's own classes, the token's policies applied."""

from __future__ import annotations

import time

import jwt
import pytest

import canon
from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo
from tests.support.servers import start_serve

SECRET = "client-test-secret-client-test-secret-0"
HAND = ("SELECT p.category, SUM(oi.quantity * oi.unit_price - oi.discount_amount) FROM order_items oi "
        "JOIN orders o ON o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
        "JOIN customers c ON c.customer_id = o.customer_id WHERE o.status = 'completed' {where} GROUP BY 1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("client") / "project")
    with (project / "canon.yml").open("a") as config:
        config.write("access: {default: deny, policies: [{name: analysts, when: \"user.role = 'analyst'\"}, "
                     "{name: managers, when: \"user.role = 'manager'\", "
                     "row_filter: 'customer.country_code = {{ user.country }}', deny: [cac]}]}\n")
    started = start_serve(project, warehouse=shared_demo(), env={"CANON_API_SECRET": SECRET})
    yield started.url
    started.stop(timeout=10)


def token(**claims) -> str:
    return jwt.encode({"sub": "nb", "exp": int(time.time()) + 600, **claims}, SECRET, algorithm="HS256")


def hand(where: str = "") -> list:
    warehouse = open_warehouse(str(shared_demo()))
    try:
        return [list(r) for r in warehouse.execute(HAND.format(where=where))[1]]
    finally:
        warehouse.close()


def test_query_catalog_and_dataframe(server):
    with canon.Client(server, token=token(role="analyst")) as client:
        answer = client.query("revenue", by="product.category")
        assert_same(answer.rows, hand(), keys=1)
        frame = answer.to_pandas()
        assert list(frame.columns) == ["product.category", "revenue"] and len(frame) == len(answer.rows)
        assert "<table>" in answer._repr_html_() and "revenue" in answer._repr_html_()
        monthly = client.query(["revenue"], by=["metric_time.month"], start="2025-01-01", end="2025-03-31").to_pandas()
        assert str(monthly["metric_time.month"].dtype).startswith("datetime64") and len(monthly) == 3
        assert "revenue" in {m["name"] for m in client.metrics()}
        assert client.metric("aov")["type"] == "ratio"
        assert any(d["ref"] == "product.category" for d in client.dimensions("revenue"))
        assert "SELECT" in client.compile("revenue", by="product.category").upper()
        assert client.saved_query("customer_category_spend", limit=3).names == [
            "customer.customer_id", "product.category", "revenue"]
        assert client.search("acquisition cost")


def test_errors_are_canon_errors(server):
    with canon.Client(server, token=token(role="analyst")) as client:
        with pytest.raises(canon.UnknownNameError) as unknown:
            client.query("revenu")
        assert "revenue" in str(unknown.value)
    with canon.Client(server) as anonymous, pytest.raises(canon.AuthenticationError):
        anonymous.metrics()
    with canon.Client(server, token=token(role="manager", country="DE")) as manager:
        assert_same(manager.query("revenue", by="product.category").rows, hand("AND c.country_code = 'DE'"), keys=1)
        with pytest.raises(canon.AccessDeniedError) as denied:
            manager.query("cac")
        assert "managers" in str(denied.value)


def test_arrow_answers_equal_json_and_hand_sql(server):
    """`Accept: application/vnd.apache.arrow.stream`: the same numbers as the JSON answer and hand SQL,
    typed (timestamps, int64 counts), the row filter of the token applied, errors still JSON."""
    import json

    import pyarrow as pa

    with canon.Client(server, token=token(role="manager", country="DE")) as client:
        table = client.query_arrow("revenue", by="product.category")
        assert table.column_names == ["product.category", "revenue"]
        assert_same([list(r.values()) for r in table.to_pylist()], hand("AND c.country_code = 'DE'"), keys=1)
        meta = json.loads(table.schema.metadata[b"canon"])
        assert "SELECT" in meta["sql"].upper() and meta["columns"][1] == {"name": "revenue", "type": "number"}
        monthly = client.query_arrow(["order_count"], by=["metric_time.month"], start="2025-01-01", end="2025-03-31")
        assert monthly.schema.field("metric_time.month").type == pa.timestamp("us")
        assert monthly.schema.field("order_count").type == pa.int64()
        json_rows = client.query(["order_count"], by=["metric_time.month"], start="2025-01-01", end="2025-03-31").rows
        assert monthly.column("order_count").to_pylist() == [r[1] for r in json_rows]
        with pytest.raises(canon.AccessDeniedError):
            client.query_arrow("cac")
