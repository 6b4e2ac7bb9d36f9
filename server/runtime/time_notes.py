"""What an answer says about time beside its rows: partial periods and an empty range.

* `partial_periods`: {time column: [period starts]} for the first or last period that holds only some
  of its days (a range cutting it, or today still running) — compiler/time_edges.py decides.
* A time range without data: no rows (not one row of NULLs; counts keep their row of 0) and a warning
  naming the range, and when the freshness monitor knows it, when the metric's sources were last loaded.
"""

from __future__ import annotations

from canon.compiler.errors import CanonError
from canon.compiler.time_edges import request_partial_periods


def annotate(prepared, result, freshness) -> None:
    """Adds the time notes of `prepared`'s request to `result` (changed in place)."""
    request, catalog = prepared.request, prepared.catalog
    if not (request.start or request.end or request.time_range):
        return _mark_partial(prepared, result)
    metric_columns = len(request.metrics)
    single = len(result.rows) == 1 and len(result.columns) == metric_columns
    if single and all(v is None for v in result.rows[0]):
        result.rows = []  # an aggregate over no rows: nothing to report, not a row of NULLs
    # a count over no rows is 0, a true answer: the row stays, and the warning says why it is 0
    if not result.rows or (single and all(v in (None, 0) for v in result.rows[0])):
        result.warnings = (result.warnings or []) + [_empty_range(catalog, request, freshness)]
        return None
    return _mark_partial(prepared, result)


def _mark_partial(prepared, result) -> None:
    time = next((c["name"] for c in result.columns if c["name"].startswith("metric_time.")), None)
    if time is None or not result.rows:
        return
    try:
        periods = request_partial_periods(prepared.catalog, prepared.request)
    except CanonError:  # the request compiled already; a note must never fail an answer
        return
    index = [c["name"] for c in result.columns].index(time)
    present = {str(row[index])[:10] for row in result.rows if row[index] is not None}
    found = [p for p in periods if p in present]
    if found:
        result.partial_periods = {time: found}


def _empty_range(catalog, request, freshness) -> str:
    if request.time_range:
        span = f"'{request.time_range}'" + _days(catalog, request)
    else:
        span = " ".join(p for p in (f"from {request.start}" if request.start else "",
                                    f"to {request.end}" if request.end else "") if p)
    text = f"no data in the time range {span}"
    newest = _last_loaded(catalog, request, freshness)
    if newest:
        text += f"; the data of {', '.join(request.metrics)} was last loaded at {newest}"
    return text + "; check the range, or the dates the data covers"


def _days(catalog, request) -> str:
    """' (2029-03-02 to 2029-06-01)': the days a relative range named."""
    from datetime import datetime, timedelta

    from canon.compiler.resolve import resolve

    try:
        resolved = resolve(catalog, request)
    except CanonError:
        return ""
    if not (resolved.start and resolved.end):
        return ""
    last = datetime.fromisoformat(resolved.end) - timedelta(days=1)
    return f" ({resolved.start[:10]} to {last.date().isoformat()})"


def _last_loaded(catalog, request, freshness) -> str | None:
    report = freshness.report(catalog) if freshness is not None else None
    models = {m for name in request.metrics if name in catalog.facts for m in catalog.facts[name].models}
    times = [s.max_loaded_at for s in report or () if s.model in models and s.max_loaded_at is not None]
    return max(times).isoformat(sep=" ") if times else None
