"""Hot reload: watch the definition files and swap in a new catalog when they change.

A background thread polls the fingerprint of `semantic_models/`, `metrics/` and canon.yml (every file's
path and bytes) about once a second. On a change it builds a new catalog from scratch; when that
succeeds the `CatalogState` swaps to it in one assignment, so every request sees either the old catalog
or the new one, never a mix. When the edit does not validate (or a file cannot be read: a dangling
link, no permission, over the size cap, an alias bomb), the previous catalog keeps serving and the
errors are kept for /v1/status and written to the log; when the files return to the served version
(the edit is reverted) the errors clear. The state always converges on the files on disk.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from canon.compiler.catalog import Catalog
from canon.compiler.compile import load_catalog
from canon.compiler.errors import CanonError, CatalogErrors

from ..catalog_cache import fingerprint, load_catalog_cached

log = logging.getLogger("canon.reload")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def error_list(error: Exception) -> list[dict]:
    if isinstance(error, CatalogErrors):
        return [e.to_dict() for e in error.errors]
    if isinstance(error, CanonError):
        return [error.to_dict()]
    return [{"code": "internal_error", "message": f"{type(error).__name__}: {error}", "location": None, "hint": None}]


@dataclass(frozen=True)
class CatalogSnapshot:
    catalog: Catalog
    fingerprint: str
    loaded_at: str


@dataclass
class CatalogState:
    """The catalog being served, and the errors of the last attempt to replace it."""

    project: Path | None
    snapshot: CatalogSnapshot
    errors: list[dict] = field(default_factory=list)
    failed_fingerprint: str | None = None
    reloads: int = 0
    checked_at: str | None = None  # the watcher's last look at the files (it is alive)
    _failed_once: str | None = field(default=None, repr=False, init=False)

    @classmethod
    def load(cls, project: Path, *, cached: bool = False) -> "CatalogState":
        """`cached`: read the validated catalog from .canon/ when the files have not changed (the CLI)."""
        key = fingerprint(project)
        catalog = load_catalog_cached(project) if cached else load_catalog(project)
        return cls(project, CatalogSnapshot(catalog, key, _now()))

    @classmethod
    def fixed(cls, catalog: Catalog) -> "CatalogState":
        """A state that serves one catalog and never reloads (no project folder)."""
        return cls(None, CatalogSnapshot(catalog, "", _now()))

    @property
    def catalog(self) -> Catalog:
        return self.snapshot.catalog

    def check(self) -> bool:
        """Converge on the files on disk; True when a new catalog was swapped in.

        Files that match the served catalog clear any errors (a broken edit that was reverted); files
        that fail to load keep the old catalog serving and their errors in `errors` until they change;
        a file that cannot be read is one of those errors, never a reason to stop watching."""
        if self.project is None:
            return False
        self.checked_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        try:
            key = fingerprint(self.project)
        except OSError as error:  # the definition folders themselves cannot be listed: retry each tick
            self._failed(None, [{"code": "config_error", "location": None, "hint": None,
                                 "message": f"cannot list the definition files: {error.strerror or error}"}],
                         str(error), logging.WARNING)
            return False
        if key == self.snapshot.fingerprint:
            if self.errors:
                log.warning("definition files match the served catalog version %s again; load errors cleared",
                            self.snapshot.catalog.version)
                self.errors, self.failed_fingerprint = [], None
            return False
        if key == self.failed_fingerprint:
            return False
        try:
            catalog = load_catalog(self.project)
        except Exception as error:  # noqa: BLE001 — any failure keeps the old catalog serving
            level = logging.WARNING if isinstance(error, CanonError) else logging.ERROR
            # a version fails twice before it is left alone: the first read may have caught a file
            # mid-save (the fingerprint saw it whole), and the next tick reads it again
            parked = key if self._failed_once == key else None
            self._failed_once = key
            self._failed(parked, error_list(error), str(error), level, exc_info=not isinstance(error, CanonError))
            return False
        self.snapshot = CatalogSnapshot(catalog, key, _now())  # the atomic swap
        self.errors = []
        self.failed_fingerprint = None
        self.reloads += 1
        log.warning("catalog reloaded: version %s (%d metrics)", catalog.version, len(catalog.metrics))
        return True

    def _failed(self, key: str | None, errors: list[dict], text: str, level: int, exc_info: bool = False) -> None:
        if errors != self.errors:  # log a failure once, not on every tick
            log.log(level, "catalog reload failed; still serving version %s:\n%s",
                    self.snapshot.catalog.version, text, exc_info=exc_info)
        self.failed_fingerprint = key
        self.errors = errors


class Reloader:
    """Polls `state.check()` in a daemon thread until `stop()`."""

    def __init__(self, state: CatalogState, interval_s: float = 1.0):
        self.state = state
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="canon-reload", daemon=True)

    def start(self) -> "Reloader":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.state.check()
            except Exception:  # noqa: BLE001 — the watcher must survive anything
                log.exception("catalog watcher failed")
