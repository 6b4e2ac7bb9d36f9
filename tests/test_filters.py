"""User filters: an allow-list, checked on the AST.

Two corpora: hostile strings that must be refused with a FilterError before any SQL exists, and
legitimate filters that must compile in every dialect with their literals quoted as literals.
Every fixed bug adds a case here.
"""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from canon.compiler.compile import DIALECTS, compile_request, load_catalog
from canon.compiler.errors import FilterError
from canon.compiler.request import QueryRequest
from canon.compiler.sqlexpr import parse_filter
from tests.support.cli import ROOT, demo_warehouse


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


HOSTILE = [
    # subqueries: IN, EXISTS, scalar, BETWEEN bounds, inside functions and lists
    "product.category IN (SELECT category FROM products)",
    "product.category IN (SELECT * FROM read_csv('/etc/passwd'))",
    "product.category IN (SELECT 1 UNION SELECT 2)",
    "product.category IN ('a', (SELECT 'b'))",
    "EXISTS (SELECT 1 FROM orders)",
    "product.category = 'x' AND EXISTS (SELECT 1)",
    "NOT EXISTS (SELECT 1 FROM customers)",
    "product.list_price > (SELECT max(list_price) FROM products)",
    "product.list_price BETWEEN (SELECT 1) AND 2",
    "coalesce(product.category, (SELECT 'x')) = 'x'",
    "product.category = (VALUES ('x'))",
    # statements, stacked or alone
    "product.category = 'x'; DROP TABLE orders",
    "1=1; DROP TABLE orders",
    "DROP TABLE orders",
    "INSERT INTO orders VALUES (1)",
    "DELETE FROM orders",
    "UPDATE orders SET status = 'x'",
    "COPY orders TO '/tmp/x.csv'",
    "ATTACH '/tmp/x.db' AS x",
    "CREATE TABLE x AS SELECT 1",
    "PRAGMA version",
    "SET x = 1",
    "CALL pragma_version()",
    "INSTALL httpfs",
    "LOAD httpfs",
    # table functions and file access
    "product.category = read_csv('/etc/passwd')",
    "product.category IN (SELECT * FROM read_parquet('x.parquet'))",
    "pg_read_file('/etc/passwd') = 'x'",
    "len(glob('/*')) > 0",
    "product.category = lower(upper(lower(read_text('/etc/passwd'))))",
    "query('SELECT 1') IS NOT NULL",
    "unnest([1]) = 1",
    # unknown or unsafe functions
    "product.category = getenv('HOME')",
    "system('ls') = 0",
    "current_setting('x') = 'y'",
    "product.category = 'x' OR sleep(10)",
    "product.category = version()",
    "product.category = current_user",
    "product.category = chr(39)",
    "regexp_matches(product.category, '.*')",
    # comments
    "product.category = 'a' /* comment */ OR 1=1",
    "product.category = 'a' -- OR 1=1",
    "/* x */ product.category = 'a'",
    "product.category = /**/ 'a'",
    # string-escape tricks
    "product.category = 'x'' OR 1=1 --",
    "product.category = 'x' OR '1'='1' --'",
    "product.category = E'\\x27'",
    "product.category = $$x$$",
    "product.category = U&'\\0027'",
    # set operators and query clauses
    "product.category = 'x' UNION SELECT 1",
    "product.category = 'x' UNION ALL SELECT password FROM users",
    "product.category INTERSECT SELECT 1",
    "product.category = 'a' EXCEPT SELECT 'b'",
    "product.category = 'a' ORDER BY 1",
    "product.category = 'a' LIMIT 1",
    "product.category = 'x' GROUP BY 1",
    # aggregates, windows, stars
    "row_number() OVER () = 1",
    "sum(product.list_price) > 10",
    "count(*) > 1",
    "*",
    "product.* = 1",
    # casts to odd types
    "CAST(product.category AS BLOB) = 'x'",
    "CAST(product.category AS JSON) = 'x'",
    "product.category::STRUCT(a INT) IS NULL",
    # lambdas, JSON operators, nested values, parameters
    "list_transform([1, 2], x -> x + 1) = [2, 3]",
    "lambda x: x + 1",
    "product.category->>'$.a' = 'x'",
    "product.category->'a' = 'x'",
    "[1, 2] = [1, 2]",
    "{'a': 1} IS NOT NULL",
    "$1 = 1",
    "? = 1",
    "product.category = :name",
    # other syntax outside the grammar
    "CASE WHEN 1=1 THEN TRUE END",
    "product.category SIMILAR TO 'x'",
    "product.category COLLATE \"C\" = 'x'",
    "#product.category = 1",
    # not a condition at all
    "",
    "   ",
    "1",
    "'x'",
    "product.category = 'x' AND",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_filter_is_refused(catalog, text):
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.code == "invalid_filter"
    assert str(caught.value).startswith("where: ")
    with pytest.raises(FilterError):  # and through the whole compiler, for every dialect
        compile_request(catalog, QueryRequest(metrics=["revenue"], where=[text]))


def test_hostile_corpus_is_large():
    assert len(HOSTILE) >= 40 and len(set(HOSTILE)) == len(HOSTILE)


def test_hostile_filter_in_affinity_query(catalog):
    with pytest.raises(FilterError):
        compile_request(catalog, QueryRequest(metrics=["cross_sell_score"],
                                              dimensions=["antecedent.category", "consequent.category"],
                                              where=["antecedent.category IN (SELECT category FROM products)"]))


def test_refusal_names_the_offending_node():
    with pytest.raises(FilterError) as caught:
        parse_filter("product.category = 'x' AND read_csv('/etc/passwd') IS NOT NULL", field="where[2]")
    assert str(caught.value).startswith("where[2]: \"READ_CSV('/etc/passwd')\" is not allowed in a filter — ")
    with pytest.raises(FilterError) as caught:
        parse_filter("product.category = 'a' -- OR 1=1")
    assert str(caught.value) == ("where: comments (-- or /* */) are not allowed in a filter — "
                                 "remove the comment; a filter is a single boolean expression")
    with pytest.raises(FilterError) as caught:
        parse_filter("CAST(product.category AS BLOB) = 'x'")
    assert str(caught.value).startswith("where: cast to ")


LEGIT = [
    "product.category = 'Coffee'",
    "product.category <> 'Coffee'",
    "product.category != 'Coffee'",
    "product.category IN ('Coffee', 'Audio')",
    "product.category NOT IN ('Coffee', 'Audio')",
    "product.list_price BETWEEN 10 AND 100",
    "product.list_price NOT BETWEEN 10 AND 100",
    "product.product_name LIKE '%phone%'",
    "product.product_name ILIKE '%PHONE%'",
    "product.product_name NOT LIKE 'x%'",
    "customer.country_code IS NULL",
    "customer.country_code IS NOT NULL",
    "product.product_name IS DISTINCT FROM 'x'",
    "NOT (product.category = 'Coffee')",
    "product.list_price * 2 > 100",
    "product.list_price - product.unit_cost >= 5",
    "product.list_price % 2 = 0",
    "-product.list_price < 0",
    "product.list_price > 1.5e1",
    "lower(product.category) = 'coffee'",
    "upper(customer.country_code) = 'US'",
    "coalesce(customer.country_code, 'ZZ') = 'ZZ'",
    "length(product.product_name) > 5",
    "trim(product.brand) = 'Acme'",
    "abs(product.list_price) > 1",
    "CAST(customer.customer_id AS VARCHAR) = '12'",
    "customer.customer_id IN (1, 2, 3)",
    "order.ordered_at >= CAST('2024-01-01' AS DATE)",
    "order.ordered_at < CAST('2025-01-01 00:00:00' AS TIMESTAMP)",
    "order.ordered_at >= DATE '2024-01-01'",
    "order.ordered_at >= TIMESTAMP '2024-01-01 10:00:00'",
    "order.ordered_at >= current_date - INTERVAL 30 DAY",
    "order.ordered_at <= current_timestamp",
    "order.ordered_at.month = CAST('2024-03-01' AS DATE)",
    "metric_time >= CAST('2024-01-01' AS DATE)",
    "metric_time.month = CAST('2024-03-01' AS DATE)",
    "order.is_attributed",
    "NOT order.is_attributed",
    "order.is_attributed = TRUE",
    "(product.category = 'Coffee' OR product.category = 'Audio') AND customer.segment = 'enterprise'",
    "product.category = 'Coffee' OR customer.segment = 'enterprise'",
    "product.product_name = 'O''Brien'",
    "product.product_name = ''",
    "product.product_name = 'naïve — ünïcödé'",
    "product.product_name = 'back\\slash'",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("text", LEGIT)
def test_legit_filter_compiles(catalog, text, dialect):
    compiled = compile_request(catalog, QueryRequest(metrics=["revenue"], where=[text]), dialect)
    statements = sqlglot.parse(compiled.sql, read=dialect)
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)
    assert not list(statements[0].find_all(exp.Drop, exp.Insert, exp.Delete, exp.Command))


def test_or_filter_stays_one_condition(catalog):
    """An OR in a user filter must not escape the metric's own filter (status = 'completed')."""
    compiled = compile_request(catalog, QueryRequest(
        metrics=["revenue"], where=["product.category = 'Coffee' OR product.category = 'Audio'"],
        start="2024-01-01"))
    where = sqlglot.parse_one(compiled.sql, read="duckdb").find(exp.Where).this

    def split(node):  # AND operands as written, parentheses kept
        return split(node.this) + split(node.expression) if isinstance(node, exp.And) else [node]

    conjuncts = split(where)
    assert not any(isinstance(c, exp.Or) for c in conjuncts), where.sql()
    assert any(c.sql() == "\"order\".status = 'completed'" for c in conjuncts), where.sql()


def test_or_filter_gives_the_right_number(catalog):
    """The same, by the numbers: OR-ing two categories cannot exceed the sum of each on its own."""
    warehouse = duckdb.connect(str(demo_warehouse()), read_only=True)
    try:
        def total(*where):
            sql = compile_request(catalog, QueryRequest(metrics=["revenue"], where=list(where))).sql
            return float(warehouse.execute(sql).fetchone()[0] or 0)

        categories = [row[0] for row in warehouse.execute(
            "SELECT DISTINCT category FROM products ORDER BY 1 LIMIT 2").fetchall()]
        a, b = (f"product.category = '{c}'" for c in categories)
        assert total(f"{a} OR {b}") == pytest.approx(total(a) + total(b))
        assert total(f"{a} OR {b}") < total() or len(categories) < 2
    finally:
        warehouse.close()


INJECTION = "x'); DROP TABLE orders; --"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_quote_in_value_stays_one_literal(catalog, dialect):
    quoted = INJECTION.replace("'", "''")
    compiled = compile_request(catalog, QueryRequest(
        metrics=["revenue"], dimensions=["product.category"],
        where=[f"product.product_name = '{quoted}'", "product.brand IN ('O''Brien', 'a\"b')"]), dialect, pretty=True)
    statements = [s for s in sqlglot.parse(compiled.sql, read=dialect) if s is not None]
    assert len(statements) == 1
    tree = statements[0]
    assert tree.find(exp.Drop) is None and tree.find(exp.Command) is None
    strings = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]
    assert strings.count(INJECTION) == 1
    assert "O'Brien" in strings and 'a"b' in strings
    tables = {t.name for t in tree.find_all(exp.Table)}
    assert tables <= {"order_items", "orders", "products", "_canon_lines"}, tables


def test_injection_literal_runs_as_a_literal_on_duckdb(catalog):
    """Executed for real: no rows match, nothing is dropped."""
    quoted = INJECTION.replace("'", "''")
    sql = compile_request(catalog, QueryRequest(metrics=["revenue"],
                                                where=[f"product.product_name = '{quoted}'"])).sql
    warehouse = duckdb.connect(str(demo_warehouse()), read_only=True)
    try:
        assert warehouse.execute(sql).fetchall() == [(None,)]
        assert warehouse.execute("SELECT count(*) FROM orders").fetchone()[0] > 0
    finally:
        warehouse.close()


def test_filter_literals_are_literal_nodes():
    parsed = parse_filter(f"product.product_name = '{INJECTION.replace(chr(39), chr(39) * 2)}'")
    [literal] = parsed.condition.find_all(exp.Literal)
    assert literal.is_string and literal.this == INJECTION
    assert parsed.refs == ("product.product_name",)
