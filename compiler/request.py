"""A metric request: what every API (CLI, HTTP, Cube, PostgreSQL wire) hands the compiler."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class QueryRequest:
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    where: tuple = ()  # boolean expressions over dimensions (text, or sqlglot condition trees), ANDed
    order: tuple[str, ...] = ()  # metric or dimension references; a leading '-' sorts descending
    limit: int | None = None
    offset: int | None = None
    start: str | None = None  # ISO date or timestamp; metric_time >= start
    end: str | None = None  # ISO date (inclusive day) or timestamp (exclusive)
    time_range: str | None = None  # relative: "last 28 days", "this month", "year to date", ...
    having: tuple[str, ...] = ()  # conditions on metric values, after aggregation
    timezone: str | None = None  # IANA name: stored UTC times fall into this zone's days
    today: str | None = None  # ISO date that relative ranges count from (default: settings / clock)
    fill_gaps: bool | None = None  # list every period; None: pure time series of join_to_timespine metrics
    ungrouped: bool = False  # dimensions only: every row of the base model, not the distinct combinations
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        # accept lists from callers; keep tuples inside
        for name in ("metrics", "dimensions", "where", "order", "having"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value or ()))
