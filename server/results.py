"""Query results as the contracts say: JSON with typed columns, CSV, or a table for people."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

# dimension types in the catalog -> column types in results
COLUMN_TYPES = {"categorical": "string", "number": "number", "time": "time", "boolean": "boolean"}


@dataclass
class QueryResult:
    columns: list[dict]  # {"name": ..., "type": ...}
    rows: list[list]
    sql: str
    elapsed_ms: float
    warnings: list[str] | None = None
    # {time column: [start dates]}: periods holding only some of their days (server/runtime/time_notes.py)
    partial_periods: dict | None = None

    def to_dict(self) -> dict:
        body = {"columns": self.columns, "rows": self.rows, "sql": self.sql, "elapsed_ms": self.elapsed_ms}
        if getattr(self, "rollup", None):  # answered from this rollup (server/rollups/)
            body["rollup"] = self.rollup
        if self.warnings:
            body["warnings"] = self.warnings
        if self.partial_periods:
            body["partial_periods"] = self.partial_periods
        return body


def json_value(value):
    """Numbers stay JSON numbers (never strings); times become ISO text."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat(sep="T")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return value


def column_type(kind: str) -> str:
    return COLUMN_TYPES.get(kind, kind)


def to_json(result: QueryResult) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False)


def to_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c["name"] for c in result.columns])
    writer.writerows([["" if v is None else v for v in row] for row in result.rows])
    return out.getvalue()


def format_cell(value, kind: str) -> str:
    if value is None:
        return "∅"
    if kind == "number" and isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.2f}"
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
