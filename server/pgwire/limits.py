"""Connection limits of the PostgreSQL wire server: what one client, or many, may hold.

canon.yml (every key optional; shown with its default):

    limits:
      wire:
        startup_timeout_s: 10            # to finish startup and authentication, else FATAL 08006 and close
        startup_max_message: 65536       # bytes: largest message before authentication (08P01 past it)
        max_message: 16777216            # bytes: largest message after authentication (08P01 past it)
        idle_session_timeout_s: 3600     # an authenticated session idle this long: FATAL 57P05 (0 = never)
        max_connections: 100             # sessions past startup, in total (FATAL 53300 past it)
        max_connections_per_address: 50  # sessions past startup from one client address (FATAL 53300)
        max_pending: 1000                # sockets still in startup/authentication; more are closed at once
        auth_failure_limit: 10           # failed logins per address within the window before refusal (28000)
        auth_failure_window_s: 60        # how long a failed login counts against its address
        auth_failure_delay_s: 0.25       # wait before a login from an address with recent failures,
                                         # doubled per failure (at most 16x and half the startup timeout)

Sockets are a budget shared with the HTTP API under `canon serve --pg-port`: at start the soft
RLIMIT_NOFILE is raised to the hard limit, and `max_pending + max_connections` is kept within three
quarters of it (see `fd_budget`), so the wire server cannot exhaust the process's file descriptors.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, replace

from canon.compiler.errors import ConfigError

from .protocol import MAX_MESSAGE

DEFAULTS: dict[str, float | int] = {
    "startup_timeout_s": 10.0, "startup_max_message": 64 * 1024, "max_message": MAX_MESSAGE,
    "idle_session_timeout_s": 3600.0, "max_connections": 100, "max_connections_per_address": 50,
    "max_pending": 1000, "auth_failure_limit": 10, "auth_failure_window_s": 60.0, "auth_failure_delay_s": 0.25,
}
MAY_BE_ZERO = {"idle_session_timeout_s", "auth_failure_delay_s"}  # 0 turns the feature off
MAX_MESSAGE_CEILING = 1024 * 1024 * 1024  # PostgreSQL's own limit on a message
FD_RESERVE = 256  # descriptors kept for the HTTP API, the warehouse, logs and files


@dataclass(frozen=True)
class WireLimits:
    startup_timeout_s: float = DEFAULTS["startup_timeout_s"]
    startup_max_message: int = DEFAULTS["startup_max_message"]
    max_message: int = DEFAULTS["max_message"]
    idle_session_timeout_s: float = DEFAULTS["idle_session_timeout_s"]
    max_connections: int = DEFAULTS["max_connections"]
    max_connections_per_address: int = DEFAULTS["max_connections_per_address"]
    max_pending: int = DEFAULTS["max_pending"]
    auth_failure_limit: int = DEFAULTS["auth_failure_limit"]
    auth_failure_window_s: float = DEFAULTS["auth_failure_window_s"]
    auth_failure_delay_s: float = DEFAULTS["auth_failure_delay_s"]

    @classmethod
    def from_config(cls, config: dict) -> "WireLimits":
        """`limits.wire` of canon.yml, validated: an unknown key or a bad value is a ConfigError naming it."""
        limits = config.get("limits") or {}
        section = limits.get("wire") if isinstance(limits, dict) else None
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: limits.wire must be a mapping",
                              hint="valid keys: " + ", ".join(DEFAULTS))
        unknown = sorted(set(section) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"canon.yml: limits.wire.{unknown[0]} is not a known wire limit",
                              hint="valid keys: " + ", ".join(DEFAULTS))
        values = {}
        for key, value in section.items():
            integral = isinstance(DEFAULTS[key], int)
            wrong_type = isinstance(value, bool) or not isinstance(value, int if integral else (int, float))
            if wrong_type or value < 0 or (value == 0 and key not in MAY_BE_ZERO):
                kind = "a positive whole number" if integral else "a positive number of seconds"
                if key in MAY_BE_ZERO:
                    kind = "a number of seconds (0: off)"
                raise ConfigError(f"canon.yml: limits.wire.{key} must be {kind}, not {value!r}",
                                  hint=f"default: {DEFAULTS[key]}")
            values[key] = value if integral else float(value)
        out = cls(**values)
        if out.max_message > MAX_MESSAGE_CEILING or out.startup_max_message > out.max_message:
            raise ConfigError("canon.yml: limits.wire.max_message must be at most 1 GiB and at least "
                              "startup_max_message", hint=f"defaults: max_message {DEFAULTS['max_message']}, "
                                                          f"startup_max_message {DEFAULTS['startup_max_message']}")
        return out

    def within(self, descriptors: int) -> "WireLimits":
        """These limits with sockets capped to a share of `descriptors` (the process's fd limit)."""
        budget = max((descriptors - FD_RESERVE) * 3 // 4, 16)
        if self.max_pending + self.max_connections <= budget:
            return self
        connections = min(self.max_connections, budget // 2)
        return replace(self, max_connections=connections, max_pending=max(budget - connections, 8),
                       max_connections_per_address=min(self.max_connections_per_address, connections))

    def failure_delay(self, failures: int) -> float:
        """Seconds to wait before a login from an address with `failures` recent failures."""
        if failures <= 0 or self.auth_failure_delay_s <= 0:
            return 0.0
        return min(self.auth_failure_delay_s * 2 ** min(failures - 1, 4), self.startup_timeout_s / 2)


def fd_budget() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (sockets are cheap; the default 1024 is not much) and
    return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux/macOS
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 65536


class AuthThrottle:
    """Failed logins per client address in a sliding window: a growing delay, then refusal. Used on the
    event loop only (no lock)."""

    def __init__(self, limits: WireLimits, clock=time.monotonic):
        self.limits = limits
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def recent(self, address: str) -> int:
        window = self._failures.get(address)
        if window is None:
            return 0
        horizon = self.clock() - self.limits.auth_failure_window_s
        while window and window[0] <= horizon:
            window.popleft()
        if not window:
            del self._failures[address]
            return 0
        return len(window)

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again (0: now)."""
        if self.recent(address) < self.limits.auth_failure_limit:
            return 0.0
        window = self._failures[address]
        return max(window[-self.limits.auth_failure_limit] + self.limits.auth_failure_window_s - self.clock(), 0.0)

    def delay(self, address: str) -> float:
        return self.limits.failure_delay(self.recent(address))

    def failed(self, address: str) -> None:
        self._failures[address].append(self.clock())
        if len(self._failures) > 100_000:  # a flood of addresses: forget the oldest rather than grow
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
