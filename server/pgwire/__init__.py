"""Canon's SQL API over the PostgreSQL wire protocol (see README.md in this folder)."""

from .server import PgServerHandle, serve, start_pg_server

__all__ = ["PgServerHandle", "serve", "start_pg_server"]
