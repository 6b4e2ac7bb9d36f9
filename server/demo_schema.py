"""The demo warehouse's schema: tables, column types and keys (a contract, see DESIGN.md), as DDL
built with sqlglot. `server.demo` fills these tables; `server.pg_load` copies them to PostgreSQL."""

from __future__ import annotations

import datetime

from sqlglot import exp

TABLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("customers", (
        ("customer_id", "BIGINT PRIMARY KEY"),
        ("signup_at", "TIMESTAMP NOT NULL"),
        ("country_code", "VARCHAR NOT NULL"),
        ("segment", "VARCHAR NOT NULL"),
        ("acquisition_channel", "VARCHAR NOT NULL"),
        ("first_campaign_id", "BIGINT"),
    )),
    ("products", (
        ("product_id", "BIGINT PRIMARY KEY"),
        ("product_name", "VARCHAR NOT NULL UNIQUE"),
        ("category", "VARCHAR NOT NULL"),
        ("subcategory", "VARCHAR NOT NULL"),
        ("brand", "VARCHAR NOT NULL"),
        ("tier", "VARCHAR NOT NULL"),
        ("list_price", "DECIMAL(12,2) NOT NULL"),
        ("unit_cost", "DECIMAL(12,2) NOT NULL"),
    )),
    ("orders", (
        ("order_id", "BIGINT PRIMARY KEY"),
        ("customer_id", "BIGINT NOT NULL"),
        ("ordered_at", "TIMESTAMP NOT NULL"),
        ("status", "VARCHAR NOT NULL"),
        ("sales_channel", "VARCHAR NOT NULL"),
        ("campaign_id", "BIGINT"),
        ("shipping_amount", "DECIMAL(12,2) NOT NULL"),
    )),
    ("order_items", (
        ("order_item_id", "BIGINT PRIMARY KEY"),
        ("order_id", "BIGINT NOT NULL"),
        ("product_id", "BIGINT NOT NULL"),
        ("quantity", "INTEGER NOT NULL"),
        ("unit_price", "DECIMAL(12,2) NOT NULL"),
        ("discount_amount", "DECIMAL(12,2) NOT NULL"),
    )),
    ("campaigns", (
        ("campaign_id", "BIGINT PRIMARY KEY"),
        ("campaign_name", "VARCHAR NOT NULL"),
        ("channel", "VARCHAR NOT NULL"),
        ("funnel", "VARCHAR NOT NULL"),
        ("country_code", "VARCHAR NOT NULL"),
        ("started_on", "DATE NOT NULL"),
    )),
    ("ad_spend", (
        ("campaign_id", "BIGINT NOT NULL"),
        ("spend_date", "DATE NOT NULL"),
        ("country_code", "VARCHAR NOT NULL"),
        ("spend", "DECIMAL(12,2) NOT NULL"),
        ("impressions", "BIGINT NOT NULL"),
        ("clicks", "BIGINT NOT NULL"),
        ("_etl_loaded_at", "TIMESTAMP NOT NULL"),
    )),
    ("leads", (
        ("lead_id", "BIGINT PRIMARY KEY"),
        ("campaign_id", "BIGINT NOT NULL"),
        ("created_at", "TIMESTAMP NOT NULL"),
        ("country_code", "VARCHAR NOT NULL"),
        ("source", "VARCHAR NOT NULL"),
        ("meeting_at", "TIMESTAMP"),
        ("converted_customer_id", "BIGINT"),
    )),
    # one row per day: the calendar that rolling windows and gap filling are built on
    ("time_spine", (
        ("date_day", "DATE PRIMARY KEY"),
    )),
)
# type II history of customers' segments (valid_from <= t < valid_to; the open row, valid_to NULL, is
# today's segment in customers); drawn after every other table, so adding it changed none of them
TABLES += (
    ("customer_segment_history", (
        ("history_id", "BIGINT PRIMARY KEY"),
        ("customer_id", "BIGINT NOT NULL"),
        ("segment", "VARCHAR NOT NULL"),
        ("valid_from", "TIMESTAMP NOT NULL"),
        ("valid_to", "TIMESTAMP"),
    )),
)
TIME_SPINE_DAYS = (datetime.date(2023, 1, 1), datetime.date(2027, 12, 31))


_CONSTRAINTS = {
    "PRIMARY KEY": exp.PrimaryKeyColumnConstraint,
    "NOT NULL": exp.NotNullColumnConstraint,
    "UNIQUE": exp.UniqueColumnConstraint,
}


def create_sql(table: str, columns) -> str:
    """CREATE TABLE as a sqlglot tree: each declaration is a type followed by constraints."""
    defs = []
    for name, declaration in columns:
        kind, constraints = declaration, []
        for keyword, node in _CONSTRAINTS.items():
            if keyword in kind:
                kind = kind.replace(keyword, "")
                constraints.append(exp.ColumnConstraint(kind=node()))
        defs.append(exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build(kind.strip(), dialect="duckdb"),
                                  constraints=constraints))
    return exp.Create(this=exp.Schema(this=exp.to_table(table), expressions=defs), kind="TABLE").sql("duckdb")


def count_sql(table: str) -> str:
    return exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(table)).sql("duckdb")
