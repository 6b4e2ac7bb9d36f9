"""Offsets that do not line up with the requested grain: the same days one offset earlier.

`revenue_mom_growth` by week compares each week with *the same days one month earlier* (the metric's
description), not with the week that holds "week start − 1 month" — that reading would compare two
consecutive weeks with one and the same earlier week. So when the offset is not a whole number of
periods (a month at week grain, a week at month grain, a month at quarter grain), the shifted measure
is grouped by the period its rows fall in once moved forward by the offset: a row of day d counts for
the period holding d + offset. Days 29–31 of a month followed by a shorter month all move to that
month's last day (the engines clamp as `calendar.shift` does). Offsets that line up (a month at month
grain, a year at quarter grain, anything at day grain) keep reading the period holding P − offset.
"""

from __future__ import annotations

from sqlglot import exp

from .calendar import CLOCK_GRAINS, TimeContext, Window, add, next_period, period_start, shift, truncate

_GRAIN_MONTHS = {"month": 1, "quarter": 3, "fiscal_quarter": 3, "year": 12, "fiscal_year": 12}
# a clamped month end moves by up to 3 days (Jan 31 + 1 month = Feb 28): read that much further
_CLAMP = Window(4, "day")


def aligned(grain: str, offset: Window) -> bool:
    """Whether moving a whole period of `grain` by `offset` gives a whole period again."""
    if grain == "day" or grain in CLOCK_GRAINS:
        return True
    days, months = offset.as_days(), offset.as_months()
    if grain == "week":
        return days is not None and days % 7 == 0
    return months is not None and months % _GRAIN_MONTHS[grain] == 0


def one_to_one(grain: str, offset: Window) -> bool:
    """Whether the offset maps whole periods onto whole periods one to one (a month at month grain, a
    week at day grain): then the periods a shifted value lands in are its own periods moved forward.
    Month offsets at day (and clock) grains clamp: Mar 30 and 31 both read Feb 29."""
    if offset.as_days() is not None:
        return aligned(grain, offset)
    return grain in _GRAIN_MONTHS and aligned(grain, offset)


def moved_period(local: exp.Expression, grain: str, offset: Window, time: TimeContext) -> exp.Expression:
    """The period a row counts for: its (zone-shifted) time moved forward by the offset, truncated."""
    return truncate(add(local, offset.count, offset.unit), grain, time)


def moved_bounds(local: exp.Expression, period: exp.Expression, start: str | None, end: str | None, grain: str,
                 offset: Window, time: TimeContext) -> list[exp.Expression]:
    """Rows whose moved period is one of the requested periods (read whole, as offsets do), plus plain
    bounds on the row time so the engine can skip the rest of the table."""
    from .plan import timestamp

    bounds = []
    if start:
        first = period_start(start, grain, time)
        bounds.append(exp.GTE(this=period.copy(), expression=exp.cast(exp.Literal.string(first[:10]), exp.DataType.Type.DATE)))
        bounds.append(exp.GTE(this=local.copy(), expression=timestamp(shift(first, offset, -1))))
    if end:
        bounds.append(exp.LT(this=period.copy(), expression=timestamp(end)))
        after = next_period(end, grain, time)
        bounds.append(exp.LT(this=local.copy(), expression=timestamp(shift(shift(after, offset, -1), _CLAMP))))
    return bounds
