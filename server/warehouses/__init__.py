"""Warehouses behind one protocol (base.py): DuckDB, PostgreSQL, Spark, ClickHouse (chDB)."""
