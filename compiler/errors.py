"""One error hierarchy for every problem a user can act on.

Each error carries a stable `code`, a message saying what is wrong, an optional `location`
(file:line, a JSON path or a position in a filter) and a `hint` saying what to do.
A bug in Canon is never one of these: it propagates as an ordinary exception.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Location:
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None  # e.g. "metrics[3].numerator" or "where"

    def __str__(self) -> str:
        if self.file:
            text = self.file
            if self.line:
                text += f":{self.line}"
            return text
        return self.path or ""


def describe(message: str, location: Location | None, hint: str | None) -> str:
    """`file:line: what is wrong — what to do`, the one shape of every problem Canon reports."""
    text = message
    if location and str(location):
        text = f"{location}: {text}"
    if hint:
        text += f" — {hint}"
    return text


class CanonError(Exception):
    """Root of all user-facing errors."""

    code = "canon_error"
    http_status = 400
    sqlstate = "XX000"  # what the PostgreSQL wire protocol answers (server/pgwire/errors.py)

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        return describe(self.message, self.location, self.hint)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "location": str(self.location) if self.location else None,
            "hint": self.hint,
        }


class ConfigError(CanonError):
    """A definition file is malformed or inconsistent."""

    code = "config_error"
    sqlstate = "F0000"


class CatalogErrors(ConfigError):
    """Every problem found while validating the catalog, reported at once."""

    code = "invalid_catalog"

    def __init__(self, errors: list[CanonError]):
        unique = {str(e): e for e in errors}  # one line per problem, even when found from several places
        self.errors = sorted(unique.values(), key=_error_sort_key)
        super().__init__(f"{len(self.errors)} problem(s) in the catalog")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "errors": [e.to_dict() for e in self.errors]}


class UnknownNameError(CanonError):
    """A metric, dimension, model or field that does not exist."""

    code = "unknown_name"
    http_status = 404
    sqlstate = "42703"


class QueryError(CanonError):
    """A request that cannot be answered as asked."""

    code = "invalid_query"
    sqlstate = "0A000"


class FilterError(QueryError):
    """A filter expression outside the allowed grammar."""

    code = "invalid_filter"


class UnsupportedError(CanonError):
    """A feature the chosen dialect or warehouse cannot express."""

    code = "unsupported"
    sqlstate = "0A000"


class WarehouseError(CanonError):
    """The warehouse is missing, unreachable or rejected the query."""

    code = "warehouse_error"
    http_status = 503
    sqlstate = "22000"


class WarehouseUnavailableError(WarehouseError):
    """The warehouse cannot be opened or reached."""

    code = "warehouse_unavailable"
    sqlstate = "08006"


class QueryTimeoutError(WarehouseError):
    """The query ran past its time cap and was stopped inside the engine."""

    code = "query_timeout"
    http_status = 504
    sqlstate = "57014"


class QueryCancelledError(WarehouseError):
    """The query was cancelled (a cancel request, or the client went away) and stopped in the engine."""

    code = "query_cancelled"
    http_status = 499  # the client closed the request; rarely seen by anyone
    sqlstate = "57014"


class ResultTooLargeError(QueryError):
    """The result has more rows than the row cap allows."""

    code = "result_too_large"
    http_status = 400
    sqlstate = "54000"


class AuthenticationError(CanonError):
    """No credentials where they are required, or credentials that do not verify."""

    code = "unauthenticated"
    http_status = 401
    sqlstate = "28000"


class AccessDeniedError(CanonError):
    """The caller is known, but an access policy does not let them see this."""

    code = "access_denied"
    http_status = 403
    sqlstate = "42501"


class RequestTooLargeError(QueryError):
    """A request over one of the server's shape limits (items, filter size or nesting)."""

    code = "request_too_large"
    http_status = 400
    sqlstate = "54000"


class WarehouseQueryError(WarehouseError):
    """The warehouse ran the query and refused it for what it asks (a value that does not convert, a
    comparison of unlike types): the request's fault, not an outage. `sqlstate` is the engine's own
    (class 22 data exception, 42 syntax or access rule) where it gives one."""

    code = "query_rejected"
    http_status = 400

    def __init__(self, message: str, *, sqlstate: str = "22000", **kwargs):
        super().__init__(message, **kwargs)
        self.sqlstate = sqlstate


def _error_sort_key(error: CanonError):
    loc = error.location or Location()
    return (loc.file or "", loc.line or 0, error.message)


def did_you_mean(name: str, choices: Iterable[str], *, limit: int = 8) -> str:
    """A hint naming the closest valid choices, or a sample of the valid ones."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not choices:
        return "there are no valid choices here"
    shown = ", ".join(choices[:limit])
    more = f" (and {len(choices) - limit} more)" if len(choices) > limit else ""
    return f"valid choices: {shown}{more}"
