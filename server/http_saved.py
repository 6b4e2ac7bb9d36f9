"""Saved queries over HTTP: listed, shown and run by name.

    GET  /v1/saved-queries                 the catalog's saved queries (those the caller may run)
    GET  /v1/saved-queries/{name}          one, with its request
    POST /v1/saved-queries/{name}/run      run it; the body may add filters, a time range, order, limit

A saved query runs like `POST /v1/query` (same answer shape, policies, caps, audit line): this module
only turns the name into the request (canon.compiler.saved).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path as PathParam, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from canon.compiler.errors import AccessDeniedError
from canon.compiler.saved import saved_query_request

from . import http_models as hm
from .http_api import ERRORS, QUERY_ERRORS, build_request, catalog_of, grant_of, result_body, run_request, warning_header
from .runtime.visibility import dimension_allowed

router = APIRouter(tags=["saved queries"])


class SavedQueryRun(hm.QueryBody):
    """What a caller adds to a saved query; its metrics and dimensions are the saved query's own."""

    metrics: list[str] = Field(default_factory=list, max_length=0, description="Not allowed: the saved query names them")
    dimensions: list[str] = Field(default_factory=list, max_length=0, description="Not allowed: the saved query names them")

    @model_validator(mode="after")
    def _metrics_or_dimensions(self):  # overrides QueryBody's: the saved query names both
        return self


def _describe(saved) -> dict:
    return {"name": saved.name, "label": saved.label, "description": " ".join((saved.description or "").split()) or None,
            "owner": saved.owner, "tier": saved.tier, "metrics": list(saved.metrics), "dimensions": list(saved.dimensions),
            "where": saved.where, "order": list(saved.order), "limit": saved.limit}


def _runnable(catalog, grant, saved) -> bool:
    return all(grant.queryable(catalog, m) for m in saved.metrics) and \
        all(dimension_allowed(catalog, grant, d) for d in saved.dimensions)


@router.get("/v1/saved-queries")
async def list_saved_queries(request: Request):
    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    shown = [_describe(s) for _, s in sorted(catalog.saved_queries.items()) if _runnable(catalog, grant, s)]
    return {"saved_queries": shown, "count": len(shown)}


def _saved(request: Request, name: str):
    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    saved_query_request(catalog, name)  # unknown: 404 naming the valid ones
    saved = catalog.saved_queries[name]
    if not _runnable(catalog, grant, saved):
        raise AccessDeniedError(f"saved query '{name}' is not available to user {grant.user!r}",
                                hint=f"it uses members the access policies {', '.join(grant.policies)} hide")
    return catalog, saved


@router.get("/v1/saved-queries/{name}", responses=ERRORS)
async def get_saved_query(request: Request, name: Annotated[str, PathParam(max_length=200)]):
    return _describe(_saved(request, name)[1])


@router.post("/v1/saved-queries/{name}/run", response_model=hm.QueryResponse, response_model_exclude_none=True,
             responses=QUERY_ERRORS)
async def run_saved_query(request: Request, name: Annotated[str, PathParam(max_length=200)],
                          body: SavedQueryRun | None = None):
    catalog, _ = _saved(request, name)
    body = body or SavedQueryRun()
    req = saved_query_request(catalog, name, build_request(catalog, body))
    result = await run_request(request, req, timeout_s=body.timeout_s)
    return JSONResponse(result_body(result), headers=warning_header(result.warnings))
