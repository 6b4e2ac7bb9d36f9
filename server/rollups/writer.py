"""A read-write session on a warehouse, for building rollups (queries open warehouses read-only).

DuckDB allows one writing process per file: `canon rollups build` on a DuckDB file runs while no
server holds the file open. PostgreSQL sessions are autocommit except inside `transaction()`.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlglot import exp

from canon.compiler.errors import WarehouseQueryError, WarehouseUnavailableError

from ..warehouses.postgres import is_postgres_url, redact


class Writer:
    def __init__(self, url: str):
        self.url = url
        self.dialect = "postgres" if is_postgres_url(url) else "duckdb"
        try:
            if self.dialect == "postgres":
                import psycopg

                self._connection = psycopg.connect(url, autocommit=True, application_name="canon rollups")
            else:
                import duckdb

                self._connection = duckdb.connect(url)
        except Exception as error:  # noqa: BLE001 — driver errors differ; the message names the cause
            where = redact(url) if self.dialect == "postgres" else url
            raise WarehouseUnavailableError(f"cannot open {where} for writing rollups: {str(error).splitlines()[0]}",
                                            hint="a DuckDB file must not be open in another process "
                                                 "(stop `canon serve` while building)") from None

    @classmethod
    def over(cls, connection, dialect: str, url: str = "") -> "Writer":
        """A writer on a connection someone else opened (a server's DuckDB file, reopened for writing)."""
        writer = cls.__new__(cls)
        writer.url, writer.dialect, writer._connection = url, dialect, connection
        return writer

    def execute(self, statement: exp.Expression | str) -> list[tuple]:
        sql = statement.sql(dialect=self.dialect) if isinstance(statement, exp.Expression) else statement
        try:
            cursor = self._connection.execute(sql)
            return cursor.fetchall() if cursor.description else []
        except Exception as error:  # noqa: BLE001
            raise WarehouseQueryError(f"rollup statement failed: {str(error).splitlines()[0]}") from None

    @contextmanager
    def transaction(self):
        if self.dialect == "postgres":
            with self._connection.transaction():
                yield self
            return
        self._connection.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
