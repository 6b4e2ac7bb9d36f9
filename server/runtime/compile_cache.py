"""Compiled SQL by (catalog version, request, dialect): dashboards repeat the same questions."""

from __future__ import annotations

import threading
from collections import OrderedDict

from canon.compiler.catalog import Catalog
from canon.compiler.compile import CompiledQuery, compile_request
from canon.compiler.request import QueryRequest


NODE_BYTES = 600  # about what one sqlglot node of a compiled tree holds (measured with tracemalloc)
DEFAULT_MAX_BYTES = 64 << 20


def entry_bytes(compiled: CompiledQuery) -> int:
    """The approximate memory of a cached entry: its tree's nodes and its SQL text."""
    return NODE_BYTES * sum(1 for _ in compiled.tree.walk()) + len(compiled.sql)


class CompileCache:
    """A least-recently-used cache of compiled queries, bounded by count and by approximate bytes (one
    large request must not hold many megabytes per distinct variant). A relative time range is cached
    only when "today" is pinned (the clock moves on)."""

    def __init__(self, size: int = 1024, max_bytes: int = DEFAULT_MAX_BYTES):
        self.size, self.max_bytes, self._entries, self._lock = size, max_bytes, OrderedDict(), threading.Lock()
        self.bytes = 0

    def compile(self, catalog: Catalog, request: QueryRequest, dialect: str) -> CompiledQuery:
        if request.time_range and not (request.today or catalog.settings.calendar.now):
            return compile_request(catalog, request, dialect)
        key = (catalog.version, catalog.stored_dates, request, dialect)  # stored_dates: learned column types
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found[0]
        compiled = compile_request(catalog, request, dialect)
        cost = entry_bytes(compiled)
        if cost > self.max_bytes // 4:  # one entry may not push out a quarter of the cache
            return compiled
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (compiled, cost)
                self.bytes += cost
            while self._entries and (len(self._entries) > self.size or self.bytes > self.max_bytes):
                _, (_, freed) = self._entries.popitem(last=False)
                self.bytes -= freed
        return compiled

    def __len__(self) -> int:
        return len(self._entries)
