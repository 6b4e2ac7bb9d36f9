"""What a server runs on a schedule (saved-query exports, rollup refreshes) shares three small pieces:

    Periodic(name, tick, tick_s).start() / .stop()   a daemon thread calling `tick()` every tick_s
    RunLog(project, ".canon/x.json")                  what each job last did, kept across restarts
    is_due(every_s, last_success, last_run, failed, now)   when a job runs next (a failure retries sooner)

A tick that raises is logged and the schedule goes on: one bad run never stops the thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("canon.schedule")
RETRY_S = 300.0  # a failed scheduled run is tried again after this long (or its period, if shorter)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def epoch(stamp: str) -> float:
    """An ISO stamp as epoch seconds (a stamp without a zone is UTC)."""
    value = datetime.fromisoformat(stamp)
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def next_due(every_s: float, last_success: str | None, last_run: str | None, failed: bool) -> float | None:
    """Epoch seconds when a job runs next; None: at once (never run)."""
    if failed and last_run:
        return epoch(last_run) + min(every_s, RETRY_S)
    if last_success:
        return epoch(last_success) + every_s
    return None


def is_due(every_s: float, last_success: str | None, last_run: str | None, failed: bool, now: float) -> bool:
    due = next_due(every_s, last_success, last_run, failed)
    return due is None or now >= due


class RunLog:
    """A JSON object per job name in a file of the project (none without a project: memory only)."""

    def __init__(self, project: Path | None, file: str):
        self._path = Path(project) / file if project is not None else None
        self._lock = threading.Lock()
        self.runs: dict[str, dict] = self._read()

    def get(self, name: str) -> dict:
        return self.runs.get(name, {})

    def put(self, name: str, entry: dict) -> None:
        with self._lock:
            self.runs[name] = entry
            self._write()

    def reload(self) -> dict[str, dict]:
        """The file as it is now (another process, e.g. a server, writes it)."""
        self.runs = self._read()
        return self.runs

    def _read(self) -> dict:
        if self._path is None:
            return {}
        try:
            data = json.loads(self._path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write(self) -> None:
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            partial = self._path.with_name(self._path.name + ".partial")
            partial.write_text(json.dumps(self.runs, indent=1, sort_keys=True))
            os.replace(partial, self._path)  # a reader sees the old file or the new one
        except OSError as error:
            log.warning("cannot record the schedule's state in %s: %s", self._path, error)


class Periodic:
    """Calls `tick(stop)` at once and then every `tick_s` seconds in a daemon thread until `stop()`."""

    def __init__(self, name: str, tick, tick_s: float):
        self.name, self._tick, self.tick_s = name, tick, tick_s
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Periodic":
        def loop():
            while not self.stopping.is_set():
                try:
                    self._tick(self.stopping)
                except Exception:  # noqa: BLE001 — the schedule must outlive one bad run
                    log.exception("%s: a scheduled run failed", self.name)
                if self.stopping.wait(self.tick_s):
                    return

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, wait_s: float = 5.0) -> None:
        self.stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=wait_s)
