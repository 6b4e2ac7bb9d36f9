"""Compiled SQL by (catalog version, request, dialect): dashboards repeat the same questions."""

from __future__ import annotations

import threading
from collections import OrderedDict

from canon.compiler.catalog import Catalog
from canon.compiler.compile import CompiledQuery, compile_request
from canon.compiler.request import QueryRequest


class CompileCache:
    """A least-recently-used cache of compiled queries. A relative time range is cached only when
    "today" is pinned (the clock moves on)."""

    def __init__(self, size: int = 1024):
        self.size, self._entries, self._lock = size, OrderedDict(), threading.Lock()

    def compile(self, catalog: Catalog, request: QueryRequest, dialect: str) -> CompiledQuery:
        if request.time_range and not (request.today or catalog.settings.calendar.now):
            return compile_request(catalog, request, dialect)
        key = (catalog.version, request, dialect)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        compiled = compile_request(catalog, request, dialect)
        with self._lock:
            self._entries[key] = compiled
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return compiled
