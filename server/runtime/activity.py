"""The runtime's front-end queries in flight: background work that would compete with them for the
warehouse's cores (the recommendation snapshot's first build: tens of seconds and every core at scale
200) waits for a quiet moment instead of slowing the first dashboard down."""

from __future__ import annotations

import threading
import time


class Activity:
    def __init__(self):
        self._changed = threading.Condition()
        self._running = 0
        self._last = time.monotonic()  # when the last query ended (or the runtime started)

    def begin(self) -> None:
        with self._changed:
            self._running += 1

    def end(self) -> None:
        with self._changed:
            self._running -= 1
            self._last = time.monotonic()
            self._changed.notify_all()

    def is_quiet(self, quiet_s: float, since: float) -> bool:
        """No query runs, and none has run for `quiet_s` seconds after `since` (a time.monotonic())."""
        with self._changed:
            return self._running == 0 and time.monotonic() >= max(self._last, since) + quiet_s

    def wait_quiet(self, quiet_s: float, most_s: float, stop: threading.Event | None = None) -> bool:
        """Block until no query has run for `quiet_s` seconds since this call, or `most_s` seconds have
        passed, or `stop` is set (looked at twice a second); True when it is quiet."""
        called = time.monotonic()
        deadline = called + most_s
        with self._changed:
            while True:
                now = time.monotonic()
                quiet_at = max(self._last, called) + quiet_s
                if self._running == 0 and now >= quiet_at:
                    return True
                if now >= deadline or stop is not None and stop.is_set():
                    return False
                self._changed.wait(min(deadline, quiet_at if self._running == 0 else deadline, now + 0.5) - now)
