"""Shared test support: import helpers from here instead of copying them between test files.

- `tests.support.project`: `ROOT`, `copy_project(target, slow=False)`, the per-process demo cache
  `shared_demo(scale, seed)` (read only) and `demo_copy(path, scale, seed)` (a private copy), `scratch_dir()`.
- `tests.support.servers`: `free_port()`, `canon_env(extra)`, `serve(...)` / `start_serve(...)` (`canon serve`),
  `serve_pg(...)` / `start_pg(...)` (`canon pg`), `Server` (`.stop(sig)`, `.log_tail()`), `build_warehouse`,
  `cli_json`.
- `tests.support.cli`: `canon(*args)` (the CLI as a subprocess), `assert_clean_failure`, `demo_warehouse()`.
- `tests.support.oracle`: hand-written SQL oracles and row comparison (`assert_same`, `canon_rows`, ...).
- `tests.support.pg_server`: the pytest plugin with the throwaway PostgreSQL server (`pg_server_url`,
  `pg_demo_url`), registered in tests/conftest.py; `create_database(url, name)`.
"""

from tests.support.project import ROOT, copy_project, demo_copy, scratch_dir, shared_demo
from tests.support.servers import (Server, build_warehouse, canon_env, cli_json, free_port, serve, serve_pg, start_pg,
                                   start_serve)

__all__ = ["ROOT", "Server", "build_warehouse", "canon_env", "cli_json", "copy_project", "demo_copy", "free_port",
           "scratch_dir", "serve", "serve_pg", "shared_demo", "start_pg", "start_serve"]
