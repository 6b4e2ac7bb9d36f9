"""Moved to canon.server.warehouses (one module per engine). This shim only keeps tests/conftest.py
importing while it is being moved to tests/support/; delete it once nothing imports it."""

from .warehouses import is_postgres_url, open_warehouse  # noqa: F401
from .warehouses.duckdb import DuckDBWarehouse  # noqa: F401
