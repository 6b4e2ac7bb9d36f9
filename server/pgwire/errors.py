"""The one place where failures become PostgreSQL ErrorResponses (SQLSTATE, message, hint)."""

from __future__ import annotations

from canon.compiler.errors import CanonError

SYNTAX_ERROR = "42601"
UNDEFINED_COLUMN = "42703"
UNDEFINED_TABLE = "42P01"
UNDEFINED_FUNCTION = "42883"
UNDEFINED_OBJECT = "42704"
GROUPING_ERROR = "42803"
FEATURE_NOT_SUPPORTED = "0A000"
INVALID_PASSWORD = "28P01"
QUERY_CANCELED = "57014"
PROTOCOL_VIOLATION = "08P01"
INVALID_PARAMETER_VALUE = "22023"
INVALID_TEXT_REPRESENTATION = "22P02"
INVALID_SQL_STATEMENT_NAME = "26000"
INVALID_CURSOR_NAME = "34000"
INTERNAL_ERROR = "XX000"
CONNECTION_FAILURE = "08006"
DATA_EXCEPTION = "22000"
IN_FAILED_TRANSACTION = "25P02"


class PgError(Exception):
    """An error to send to the client as an ErrorResponse."""

    def __init__(self, sqlstate: str, message: str, *, hint: str | None = None, detail: str | None = None,
                 position: int | None = None, severity: str = "ERROR"):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint
        self.detail = detail
        self.position = position
        self.severity = severity

    def fields(self) -> list[tuple[bytes, str]]:
        out = [(b"S", self.severity), (b"V", self.severity), (b"C", self.sqlstate), (b"M", self.message)]
        if self.detail:
            out.append((b"D", self.detail))
        if self.hint:
            out.append((b"H", self.hint))
        if self.position:
            out.append((b"P", str(self.position)))
        return out


def from_canon_error(error: CanonError) -> PgError:
    """Canon's error hierarchy -> SQLSTATE (each error class names its own); message and hint unchanged."""
    message = error.message
    if error.location and str(error.location):
        message = f"{error.location}: {message}"
    return PgError(error.sqlstate, message, hint=error.hint)
