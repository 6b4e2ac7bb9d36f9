"""Which periods of an answer are partial: cut by the range, or still running on `today`.

A relative range that starts or ends inside a period ("last 12 weeks" on a Thursday) gives a first or
last period holding only some of its days; so does the period holding today (its days are not over).
Pure: the runtime lists the partial periods its rows hold, beside the rows (`partial_periods`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from .calendar import CLOCK_GRAINS, next_period, period_start
from .catalog import Catalog
from .request import QueryRequest
from .resolve import ResolvedQuery, _today, resolve


def partial_periods(resolved: ResolvedQuery, today: date) -> list[str]:
    """The start dates (ISO) of the periods of metric_time that hold only some of their days."""
    time = resolved.time_dim
    grain = (time.grain or "day") if time is not None else None
    if grain is None or grain == "day" or grain in CLOCK_GRAINS:
        return []  # ranges are whole days: a day is never cut
    ctx, found = resolved.time, []
    if resolved.start:
        first = period_start(resolved.start, grain, ctx)
        if _moment(first) < _moment(resolved.start):
            found.append(first[:10])
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time())
    end = min(_moment(resolved.end), tomorrow) if resolved.end else tomorrow
    last = period_start((end - timedelta(microseconds=1)).isoformat(sep=" "), grain, ctx)
    if _moment(next_period(last, grain, ctx)) > end and last[:10] not in found:
        found.append(last[:10])
    return found


def request_partial_periods(catalog: Catalog, request: QueryRequest) -> list[str]:
    return partial_periods(resolve(catalog, request), _today(catalog, request))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
