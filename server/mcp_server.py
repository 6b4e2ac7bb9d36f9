"""The catalog for LLM agents: a Model Context Protocol server over the runtime.

    canon mcp [--project DIR] [--warehouse URL] [--token JWT]      # stdio, as MCP hosts launch servers
    canon serve  ->  POST http://host:port/mcp                     # streamable HTTP, on the same runtime

Tools: `list_metrics`, `describe_metric`, `list_dimensions`, `search_catalog`, `query_metrics`,
`compile_sql`, `run_saved_query`, `explain_lineage`, `cross_sell`. Every call goes through the runtime
as the caller (`via: mcp`): over stdio the identity the server was started with, over HTTP the token
the request carries (checked by the same middleware as every other route) — the same policies, caps
and audit line as HTTP; an agent sees only what its token may see. Answers are JSON (columns, rows,
sql); a bad call is a tool error whose text names the offender and the valid choices, as every other
front end says it.
"""

# no `from __future__ import annotations`: the SDK reads the tools' annotations, and `Context` is
# imported inside _build (the mcp package is an optional extra)
import functools
from dataclasses import replace
from typing import Any, Callable

from sqlglot import exp

from canon.compiler.errors import CanonError
from canon.compiler.introspect import dimensions_for
from canon.compiler.request import QueryRequest

from .runtime import Identity, Runtime
from .structured_filters import column_for
from .runtime import visibility as seen

MAX_ROWS = 1000  # an agent's context is small: answers beyond this are cut, and say so
MCP_PATH = "/mcp"


def build_server(runtime: Runtime, identity: Identity):
    """An MCPServer whose tools answer through `runtime` as `identity` (stdio)."""
    return _build(lambda: runtime, lambda ctx: identity)


def http_routes(runtime_of: Callable[[], Runtime]):
    """(routes, their session manager) serving the tools over streamable HTTP at MCP_PATH; each call
    runs as the identity the HTTP middleware verified for its request. The manager must run in the
    host's lifespan."""
    from mcp.server.transport_security import TransportSecuritySettings

    def identity_of(ctx) -> Identity:
        request = ctx.request_context.request
        found = getattr(getattr(request, "state", None), "identity", None)
        return replace(found, via="mcp") if found is not None else Identity("anonymous", "mcp")

    server = _build(runtime_of, identity_of)
    # Host and Origin are checked by Canon's own guard (http_guard.py, `allowed_hosts`) before this app
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
                                     transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    return app.routes, server.session_manager


def _build(runtime_of: Callable[[], Runtime], identity_of: Callable[[Any], Identity]):
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("canon", instructions=(
        "Canon is the governed metrics catalog of the sales and marketing department. Look metrics up "
        "(list_metrics, search_catalog, describe_metric), then ask for numbers with query_metrics: metric "
        "names and dimension references such as product.category or metric_time.month. Never compute a KPI "
        "yourself when a metric exists for it."),
        log_level="WARNING")  # the SDK configures the root logger when nothing has: not at INFO (a line per request)

    def guarded(fn):
        """Canon's errors as tool errors: the message and the hint, for the agent to correct itself."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except CanonError as error:
                raise ToolError(str(error)) from None
        return call

    def grant(ctx):
        runtime = runtime_of()
        catalog = runtime.catalog
        return catalog, runtime.grant(identity_of(ctx), catalog)

    @server.tool()
    @guarded
    def list_metrics(ctx: Context, query: str | None = None) -> dict[str, Any]:
        """The metrics you may query: name, label, description, owner, tier. `query` keeps those whose
        name, label, description or tags hold every word of it."""
        catalog, access = grant(ctx)
        words = (query or "").lower().split()
        found = []
        for name, metric in sorted(catalog.metrics.items()):
            text = " ".join(filter(None, (name, metric.label, metric.description, " ".join(metric.tags)))).lower()
            if access.queryable(catalog, name) and all(w in text for w in words):
                found.append({"name": name, "label": metric.label, "type": metric.type, "owner": metric.owner,
                              "tier": metric.tier, "description": " ".join((metric.description or "").split())})
        return {"metrics": found}

    @server.tool()
    @guarded
    def describe_metric(ctx: Context, name: str) -> dict[str, Any]:
        """One metric: its definition, owner, tier and the dimensions it can be grouped by."""
        catalog, access = grant(ctx)
        metric = seen.check_metric(catalog, access, name)
        dims = seen.visible_dimensions(catalog, access, dimensions_for(catalog, [name]))
        return {"name": name, "definition": metric.model_dump(mode="json", exclude_none=True),
                "dimensions": [d.to_dict() for d in dims]}

    @server.tool()
    @guarded
    def list_dimensions(ctx: Context, metrics: list[str]) -> dict[str, Any]:
        """The dimensions every one of these metrics can be grouped and filtered by."""
        catalog, access = grant(ctx)
        for name in metrics:
            seen.check_metric(catalog, access, name)
        dims = seen.visible_dimensions(catalog, access, dimensions_for(catalog, list(metrics)))
        return {"metrics": metrics, "dimensions": [d.to_dict() for d in dims]}

    @server.tool()
    @guarded
    def search_catalog(ctx: Context, query: str, limit: int = 20) -> dict[str, Any]:
        """Metrics, dimensions and glossary terms matching the words of `query` (names, labels, synonyms)."""
        from canon.compiler.search import search

        catalog, access = grant(ctx)
        hits = seen.visible_hits(catalog, access, search(catalog, query, limit=max(1, min(limit, 200))))
        return {"results": [h.to_dict() for h in hits]}

    def _request(metrics, dimensions, where, order, limit, start, end, time_range) -> QueryRequest:
        return QueryRequest(metrics=tuple(metrics), dimensions=tuple(dimensions or ()), where=tuple(where or ()),
                            order=tuple(order or ()), limit=min(limit or MAX_ROWS, MAX_ROWS), start=start, end=end,
                            time_range=time_range)

    def _answer(ctx, request: QueryRequest) -> dict[str, Any]:
        result = runtime_of().query(request, identity=identity_of(ctx))
        body = result.to_dict()
        if len(result.rows) >= MAX_ROWS:
            body["note"] = f"cut at {MAX_ROWS} rows: add filters or a smaller limit"
        return body

    @server.tool()
    @guarded
    def query_metrics(ctx: Context, metrics: list[str], dimensions: list[str] | None = None, where: list[str] | None = None,
                      order: list[str] | None = None, limit: int | None = 100, start: str | None = None,
                      end: str | None = None, time_range: str | None = None) -> dict[str, Any]:
        """Compute metrics by dimensions. `dimensions` like product.category or metric_time.month; `where`
        filters over dimensions (customer.country_code = 'DE'); `order` a metric or dimension, '-' first for
        descending; `start`/`end` ISO dates or `time_range` ('last 90 days'). Answers columns, rows, sql."""
        return _answer(ctx, _request(metrics, dimensions, where, order, limit, start, end, time_range))

    @server.tool()
    @guarded
    def compile_sql(ctx: Context, metrics: list[str], dimensions: list[str] | None = None, where: list[str] | None = None,
                    dialect: str | None = None) -> dict[str, Any]:
        """The SQL query_metrics would run (with your row filters), in the warehouse's dialect or another."""
        request = _request(metrics, dimensions, where, None, None, None, None, None)
        runtime = runtime_of()
        prepared = runtime.prepare(request, identity=identity_of(ctx), capped=False, dialect=dialect)
        return {"sql": prepared.compiled.sql, "dialect": dialect or runtime.sql_dialect}

    @server.tool()
    @guarded
    def run_saved_query(ctx: Context, name: str, where: list[str] | None = None, time_range: str | None = None,
                        limit: int | None = 100) -> dict[str, Any]:
        """Run one of the catalog's reviewed saved queries by name, optionally narrowed."""
        from canon.compiler.saved import saved_query_request

        base = QueryRequest(metrics=(), where=tuple(where or ()), time_range=time_range,
                            limit=min(limit or MAX_ROWS, MAX_ROWS))
        return _answer(ctx, saved_query_request(runtime_of().catalog, name, base))

    @server.tool()
    @guarded
    def explain_lineage(ctx: Context, metric: str, direction: str = "both") -> dict[str, Any]:
        """What a metric is built from (down: metrics, measures, models, tables and columns) and what
        depends on it (up: metrics, views, saved queries). `direction`: down, up or both."""
        from canon.compiler.lineage import lineage_json

        if direction not in ("down", "up", "both"):
            raise CanonError(f"direction {direction!r} is not one of down, up, both")
        catalog, access = grant(ctx)
        seen.check_metric(catalog, access, metric)
        return seen.prune_lineage(catalog, access, lineage_json(catalog, metric, direction))

    @server.tool()
    @guarded
    def cross_sell(ctx: Context, value: str, dimension: str = "category", limit: int = 10) -> dict[str, Any]:
        """What is bought together with an item: for baskets holding `value` of the item dimension
        `dimension` (category, product_name, brand, ...), the other values with the catalog's affinity
        metrics (confidence = the cross-sell score, support, lift), best first."""
        catalog, _ = grant(ctx)
        rules = {n: a.definition for n, a in sorted(catalog.affinities.items())
                 if a.definition.returns in ("confidence", "support", "lift")}
        score = next((n for n, d in rules.items() if d.returns == "confidence"), None)
        if score is None:
            raise CanonError("this catalog defines no affinity metric that returns confidence",
                             hint="add a metric of type affinity with `returns: confidence`")
        same = lambda d: (d.basket, d.item, d.filter) == (rules[score].basket, rules[score].item, rules[score].filter)  # noqa: E731
        metrics = [score] + [n for n, d in rules.items() if n != score and same(d) and d.returns != "confidence"]
        # the value is a literal node of a condition tree, never filter text
        condition = exp.EQ(this=column_for(f"antecedent.{dimension}", "dimension"), expression=exp.Literal.string(str(value)))
        request = QueryRequest(metrics=tuple(metrics), dimensions=(f"antecedent.{dimension}", f"consequent.{dimension}"),
                               where=(condition,),
                               order=(f"-{score}",), limit=max(1, min(limit, MAX_ROWS)))
        return _answer(ctx, request)

    return server


def identity_for(runtime: Runtime, token: str | None) -> Identity:
    """Who the agent is: the token's claims when one is given (required when the project configures
    authentication), else an anonymous local user."""
    if token:
        return runtime.authn.verify_token(token, via="mcp")
    if runtime.authn.required:
        from canon.compiler.errors import AuthenticationError

        raise AuthenticationError("this project requires authentication: pass --token or set $CANON_TOKEN",
                                  hint="`canon token --claim role=...` signs one with $CANON_API_SECRET")
    return Identity("local", "mcp")
