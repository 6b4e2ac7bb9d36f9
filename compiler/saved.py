"""Saved queries run by name: a reviewed request, with what the caller adds.

    request = saved_query_request(catalog, "customer_category_spend", where=("product.category = 'Coffee'",),
                                  time_range="last 90 days")

The saved query fixes the metrics and dimensions; a caller may narrow it (more `where`, a time range, a
time zone, `having`) and page it (its own `order` and `limit` replace the saved ones). It is a request
like any other from there on: the same validation, policies and caps.
"""

from __future__ import annotations

from dataclasses import replace

from .catalog import Catalog
from .errors import UnknownNameError, did_you_mean
from .request import QueryRequest


def saved_query_request(catalog: Catalog, name: str, base: QueryRequest | None = None) -> QueryRequest:
    """The saved query `name` as a request; `base` holds what the caller adds (its metrics and
    dimensions must be empty: the saved query names them)."""
    saved = catalog.saved_queries.get(name) if isinstance(name, str) else None
    if saved is None:
        raise UnknownNameError(f"unknown saved query '{name}'", hint=did_you_mean(str(name), catalog.saved_queries)
                               if catalog.saved_queries else "this catalog declares no saved_queries")
    base = base or QueryRequest(metrics=())
    if base.metrics or base.dimensions:
        raise UnknownNameError(f"saved query '{name}' names its own metrics and dimensions",
                               hint=f"it computes {', '.join(saved.metrics)} by {', '.join(saved.dimensions) or 'nothing'};"
                                    " add filters, a time range, order or limit instead")
    where = ((saved.where,) if saved.where else ()) + tuple(base.where)
    return replace(base, metrics=tuple(saved.metrics), dimensions=tuple(saved.dimensions), where=where,
                   order=tuple(base.order) or tuple(saved.order),
                   limit=base.limit if base.limit is not None else saved.limit)
