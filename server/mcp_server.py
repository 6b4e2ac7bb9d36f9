"""The catalog for LLM agents: a Model Context Protocol server over the runtime (`canon mcp`).

    canon mcp [--project DIR] [--warehouse URL] [--token JWT]      # stdio, as MCP hosts launch servers

Tools: `list_metrics`, `describe_metric`, `list_dimensions`, `search_catalog`, `query_metrics`,
`compile_sql`, `run_saved_query`. Every call goes through the runtime as the identity the server was
started with (`via: mcp`): the same policies, caps and audit line as HTTP; an agent sees only what its
token may see. Answers are JSON (columns, rows, sql); a bad call is a tool error whose text names the
offender and the valid choices, as every other front end says it.
"""

from __future__ import annotations

import functools
from typing import Any

from canon.compiler.errors import CanonError
from canon.compiler.introspect import dimensions_for
from canon.compiler.request import QueryRequest

from .runtime import Identity, Runtime
from .runtime import visibility as seen

MAX_ROWS = 1000  # an agent's context is small: answers beyond this are cut, and say so


def build_server(runtime: Runtime, identity: Identity):
    """An MCPServer whose tools answer through `runtime` as `identity`."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("canon", instructions=(
        "Canon is the governed metrics catalog of the sales and marketing department. Look metrics up "
        "(list_metrics, search_catalog, describe_metric), then ask for numbers with query_metrics: metric "
        "names and dimension references such as product.category or metric_time.month. Never compute a KPI "
        "yourself when a metric exists for it."))

    def guarded(fn):
        """Canon's errors as tool errors: the message and the hint, for the agent to correct itself."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except CanonError as error:
                raise ToolError(str(error)) from None
        return call

    def grant():
        catalog = runtime.catalog
        return catalog, runtime.grant(identity, catalog)

    @server.tool()
    @guarded
    def list_metrics(query: str | None = None) -> dict[str, Any]:
        """The metrics you may query: name, label, description, owner, tier. `query` keeps those whose
        name, label, description or tags hold every word of it."""
        catalog, access = grant()
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
    def describe_metric(name: str) -> dict[str, Any]:
        """One metric: its definition, owner, tier and the dimensions it can be grouped by."""
        catalog, access = grant()
        metric = seen.check_metric(catalog, access, name)
        dims = seen.visible_dimensions(catalog, access, dimensions_for(catalog, [name]))
        return {"name": name, "definition": metric.model_dump(mode="json", exclude_none=True),
                "dimensions": [d.to_dict() for d in dims]}

    @server.tool()
    @guarded
    def list_dimensions(metrics: list[str]) -> dict[str, Any]:
        """The dimensions every one of these metrics can be grouped and filtered by."""
        catalog, access = grant()
        for name in metrics:
            seen.check_metric(catalog, access, name)
        dims = seen.visible_dimensions(catalog, access, dimensions_for(catalog, list(metrics)))
        return {"metrics": metrics, "dimensions": [d.to_dict() for d in dims]}

    @server.tool()
    @guarded
    def search_catalog(query: str, limit: int = 20) -> dict[str, Any]:
        """Metrics, dimensions and glossary terms matching the words of `query` (names, labels, synonyms)."""
        from canon.compiler.search import search

        catalog, access = grant()
        hits = seen.visible_hits(catalog, access, search(catalog, query, limit=max(1, min(limit, 200))))
        return {"results": [h.to_dict() for h in hits]}

    def _request(metrics, dimensions, where, order, limit, start, end, time_range) -> QueryRequest:
        return QueryRequest(metrics=tuple(metrics), dimensions=tuple(dimensions or ()), where=tuple(where or ()),
                            order=tuple(order or ()), limit=min(limit or MAX_ROWS, MAX_ROWS), start=start, end=end,
                            time_range=time_range)

    def _answer(request: QueryRequest) -> dict[str, Any]:
        result = runtime.query(request, identity=identity)
        body = result.to_dict()
        if len(result.rows) >= MAX_ROWS:
            body["note"] = f"cut at {MAX_ROWS} rows: add filters or a smaller limit"
        return body

    @server.tool()
    @guarded
    def query_metrics(metrics: list[str], dimensions: list[str] | None = None, where: list[str] | None = None,
                      order: list[str] | None = None, limit: int | None = 100, start: str | None = None,
                      end: str | None = None, time_range: str | None = None) -> dict[str, Any]:
        """Compute metrics by dimensions. `dimensions` like product.category or metric_time.month; `where`
        filters over dimensions (customer.country_code = 'DE'); `order` a metric or dimension, '-' first for
        descending; `start`/`end` ISO dates or `time_range` ('last 90 days'). Answers columns, rows, sql."""
        return _answer(_request(metrics, dimensions, where, order, limit, start, end, time_range))

    @server.tool()
    @guarded
    def compile_sql(metrics: list[str], dimensions: list[str] | None = None, where: list[str] | None = None,
                    dialect: str | None = None) -> dict[str, Any]:
        """The SQL query_metrics would run (with your row filters), in the warehouse's dialect or another."""
        request = _request(metrics, dimensions, where, None, None, None, None, None)
        prepared = runtime.prepare(request, identity=identity, capped=False, dialect=dialect)
        return {"sql": prepared.compiled.sql, "dialect": dialect or runtime.sql_dialect}

    @server.tool()
    @guarded
    def run_saved_query(name: str, where: list[str] | None = None, time_range: str | None = None,
                        limit: int | None = 100) -> dict[str, Any]:
        """Run one of the catalog's reviewed saved queries by name, optionally narrowed."""
        from canon.compiler.saved import saved_query_request

        base = QueryRequest(metrics=(), where=tuple(where or ()), time_range=time_range,
                            limit=min(limit or MAX_ROWS, MAX_ROWS))
        return _answer(saved_query_request(runtime.catalog, name, base))

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
