"""HTTP API for cross-sell, cart additions, recommendations, upsell and feedback.

    install(app, project, warehouse_url)   # in server.http_api.create_app

Every endpoint answers 404 (NotConfiguredError) while the catalog has no `recommendations:` block,
and then nothing is built at start (no warning either).

`install` adds the router and wraps the app's lifespan: before the app opens the warehouse, the
feedback journal is loaded into it (see feedback.py; on PostgreSQL a PostgresFeedbackSync then inserts
each event and replays the journal every `recommendations.feedback_retry_seconds`, default 5, while
PostgreSQL is away); once the app's runtime is on
`app.state`, a snapshot persisted from the same catalog and DuckDB file (if any) serves at once, a
fresh one is built in the background once no query has run for 5 s (at the latest 120 s after the
start; a recommendation request starts it at once and waits up to 30 s for it), and a thread
refreshes it every `recommendations.refresh_minutes` of canon.yml (or
$CANON_RECOMMEND_REFRESH_MINUTES; default 15; 0 = only on `POST /v1/recommendations/refresh`, a
restart or `canon recommendations refresh` + restart). Requests read `app.state.recommend` and
answer from the in-memory snapshot; only a non-default `days` window touches the warehouse (once,
then cached until the next refresh).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from canon.compiler.errors import CanonError, QueryError, WarehouseError
from canon.compiler.recommendations import level_name

from .. import http_models as hm
from . import engine
from .feedback import RETRY_S, FeedbackJournal, PostgresFeedbackSync, load_into_warehouse, make_event
from .snapshot import DEFAULT_WINDOW_DAYS, ITEM_LEVEL, MAX_WINDOW_DAYS, SnapshotStore, block_of

log = logging.getLogger("canon.recommend")

DEFAULT_REFRESH_MINUTES = 15.0
FIRST_SNAPSHOT_WAIT_S = 30.0
FIRST_BUILD_QUIET_S = 5.0  # the first build starts once no query has run for this long ...
FIRST_BUILD_WAIT_S = 120.0  # ... or this long after the start, whichever comes first

async def _authorized(request: Request) -> None:
    """Recommendations read a snapshot of every customer's baskets, which no row filter can narrow:
    callers under a row filter (or under no policy) are refused, and per-customer answers need the
    customer dimension (fail closed, server/runtime/access.py)."""
    from canon.compiler.errors import AccessDeniedError

    from ..http_auth import identity_of

    runtime = request.app.state.runtime
    catalog = runtime.catalog
    feedback = request.url.path.endswith("/feedback")
    # 404 without a `recommendations:` block; feedback stays open (an event about something shown, kept
    # in the journal and the feedback table, reads nothing the block names)
    block = getattr(catalog, "recommendations", None) if feedback else block_of(catalog)
    grant = runtime.grant(identity_of(request), catalog)
    if grant.open:
        return
    who = f"user {grant.user!r}"
    if grant.nothing or grant.row_filters:
        why = "no access policy matches" if grant.nothing else \
            "the row filters of " + ", ".join(f.policy for f in grant.row_filters) + " cannot narrow them"
        raise AccessDeniedError(f"recommendations are not available to {who}: {why}",
                                hint="recommendations are built from every customer's baskets")
    if block is None:  # feedback on a catalog without the block: no customer dimension to check, fail closed
        raise AccessDeniedError(f"recommendation feedback is not available to {who}",
                                hint="only callers without access policies may record it while the catalog has "
                                     "no `recommendations:` block")
    needed = [m for m in (block.affinity,) if not grant.allows_metric(catalog, m)]
    per_customer = "customer_id" in request.path_params or feedback
    if per_customer and not grant.allows_dimension(catalog, block.customers.id):
        needed.append(block.customers.id)
    if needed:
        raise AccessDeniedError(f"recommendations are not available to {who}: {', '.join(needed)} is denied",
                                hint=f"denied by the access policies {', '.join(grant.policies)}")


router = APIRouter(tags=["recommendations"], dependencies=[Depends(_authorized)])


@dataclass
class RecommendState:
    store: SnapshotStore
    journal: FeedbackJournal
    warehouse_url: str
    postgres: bool
    sync: PostgresFeedbackSync | None = None  # PostgreSQL: feedback into the table, replayed after outages


def settings(project: Path) -> dict:
    from ..project import load_config

    config = load_config(project).get("recommendations") or {}
    minutes = os.environ.get("CANON_RECOMMEND_REFRESH_MINUTES", config.get("refresh_minutes", DEFAULT_REFRESH_MINUTES))
    return {"refresh_minutes": float(minutes), "window_days": int(config.get("window_days", DEFAULT_WINDOW_DAYS)),
            "feedback_retry_s": float(config.get("feedback_retry_seconds", RETRY_S))}


def install(app: FastAPI, project, warehouse_url: str) -> None:
    """Add the recommendation endpoints to `app` and their start-up / shut-down work to its lifespan."""
    from ..warehouses.postgres import is_postgres_url

    project = Path(project)
    app.include_router(router)
    inner = app.router.lifespan_context
    config = settings(project)

    @asynccontextmanager
    async def lifespan(app_: FastAPI):
        journal = FeedbackJournal(project)
        loaded_at_start = False
        if journal.path.exists() and (is_postgres_url(warehouse_url) or Path(warehouse_url).is_file()):
            try:  # before the app opens the warehouse (read-only, for DuckDB)
                loaded = await asyncio.to_thread(load_into_warehouse, warehouse_url, journal)
                log.info("recommendation feedback: %d journal event(s) loaded into the warehouse", loaded)
                loaded_at_start = True
            except Exception as error:  # noqa: BLE001 — the journal keeps them; next start retries
                log.warning("recommendation feedback not loaded into the warehouse yet: %s", error)
        async with inner(app_) as state:
            store = SnapshotStore(project, lambda: app_.state.runtime.catalog, lambda: app_.state.runtime,
                                  days=config["window_days"], freeze_gc=True)
            app_.state.recommend = RecommendState(store, journal, warehouse_url, is_postgres_url(warehouse_url))
            if app_.state.recommend.postgres:  # not loaded at start (PostgreSQL away): the sync replays it
                app_.state.recommend.sync = PostgresFeedbackSync(journal, warehouse_url, retry_s=config[
                    "feedback_retry_s"]).start(replay=not loaded_at_start)
            # serve at once from a snapshot persisted from this same catalog and DuckDB file, if any (the
            # data it was built from has not changed: no rebuild until the schedule says so); else build one
            # in the background once no query has run for a moment (within FIRST_BUILD_WAIT_S), so the
            # first dashboard does not share the cores with it; a recommendation request builds it at once
            if store.configured and not await asyncio.to_thread(store.publish_persisted_if_current):
                activity = app_.state.runtime.activity
                store.start_refresh(quiet=lambda stop: activity.wait_quiet(FIRST_BUILD_QUIET_S, FIRST_BUILD_WAIT_S, stop))
            store.start(config["refresh_minutes"] * 60)
            try:
                yield state
            finally:
                store.stop()
                if app_.state.recommend.sync is not None:
                    await asyncio.to_thread(app_.state.recommend.sync.stop)
                import gc

                gc.unfreeze()  # let interpreter shutdown collect everything normally

    app.router.lifespan_context = lifespan


def _state(request: Request) -> RecommendState:
    state = getattr(request.app.state, "recommend", None)
    if state is None:
        raise WarehouseError("the recommendation service is not started", hint="start it with `canon serve`")
    return state


async def _window(request: Request, days: int | None):
    """(snapshot, window): the default window straight from memory; others built once and cached."""
    store = _state(request).store
    snapshot = store.snapshot
    if snapshot is None:  # wait for the build running, or start one (the block came with a catalog reload)
        snapshot = await asyncio.to_thread(store.wait, FIRST_SNAPSHOT_WAIT_S)
        if snapshot is None:
            raise WarehouseError("the recommendation snapshot is not built yet" + (
                f" (last attempt: {store.last_error})" if store.last_error else ""),
                hint="retry shortly; POST /v1/recommendations/refresh builds it now")
    if days is None or days == snapshot.window.days:
        return snapshot, snapshot.window
    try:
        return await asyncio.to_thread(store.window, days)
    except CanonError:
        raise
    except Exception as error:  # noqa: BLE001
        raise WarehouseError(f"the recommendation snapshot is unavailable: {type(error).__name__}: {error}",
                             hint="check the warehouse; POST /v1/recommendations/refresh retries") from None


Limit = Annotated[int, Query(ge=1, le=engine.MAX_LIMIT, description="At most this many items")]
MinSupport = Annotated[float, Query(ge=0, le=1, description="Only rules with at least this cross_sell_support")]
Days = Annotated[int | None, Query(ge=1, le=MAX_WINDOW_DAYS,
                                   description="Window: the last N days of data (default 365, counted back from "
                                               "the last completed order's day)")]


@router.get("/v1/cross-sell")
async def cross_sell(
    request: Request,
    product_id: Annotated[str | None, Query(max_length=200, description="Product id or exact product name")] = None,
    level: Annotated[str, Query(max_length=63, description="product, or a level of the `recommendations:` block's "
                                                           "items.levels (the demo: category, brand)")] = "product",
    value: Annotated[str | None, Query(max_length=200, description="The level's value (level=category: a category), "
                                                                   "or a product id or name")] = None,
    limit: Limit = 10,
    min_support: MinSupport = 0.0,
    days: Days = None,
):
    """Products (or categories, brands: the block's levels) most often bought with the given one, by the
    affinity metric (cross_sell_score)."""
    field = "product_id" if level == "product" and product_id is not None else "value"
    item = product_id if field == "product_id" else value
    if item is None:
        raise QueryError("product_id: required (or value= with level=category|brand)",
                         hint="e.g. /v1/cross-sell?product_id=1001 or /v1/cross-sell?level=category&value=Phones")
    snapshot, window = await _window(request, days)
    return JSONResponse(engine.cross_sell(snapshot, window, item, level=level, limit=limit, min_support=min_support,
                                          field=field))


class CartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_ids: list[int] = Field(min_length=1, max_length=1000)
    limit: int = Field(10, ge=1, le=engine.MAX_LIMIT)
    min_support: float = Field(0.0, ge=0, le=1)
    days: int | None = Field(None, ge=1, le=MAX_WINDOW_DAYS)


@router.post("/v1/cross-sell/cart")
async def cart(request: Request, body: CartBody):
    """Best additions to a cart: score(B) = max over cart items A of cross_sell_score(A → B)."""
    snapshot, window = await _window(request, body.days)
    return JSONResponse(engine.cart_additions(snapshot, window, body.product_ids, limit=body.limit,
                                              min_support=body.min_support))


# The keys recommendation answers name things by: fixed by engine.py and snapshot.py (Product.to_dict,
# Rule.metrics), the same on every catalog, so a client needs no demo name (tests pin them to the engine).
ANSWER_KEYS = {"item_id": "product_id", "item_name": "product_name", "confidence": "cross_sell_score",
               "lift": "cross_sell_lift", "support": "cross_sell_support", "pair_count": "cross_sell_pair_orders",
               "popularity": "product_purchase_frequency", "popularity_in_group": "product_purchase_frequency_in_group"}


def lift_metric(catalog, block, grant) -> str | None:
    """The catalog's lift for the block's rules: an affinity metric with the affinity metric's basket, item
    and filter and `returns: lift` that the caller may read (the rule catalog's `<affinity>__lift` sibling
    lives only in the snapshot's catalog, so /v1/query cannot answer it); the first by name, else None."""
    from canon.compiler.model import AffinityMetric

    base = catalog.metrics[block.affinity]
    same = (base.basket, base.item, base.filter)
    return next((name for name, m in sorted(catalog.metrics.items()) if isinstance(m, AffinityMetric)
                 and m.returns == "lift" and (m.basket, m.item, m.filter) == same
                 and grant.allows_metric(catalog, name)), None)


@router.get("/v1/recommendations/config", response_model=hm.RecommendationsConfig,
            responses={404: {"model": hm.ErrorBody}, 403: {"model": hm.ErrorBody}})
async def recommendations_config(request: Request):
    """What the catalog's `recommendations:` block names (metrics, item and customer dimensions, the levels
    `/v1/cross-sell?level=` takes) and the keys answers carry: enough for a client to build its views
    without assuming the demo's names. 404 without the block. Read from the catalog; no snapshot needed."""
    from ..http_auth import identity_of

    runtime = request.app.state.runtime
    catalog = runtime.catalog
    block = block_of(catalog)
    named = lambda refs: [{"name": level_name(r), "ref": r} for r in refs]  # noqa: E731
    items, customers = block.items, block.customers
    return {"affinity": block.affinity, "lift": lift_metric(catalog, block, runtime.grant(identity_of(request), catalog)),
            "popularity": block.popularity, "basket": catalog.metrics[block.affinity].basket, "item_level": ITEM_LEVEL,
            "items": {"id": items.id, "name": items.name, "show": named(items.show), "levels": named(items.levels)},
            "customers": {"id": customers.id, "show": named(customers.show)}, "answer_keys": ANSWER_KEYS}


@router.get("/v1/recommendations/snapshot")
async def snapshot_status(request: Request):
    """What the recommendation endpoints answer from: when it was built, the window, its size."""
    store = _state(request).store
    snapshot = store.snapshot
    return {"snapshot": snapshot.describe() if snapshot else None, "refreshes": store.refreshes,
            "last_error": store.last_error}


@router.post("/v1/recommendations/refresh")
async def refresh(request: Request):
    """Rebuild the snapshot from the warehouse now; the old one serves until the new one is ready."""
    store = _state(request).store
    try:
        snapshot = await asyncio.to_thread(store.refresh)
    except CanonError:
        raise
    except Exception as error:  # noqa: BLE001
        raise WarehouseError(f"refresh failed: {type(error).__name__}: {error}") from None
    return {"snapshot": snapshot.describe()}


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int
    product_id: int
    event: Literal["shown", "clicked", "purchased", "dismissed"]
    recommendation_id: str | None = Field(None, max_length=200)
    at: dt.datetime | None = None


@router.post("/v1/recommendations/feedback", status_code=201)
async def feedback(request: Request, body: FeedbackBody):
    """Record shown / clicked / purchased / dismissed. The event is fsync'd to the journal before the 201."""
    state = _state(request)
    snapshot = state.store.snapshot
    if snapshot is not None:
        engine.resolve_customer(snapshot, body.customer_id)
        engine.resolve_product(snapshot, body.product_id)
    event = make_event(body.customer_id, body.product_id, body.event, body.recommendation_id, body.at)
    await asyncio.to_thread(state.journal.append, event)  # durable from here on
    loaded = False
    if state.sync is not None:  # PostgreSQL: into the table now, or replayed once it is reachable again
        loaded = await asyncio.to_thread(state.sync.deliver, event)
        if loaded:  # cached answers over the feedback table are stale now
            request.app.state.runtime.results.invalidate({"recommendation_feedback"})
    return JSONResponse({"accepted": True, "event_id": event["event_id"], "in_warehouse": loaded,
                         "journal": "fsynced"}, status_code=201)


@router.api_route("/v1/recommendations/feedback", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def feedback_other_methods():
    """Feedback is POST only: without this, GET would reach /v1/recommendations/{customer_id} and be a 422."""
    from starlette.exceptions import HTTPException

    raise HTTPException(405, "use POST to record feedback", headers={"Allow": "POST"})


@router.get("/v1/recommendations/{customer_id}")
async def recommendations(
    request: Request,
    customer_id: Annotated[int, PathParam(description="The customer's id")],
    limit: Limit = 10,
    min_support: MinSupport = 0.0,
    days: Days = None,
):
    """Products the customer has not bought, by the best cross_sell_score from a product they bought."""
    snapshot, window = await _window(request, days)
    return JSONResponse(engine.recommend(snapshot, window, customer_id, limit=limit, min_support=min_support))


@router.get("/v1/upsell/{customer_id}")
async def upsell(
    request: Request,
    customer_id: Annotated[int, PathParam(description="The customer's id")],
    limit: Annotated[int, Query(ge=1, le=engine.MAX_LIMIT, description="At most this many products per category")] = 5,
    days: Days = None,
):
    """Per category the customer bought in: higher-tier products, by product_purchase_frequency, with the uplift."""
    snapshot, window = await _window(request, days)
    return JSONResponse(engine.upsell(snapshot, window, customer_id, limit=limit))


__all__ = ["router", "install", "RecommendState"]
