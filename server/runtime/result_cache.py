"""The result cache: answers of recent queries, shared by every front end, bounded by bytes.

    canon.yml:
      cache:
        enabled: true        # the default
        ttl_s: 60            # an answer is reused for at most this long
        max_bytes: 268435456 # 256 MiB of answers, least recently used dropped first

An answer is keyed by the SQL that produced it (which holds the catalog version's definitions, the
request, and the caller's row filters, so two users share an answer only when they would run the same
SQL), the warehouse, and the data version: the sources' freshness watermarks (the newest loaded-at of
each monitored model the query reads) and, for a DuckDB file, the file's identity and modification
time. New data therefore misses the cache as soon as the freshness monitor sees it (every 60 s by
default), and never later than `ttl_s`. Answers larger than a tenth of `max_bytes` are not kept. The
wire server streams and does not use it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from canon.compiler.errors import ConfigError

DEFAULTS = {"enabled": True, "ttl_s": 60.0, "max_bytes": 256 * 1024 * 1024}


@dataclass(frozen=True)
class CacheSettings:
    enabled: bool = True
    ttl_s: float = DEFAULTS["ttl_s"]
    max_bytes: int = DEFAULTS["max_bytes"]

    @classmethod
    def from_config(cls, config: dict) -> "CacheSettings":
        section = config.get("cache") or {}
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `cache` must be a mapping", hint="cache: {enabled: true, ttl_s: 60, max_bytes: 268435456}")
        unknown = sorted(set(section) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"canon.yml: cache.{unknown[0]} is not a known setting", hint="valid: " + ", ".join(DEFAULTS))
        enabled = section.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"canon.yml: cache.enabled must be true or false, not {enabled!r}")
        values = {}
        for key in ("ttl_s", "max_bytes"):
            value = section.get(key, DEFAULTS[key])
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"canon.yml: cache.{key} must be a number >= 0, not {value!r}")
            values[key] = value
        return cls(enabled, float(values["ttl_s"]), int(values["max_bytes"]))


def result_bytes(rows: list, columns: list) -> int:
    """An estimate of an answer's memory: 8 bytes a cell, plus the text it holds."""
    size = 64 * (len(columns) + 1) + 56 * len(rows)
    for row in rows:
        size += 8 * len(row) + sum(len(v) for v in row if isinstance(v, str))
    return size


class ResultCache:
    def __init__(self, settings: CacheSettings = CacheSettings()):
        self.settings = settings
        self._entries: OrderedDict = OrderedDict()  # key -> (stored_at, size, value, tables read)
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and self.settings.ttl_s > 0 and self.settings.max_bytes > 0

    def get(self, key):
        if not self.enabled:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None or time.monotonic() - found[0] > self.settings.ttl_s:
                if found is not None:
                    self._drop(key)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[2]

    def put(self, key, value, size: int, tables=()) -> None:
        if not self.enabled or size > self.settings.max_bytes // 10:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (time.monotonic(), size, value, frozenset(tables))
            self._bytes += size
            while self._bytes > self.settings.max_bytes and self._entries:
                self._drop(next(iter(self._entries)))

    def _drop(self, key) -> None:
        size = self._entries.pop(key)[1]
        self._bytes -= size

    def invalidate(self, tables) -> int:
        """Forget the answers that read any of these warehouse tables (Canon wrote to them)."""
        tables = set(tables)
        with self._lock:
            stale = [key for key, entry in self._entries.items() if entry[3] & tables]
            for key in stale:
                self._drop(key)
        return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits, "misses": self.misses,
                    "ttl_s": self.settings.ttl_s, "max_bytes": self.settings.max_bytes, "enabled": self.enabled}


def file_stamp(url: str):
    """A DuckDB file's identity and modification times, its write-ahead log's included (None for server
    warehouses)."""
    if "://" in url or ":" in url.split("/")[0]:
        return None
    stamp = []
    for path in (url, url + ".wal"):
        try:
            stat = os.stat(path)
            stamp.append((stat.st_ino, stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)
