"""Kept for the tests' oracles while they move to the runtime: `run_query` is `Runtime.over(...).query`."""

from __future__ import annotations

from .runtime import Runtime


def run_query(catalog, warehouse, request, **_):
    return Runtime.over(catalog, warehouse).query(request, capped=False)
