"""A client for notebooks, scripts and services: a running Canon server over HTTP.

    import canon
    client = canon.Client("http://localhost:8000", token=os.environ.get("CANON_TOKEN"))
    answer = client.query(["revenue", "aov"], by=["product.category"], time_range="last 90 days")
    answer.to_pandas()                     # or answer.rows / answer.columns / answer.sql; shown as a table in Jupyter
    client.query_arrow(["revenue"], by=["metric_time.day"])   # a pyarrow Table, sent as Arrow IPC
    client.metrics(); client.metric("cac"); client.dimensions("revenue"); client.search("acquisition cost")
    client.saved_query("customer_category_spend", where=["product.category = 'Coffee'"])

Every call is the server's API (`/v1/...`), so answers carry the server's definitions, policies and
caps; an error raises the Canon error class the server named (AccessDeniedError for a 403,
UnknownNameError for a 404, ...) with its message and hint.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from canon.compiler import errors as e

_BY_STATUS = {401: e.AuthenticationError, 403: e.AccessDeniedError, 404: e.UnknownNameError,
              503: e.WarehouseUnavailableError, 504: e.QueryTimeoutError}
HTML_ROWS = 50  # rows shown in a notebook cell
ARROW_STREAM = "application/vnd.apache.arrow.stream"


@dataclass
class Answer:
    columns: list[dict]
    rows: list[list]
    sql: str
    elapsed_ms: float
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    cached: bool = False

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    def records(self) -> list[dict]:
        return [dict(zip(self.names, row)) for row in self.rows]

    def to_pandas(self):
        """A DataFrame with the requested references as column names and time columns as datetimes."""
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=self.names)
        for column in self.columns:
            if column["type"] == "time":
                frame[column["name"]] = pd.to_datetime(frame[column["name"]])
        return frame

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in self.names)
        body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
                       for row in self.rows[:HTML_ROWS])
        more = f"<p>{len(self.rows) - HTML_ROWS} more rows</p>" if len(self.rows) > HTML_ROWS else ""
        notes = "".join(f"<p>⚠ {html.escape(w)}</p>" for w in self.warnings)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}{notes}"


class Client:
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 60.0):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the catalog -------------------------------------------------------------------------------

    def metrics(self, *, q: str | None = None, tag: str | None = None, tier: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("q", q), ("tag", tag), ("tier", tier)) if v is not None}
        return self._get("/v1/metrics", params)["metrics"]

    def metric(self, name: str) -> dict:
        return self._get(f"/v1/metrics/{name}")

    def dimensions(self, *metrics: str) -> list[dict]:
        return self._get("/v1/dimensions", {"metrics": ",".join(metrics)})["dimensions"]

    def values(self, dimension: str, *, limit: int = 1000) -> list:
        return self._get(f"/v1/dimensions/{dimension}/values", {"limit": limit})["values"]

    def search(self, q: str, *, limit: int = 20) -> list[dict]:
        return self._get("/v1/search", {"q": q, "limit": limit})["results"]

    # --- numbers ------------------------------------------------------------------------------------

    def query(self, metrics, *, by=(), where=(), order=(), limit: int | None = None, start: str | None = None,
              end: str | None = None, time_range: str | None = None, timezone: str | None = None,
              having=(), timeout_s: float | None = None) -> Answer:
        body = _body(metrics=_list(metrics), dimensions=_list(by), where=_list(where), order=_list(order), limit=limit,
                     start=start, end=end, time_range=time_range, timezone=timezone, having=_list(having),
                     timeout_s=timeout_s)
        return _answer(self._post("/v1/query", body))

    def query_arrow(self, metrics, *, by=(), where=(), order=(), limit: int | None = None, start: str | None = None,
                    end: str | None = None, time_range: str | None = None, timezone: str | None = None,
                    having=(), timeout_s: float | None = None):
        """The answer as a pyarrow Table (an Arrow IPC stream on the wire: typed columns, no JSON);
        the SQL, warnings and flags are in `table.schema.metadata[b"canon"]`."""
        import pyarrow as pa

        body = _body(metrics=_list(metrics), dimensions=_list(by), where=_list(where), order=_list(order), limit=limit,
                     start=start, end=end, time_range=time_range, timezone=timezone, having=_list(having),
                     timeout_s=timeout_s)
        response = self._http.post("/v1/query", json=body, headers={"Accept": ARROW_STREAM})
        if response.status_code >= 400:
            _checked(response)
        return pa.ipc.open_stream(response.content).read_all()

    def compile(self, metrics, *, by=(), where=(), dialect: str | None = None) -> str:
        body = _body(metrics=_list(metrics), dimensions=_list(by), where=_list(where), dialect=dialect)
        return self._post("/v1/compile", body)["sql"]

    def saved_query(self, name: str, *, where=(), order=(), limit: int | None = None, start: str | None = None,
                    end: str | None = None, time_range: str | None = None) -> Answer:
        body = _body(where=_list(where), order=_list(order), limit=limit, start=start, end=end, time_range=time_range)
        return _answer(self._post(f"/v1/saved-queries/{name}/run", body))

    # --- plumbing ------------------------------------------------------------------------------------

    def _get(self, path: str, params: dict | None = None) -> dict:
        return _checked(self._http.get(path, params=params))

    def _post(self, path: str, body: dict) -> dict:
        return _checked(self._http.post(path, json=body))


def _list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _body(**fields) -> dict:
    return {k: v for k, v in fields.items() if v not in (None, [], ())}


def _answer(body: dict) -> Answer:
    return Answer(body["columns"], body["rows"], body["sql"], body["elapsed_ms"], body.get("warnings") or [],
                  bool(body.get("truncated")), bool(body.get("cached")))


def _checked(response) -> dict:
    if response.status_code < 400:
        return response.json()
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text[:500] or f"HTTP {response.status_code}"}
    kind = _BY_STATUS.get(response.status_code, e.QueryError if response.status_code < 500 else e.WarehouseError)
    raise kind(body.get("message") or str(body), hint=body.get("hint"))
