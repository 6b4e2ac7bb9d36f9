"""Canon's public API: what front ends, notebooks and other services import.

    import canon
    catalog = canon.load_catalog("path/to/project")
    sql = canon.compile_request(catalog, canon.QueryRequest(metrics=("revenue",),
                                                             dimensions=("metric_time.month",)), "postgres").sql
    with canon.Runtime.open("path/to/project") as runtime:       # the one query service
        result = runtime.query(canon.QueryRequest(metrics=("revenue",)))
    client = canon.Client("http://localhost:8000", token=...)   # a running server, from a notebook
    client.query(["revenue"], by=["product.category"]).to_pandas()

Names resolve lazily (PEP 562), so `canon compile` on the command line does not pay for imports it
does not use. Everything not listed in __all__ is internal and may change.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_catalog": "canon.compiler.compile",
    "compile_request": "canon.compiler.compile",
    "CompiledQuery": "canon.compiler.compile",
    "DIALECTS": "canon.compiler.compile",
    "Catalog": "canon.compiler.catalog",
    "QueryRequest": "canon.compiler.request",
    "CanonError": "canon.compiler.errors",
    "ConfigError": "canon.compiler.errors",
    "CatalogErrors": "canon.compiler.errors",
    "UnknownNameError": "canon.compiler.errors",
    "QueryError": "canon.compiler.errors",
    "FilterError": "canon.compiler.errors",
    "UnsupportedError": "canon.compiler.errors",
    "WarehouseError": "canon.compiler.errors",
    "WarehouseUnavailableError": "canon.compiler.errors",
    "QueryTimeoutError": "canon.compiler.errors",
    "QueryCancelledError": "canon.compiler.errors",
    "ResultTooLargeError": "canon.compiler.errors",
    "Runtime": "canon.server.runtime",
    "QueryResult": "canon.server.results",
    "AuthenticationError": "canon.compiler.errors",
    "AccessDeniedError": "canon.compiler.errors",
    "Client": "canon.client",
    "Answer": "canon.client",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'canon' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
