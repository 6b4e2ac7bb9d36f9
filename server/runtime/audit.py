"""The audit log: one JSON line per query, on disk before the answer leaves.

    canon.yml:
      audit:
        path: .canon/audit.log     # relative to the project (the default)
        enabled: true              # the default
        sync: batch                # batch (the default) | always

Each line: time, user, front end (`via`), metrics, dimensions, filters (as SQL text of the parsed
trees, claims included as the literals they became), policies applied, the SQL's SHA-256, rows,
elapsed milliseconds, outcome (`ok`, `denied`, `error`, `timeout`, `cancelled`) and the error message.
Each line is written (O_APPEND) before the answer leaves, so a killed server loses none. `sync: batch`
fsyncs within 50 ms of a write, one fsync for every line written meanwhile (a machine crash can lose
those 50 ms); `sync: always` fsyncs each line before the answer (about 4 ms per query on this
machine's disk). Tokens and passwords never reach a line (only the identity's subject). `canon audit [--user U] [--since T]`
reads it back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from canon.compiler.errors import ConfigError

log = logging.getLogger("canon.audit")

DEFAULT_PATH = Path(".canon") / "audit.log"


SYNC_DELAY_S = 0.05
SYNC_MODES = ("batch", "always")


@dataclass(frozen=True)
class AuditSettings:
    path: Path | None
    enabled: bool
    sync: str = "batch"

    @classmethod
    def from_config(cls, config: dict, project: Path | None) -> "AuditSettings":
        section = config.get("audit") or {}
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `audit` must be a mapping", hint="audit: {path: .canon/audit.log, enabled: true}")
        unknown = sorted(set(section) - {"path", "enabled", "sync"})
        if unknown:
            raise ConfigError(f"canon.yml: audit.{unknown[0]} is not a known setting", hint="valid: path, enabled, sync")
        sync = section.get("sync", "batch")
        if sync not in SYNC_MODES:
            raise ConfigError(f"canon.yml: audit.sync is {sync!r}", hint="valid choices: " + ", ".join(SYNC_MODES))
        enabled = section.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"canon.yml: audit.enabled must be true or false, not {enabled!r}")
        path = Path(str(section.get("path") or DEFAULT_PATH))
        if not path.is_absolute():
            if project is None:
                return cls(None, False)
            path = project / path
        return cls(path, enabled, sync)


class AuditLog:
    def __init__(self, settings: AuditSettings):
        self.settings = settings
        self._lock = threading.Lock()  # one write at a time
        self._sync_lock = threading.Lock()  # one fsync or close at a time: a write never waits for an fsync
        self._fd: int | None = None
        self._dirty = threading.Event()  # lines written since the last fsync (batch mode)
        self._syncer: threading.Thread | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and self.settings.path is not None

    def record(self, *, identity, request, policies=(), sql: str | None = None, rows: int | None = None,
               elapsed_ms: float | None = None, outcome: str = "ok", error: str | None = None, cached: bool = False) -> None:
        if not self.enabled:
            return
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "user": identity.user, "via": identity.via,
            "metrics": [str(m)[:200] for m in request.metrics[:100]] if request is not None else [],
            "dimensions": [str(d)[:200] for d in request.dimensions[:100]] if request is not None else [],
            "filters": [_text(w) for w in request.where[:100]] if request is not None else [],
            "policies": list(policies),
            "sql_sha256": hashlib.sha256(sql.encode()).hexdigest() if sql else None,
            "rows": rows, "elapsed_ms": elapsed_ms, "outcome": outcome,
        }
        if cached:
            entry["cached"] = True
        if error:
            entry["error"] = error[:500]
        line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            with self._lock:
                fd = self._open()
                os.write(fd, line)
                if self.settings.sync == "always":
                    os.fsync(fd)
                else:
                    self._dirty.set()
                    self._start_syncer()
        except OSError as failure:
            # an audit failure is loud but does not take queries down with it
            log.error("audit log %s: %s", self.settings.path, failure.strerror)

    def _open(self) -> int:
        if self._fd is None:
            self.settings.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.settings.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def _start_syncer(self) -> None:
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, name="canon-audit-sync", daemon=True)
            self._syncer.start()

    def _sync_loop(self) -> None:
        """Group commit: one fsync for every line written in the last SYNC_DELAY_S."""
        while not self._closed:
            if not self._dirty.wait(timeout=1.0):
                continue
            time.sleep(SYNC_DELAY_S)
            with self._sync_lock:  # close() waits for this fsync; record() does not (it takes ~0.4-15 ms here)
                with self._lock:
                    self._dirty.clear()  # a line written from now on is dirty again: the next round syncs it
                    fd = self._fd
                if fd is not None:
                    try:
                        os.fsync(fd)
                    except OSError as failure:
                        log.error("audit log %s: %s", self.settings.path, failure.strerror)

    def close(self) -> None:
        with self._sync_lock, self._lock:
            self._closed = True
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None


MAX_FILTER_CHARS = 1000  # a line stays small whatever a request held (the SQL hash identifies it exactly)


def _text(where) -> str:
    text = where if isinstance(where, str) else where.sql("duckdb")
    return text if len(text) <= MAX_FILTER_CHARS else text[:MAX_FILTER_CHARS] + "…"


def read_audit(path: Path, *, user: str | None = None, since: datetime | None = None) -> Iterator[dict]:
    """The entries of an audit log, oldest first; a torn last line (a crash mid-write) is skipped."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if user is not None and entry.get("user") != user:
                continue
            if since is not None:
                try:
                    if datetime.fromisoformat(entry["time"]) < since:
                        continue
                except (KeyError, ValueError):
                    continue
            yield entry
