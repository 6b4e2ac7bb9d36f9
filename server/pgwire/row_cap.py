"""A wire query's LIMIT against the server's row cap.

BI tools put a LIMIT above any answer they expect: Superset's SQL Lab runs every query with
`LIMIT SQL_MAX_ROW + 1` (100,001 by default) to learn whether rows were left out. In PostgreSQL a
LIMIT larger than the answer changes nothing, so here such a LIMIT reads as no LIMIT: the query runs
under the row cap like an unlimited one, and an answer that really is larger than the cap still fails
with ResultTooLargeError (54000), never cut short in silence. The HTTP API keeps refusing a `limit`
above the cap: there the caller chose it, and can page.
"""

from __future__ import annotations

from dataclasses import replace

from canon.compiler.request import QueryRequest


def within_row_cap(request: QueryRequest, cap: int | None) -> QueryRequest:
    """`request` with a LIMIT above `cap` dropped (the runtime then applies the cap itself)."""
    limit = request.limit
    if cap is not None and isinstance(limit, int) and not isinstance(limit, bool) and limit > cap:
        return replace(request, limit=None)
    return request
