"""A query answer as an Arrow IPC stream (`Accept: application/vnd.apache.arrow.stream`).

Large results reach notebooks and services without a JSON round trip: typed columns (times as
timestamps, numbers as int64/float64), and what the JSON answer says besides the rows (SQL, elapsed
time, warnings, truncated, cached) in the schema's metadata under `canon`.
"""

from __future__ import annotations

import json

from .results import QueryResult

# pyarrow is imported where it is used: a server that never answers Arrow never pays its import

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def wants_arrow(accept: str | None) -> bool:
    return bool(accept) and ARROW_STREAM in accept.lower()


def _column(values: list, kind: str):
    import pyarrow as pa

    if kind == "time":  # ISO text in the JSON answer: dates and timestamps both become timestamps
        return pa.array(values, pa.string()).cast(pa.timestamp("us"))
    if kind == "number":
        if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values):
            return pa.array(values, pa.int64())
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array(values)


def arrow_table(result: QueryResult, **extra):
    """The answer as a typed Arrow table (also what file exports write as Parquet or CSV)."""
    import pyarrow as pa

    names = [c["name"] for c in result.columns]
    columns = list(zip(*result.rows)) if result.rows else [[] for _ in names]
    arrays = [_column(list(values), c["type"]) for values, c in zip(columns, result.columns)]
    meta = {"sql": result.sql, "elapsed_ms": result.elapsed_ms, "warnings": result.warnings or [],
            "columns": result.columns, **extra}
    schema = pa.schema([pa.field(n, a.type) for n, a in zip(names, arrays)], metadata={"canon": json.dumps(meta)})
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_stream(result: QueryResult, **extra) -> bytes:
    import pyarrow as pa

    table = arrow_table(result, **extra)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
