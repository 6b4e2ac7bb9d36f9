"""Guard rails every query path shares: a time cap and a row cap.

canon.yml:

    limits:
      query_timeout_s: 30        # each query's time cap, stopped inside the engine
      max_query_timeout_s: 300   # the most a request may ask for
      max_rows: 100000           # rows one answer may hold

A request may ask for a shorter or longer time cap (up to `max_query_timeout_s`) and for fewer rows;
a server's command-line flags (`canon serve --query-timeout --max-rows`) override the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from canon.compiler.errors import ConfigError, QueryError

DEFAULTS = {"query_timeout_s": 30.0, "max_query_timeout_s": 300.0, "max_rows": 100_000}


@dataclass(frozen=True)
class Limits:
    query_timeout_s: float = DEFAULTS["query_timeout_s"]
    max_query_timeout_s: float = DEFAULTS["max_query_timeout_s"]
    max_rows: int = DEFAULTS["max_rows"]

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "Limits":
        section = config.get("limits") or {}
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `limits` must be a mapping",
                              hint="limits: {query_timeout_s: 30, max_query_timeout_s: 300, max_rows: 100000}")
        unknown = sorted(set(section) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"canon.yml: limits.{unknown[0]} is not a known limit",
                              hint="valid limits: " + ", ".join(DEFAULTS))
        values = {}
        for key, default in DEFAULTS.items():
            value = section.get(key, default)
            if overrides.get(key) is not None:
                value = overrides[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"canon.yml: limits.{key} must be a positive number, not {value!r}")
            values[key] = int(value) if key == "max_rows" else float(value)
        limits = cls(**values)
        if limits.query_timeout_s > limits.max_query_timeout_s:
            limits = replace(limits, max_query_timeout_s=limits.query_timeout_s)
        return limits

    def timeout_for(self, requested: float | None) -> float:
        """The time cap of one query: the request's own, within the server's limit."""
        if requested is None:
            return self.query_timeout_s
        if isinstance(requested, bool) or not isinstance(requested, (int, float)) or requested <= 0:
            raise QueryError(f"timeout: {requested!r} must be a positive number of seconds")
        if requested > self.max_query_timeout_s:
            raise QueryError(f"timeout: {requested:g} s is above this server's limit of {self.max_query_timeout_s:g} s",
                             hint=f"ask for at most {self.max_query_timeout_s:g} s")
        return float(requested)

    def rows_for(self, requested: int | None) -> int:
        """The row cap of one answer: the request's own, within the server's limit."""
        if requested is None:
            return self.max_rows
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise QueryError(f"max_rows: {requested!r} must be a positive whole number")
        return min(requested, self.max_rows)
