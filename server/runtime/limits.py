"""Guard rails every query path shares: a time cap and a row cap.

canon.yml:

    limits:
      query_timeout_s: 30        # each query's time cap, stopped inside the engine
      max_query_timeout_s: 300   # the most a request may ask for
      max_rows: 100000           # rows one answer may hold
      max_metrics: 64            # the shape of one request, checked by Runtime.prepare for every front end
      max_dimensions: 64
      max_filters: 64            # where + having conditions (text or structured, Cube date ranges included)
      max_order: 64
      max_filter_chars: 4000     # characters of one text filter
      max_filter_nodes: 5000     # nodes of one filter tree (a structured filter: about its number of values)
      max_filter_depth: 20       # nesting: parentheses, NOT, function calls, nested and/or groups (at most 100)

A request may ask for a shorter or longer time cap (up to `max_query_timeout_s`) and for fewer rows;
a server's command-line flags (`canon serve --query-timeout --max-rows`) override the file. A request
over a shape limit is refused before anything is parsed or compiled (a 400 / SQLSTATE 54000 naming the
limit, its value and its key).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from canon.compiler.errors import ConfigError, Location, QueryError, RequestTooLargeError
from canon.compiler.sqlexpr import MAX_DEPTH, text_depth, tree_depth

DEFAULTS = {"query_timeout_s": 30.0, "max_query_timeout_s": 300.0, "max_rows": 100_000}
# sub-sections validated by their front end (wire: server/pgwire/limits.py)
SECTIONS = {"wire"}
# the shape of one request: whole numbers
SHAPE = {"max_metrics": 64, "max_dimensions": 64, "max_filters": 64, "max_order": 64,
         "max_filter_chars": 4_000, "max_filter_nodes": 5_000, "max_filter_depth": 20}


@dataclass(frozen=True)
class Limits:
    query_timeout_s: float = DEFAULTS["query_timeout_s"]
    max_query_timeout_s: float = DEFAULTS["max_query_timeout_s"]
    max_rows: int = DEFAULTS["max_rows"]
    max_metrics: int = SHAPE["max_metrics"]
    max_dimensions: int = SHAPE["max_dimensions"]
    max_filters: int = SHAPE["max_filters"]
    max_order: int = SHAPE["max_order"]
    max_filter_chars: int = SHAPE["max_filter_chars"]
    max_filter_nodes: int = SHAPE["max_filter_nodes"]
    max_filter_depth: int = SHAPE["max_filter_depth"]

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "Limits":
        section = config.get("limits") or {}
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `limits` must be a mapping",
                              hint="limits: {query_timeout_s: 30, max_query_timeout_s: 300, max_rows: 100000}")
        unknown = sorted(set(section) - set(DEFAULTS) - set(SHAPE) - SECTIONS)
        if unknown:
            raise ConfigError(f"canon.yml: limits.{unknown[0]} is not a known limit",
                              hint="valid limits: " + ", ".join([*DEFAULTS, *SHAPE, *sorted(SECTIONS)]))
        values = {}
        for key, default in DEFAULTS.items():
            value = section.get(key, default)
            if overrides.get(key) is not None:
                value = overrides[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"canon.yml: limits.{key} must be a positive number, not {value!r}")
            values[key] = int(value) if key == "max_rows" else float(value)
        for key, default in SHAPE.items():
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"canon.yml: limits.{key} must be a positive whole number, not {value!r}")
            values[key] = value
        if values["max_filter_depth"] > MAX_DEPTH:
            raise ConfigError(f"canon.yml: limits.max_filter_depth {values['max_filter_depth']} is above {MAX_DEPTH}",
                              hint=f"deeper filters overflow the parser; use at most {MAX_DEPTH}")
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

    def check_request(self, request) -> None:
        """Refuse a request whose shape is over a limit, before anything parses or compiles it."""
        for field, count, key in (("metrics", len(request.metrics), "max_metrics"),
                                  ("dimensions", len(request.dimensions), "max_dimensions"),
                                  ("filters", len(request.where) + len(request.having), "max_filters"),
                                  ("order", len(request.order), "max_order")):
            self._at_most(count, key, f"{field} has {count:,} items", field)
        for field, items in (("where", request.where), ("having", request.having)):
            for i, item in enumerate(items):
                self.check_filter(item, field if len(items) == 1 else f"{field}[{i}]")

    def check_filter(self, item, field: str) -> None:
        """One filter: text within max_filter_chars, a tree within max_filter_nodes, both within
        max_filter_depth."""
        if isinstance(item, str):
            self._at_most(len(item), "max_filter_chars", f"{field} has {len(item):,} characters", field)
            self._at_most(text_depth(item), "max_filter_depth", f"{field} nests {text_depth(item)} levels deep", field)
        elif hasattr(item, "walk"):  # a condition tree a front end built (structured filters, Cube)
            nodes = next((n for n, _ in enumerate(item.walk(), 1) if n > self.max_filter_nodes), 0)  # stops past the limit
            self._at_most(nodes, "max_filter_nodes", f"{field} has more than {self.max_filter_nodes:,} nodes "
                                                     "(values and operators)", field)
            self._at_most(tree_depth(item), "max_filter_depth", f"{field} nests {tree_depth(item)} levels deep", field)

    def _at_most(self, value: int, key: str, what: str, field: str) -> None:
        limit = getattr(self, key)
        if value > limit:
            raise RequestTooLargeError(f"{what}; this server allows at most {limit:,} (limits.{key})",
                                       location=Location(path=field),
                                       hint=f"split or simplify the request; an operator can raise limits.{key} in canon.yml")
