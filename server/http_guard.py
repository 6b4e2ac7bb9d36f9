"""The HTTP front door: what a request must look like before any endpoint sees it.

    install(app, project)    # in create_app: reads canon.yml's `http:` section

canon.yml (all optional):

    http:
      max_body_bytes: 1048576        # a request body larger than this is a 413, refused while it arrives
      max_json_depth: 64             # JSON (a body, Cube's ?query=) nested deeper than this is a 400
      allowed_hosts: [localhost, 127.0.0.1, "::1", testserver]   # the Host header; "*.example.com"; "*" = any

- Host allow-list: a Host header outside the list is a 400 (DNS rebinding: a page on evil.example whose
  name is re-pointed at 127.0.0.1 sends `Host: evil.example`). `testserver` is the test client's name.
- CSRF: POST, PUT and PATCH carry JSON (`application/json` or `*/*+json`), else 415. A browser page
  can only send a form or `text/plain` cross-site without a CORS preflight; a request without a body,
  Content-Type or Origin (curl, scripts) is not from a page and passes.
- Body size: a Content-Length over the limit is refused before reading; a chunked body is counted as
  it arrives and refused at the first byte over. A body within the limit is buffered (at most the limit)
  and handed to the app unchanged.
- JSON nesting: checked on the raw bytes before anything parses them, so no decoder recurses deeply.

Every refusal is a JSON error `{code, message, location, hint}` naming the limit and its key. An internal
fault that no handler answered is a logged 500 here, and the keep-alive connection stays open.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from itertools import accumulate

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from canon.compiler.errors import ConfigError, QueryError

log = logging.getLogger("canon.http")

DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1", "testserver")
DEFAULTS = {"max_body_bytes": 1 << 20, "max_json_depth": 64, "allowed_hosts": list(DEFAULT_ALLOWED_HOSTS)}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)  # a JSON string literal (brackets inside do not nest)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


@dataclass(frozen=True)
class GuardSettings:
    max_body_bytes: int = DEFAULTS["max_body_bytes"]
    max_json_depth: int = DEFAULTS["max_json_depth"]
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS

    @classmethod
    def from_config(cls, config: dict) -> "GuardSettings":
        section = config.get("http") or {}
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `http` must be a mapping", hint="http: {max_body_bytes: 1048576}")
        unknown = sorted(set(section) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"canon.yml: http.{unknown[0]} is not a known setting",
                              hint="valid settings: " + ", ".join(DEFAULTS))
        values = {}
        for key in ("max_body_bytes", "max_json_depth"):
            value = section.get(key, DEFAULTS[key])
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"canon.yml: http.{key} must be a positive whole number, not {value!r}")
            values[key] = value
        hosts = section.get("allowed_hosts", DEFAULTS["allowed_hosts"])
        if isinstance(hosts, str):
            hosts = [hosts]
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
            raise ConfigError("canon.yml: http.allowed_hosts must be a non-empty list of host names",
                              hint='e.g. [localhost, canon.example.com, "*.example.com"], or ["*"] for any')
        return cls(allowed_hosts=tuple(h.lower() for h in hosts), **values)

    def host_allowed(self, host: str) -> bool:
        """The Host header's name (port dropped) is listed, or matches a `*.domain` entry."""
        name = host.lower()
        if name.startswith("["):  # [::1]:8000
            name = name[1:].split("]", 1)[0]
        elif name.count(":") == 1:
            name = name.split(":", 1)[0]
        for pattern in self.allowed_hosts:
            if pattern == "*" or pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
                return True
        return False


def json_depth(raw: bytes | str) -> int:
    """How deeply JSON text nests (objects and arrays), without parsing it: strings are removed, then
    the brackets counted. Malformed text gets some number; the decoder reports what is wrong with it."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    if not brackets:
        return 0
    return max(accumulate(_STEP[b] for b in brackets))


def check_json_depth(raw: bytes | str, limit: int, where: str) -> None:
    """Raise a 400 (QueryError) when JSON text nests deeper than `limit`."""
    depth = json_depth(raw)
    if depth > limit:
        raise QueryError(f"{where}: the JSON nests {depth} levels deep, more than the limit of {limit}",
                         hint="flatten the request (lists of filters are ANDed); an operator can raise "
                              "http.max_json_depth in canon.yml")


def json_depth_limit(app) -> int:
    """The app's JSON nesting limit (for endpoints that take JSON in a query parameter, as Cube's)."""
    settings = getattr(app.state, "http_guard", None)
    return settings.max_json_depth if settings is not None else DEFAULTS["max_json_depth"]


def _refuse(status: int, code: str, message: str, location: str, hint: str, cube: bool) -> JSONResponse:
    body = {"code": code, "message": message, "location": location, "hint": hint}
    if cube:  # Cube's clients read `error`
        body = {"error": f"{message} — {hint}", **body}
    return JSONResponse(body, status_code=status)


class HTTPGuard:
    """Pure ASGI middleware (no response buffering, so streaming answers stay streamed)."""

    def __init__(self, app, settings: GuardSettings | None = None):
        self.app = app
        self.settings = settings or GuardSettings()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self._check_head(scope)
        if refusal is None and scope["method"] in WRITE_METHODS:
            refusal, receive = await self._read_body(scope, receive)
        if refusal is not None:
            return await refusal(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:  # an internal fault the app's handlers did not answer
            if started:
                raise  # half an answer is out: only closing the connection can tell the client
            # answered here rather than by Starlette's ServerErrorMiddleware, which re-raises after its
            # 500, and the server then drops the keep-alive connection
            log.exception("internal error on %s %s", scope["method"], scope.get("path", ""))
            await _refuse(500, "internal_error", f"internal error: {type(error).__name__}", scope.get("path", ""),
                          "this is a bug in Canon; see the server log",
                          scope.get("path", "").startswith("/cubejs-api"))(scope, receive, send)

    def _check_head(self, scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        path = scope.get("path", "")
        cube = path.startswith("/cubejs-api")
        host = headers.get("host", "")
        if not self.settings.host_allowed(host):
            return _refuse(400, "host_not_allowed", f"the Host header {host[:100]!r} is not one this server answers to",
                           "header.host", "allowed: " + ", ".join(self.settings.allowed_hosts) +
                           " (http.allowed_hosts in canon.yml)", cube)
        method = scope["method"]
        if method not in WRITE_METHODS:
            return None
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _refuse(400, "bad_request", f"Content-Length {length[:40]!r} is not a number",
                               "header.content-length", "send the body's size in bytes", cube)
            if int(length) > self.settings.max_body_bytes:
                return self._too_large(int(length), cube)
        content_type = headers.get("content-type")
        media = (content_type or "").split(";", 1)[0].strip().lower()
        bodiless = content_type is None and length in (None, "0") and "transfer-encoding" not in headers
        if bodiless and "origin" not in headers:
            return None  # curl -X POST, a script: no body, not from a web page
        if not _JSON_TYPE.match(media):
            got = f"got {content_type[:80]!r}" if content_type else "got none"
            return _refuse(415, "unsupported_media_type",
                           f"{method} {path}: the body must be JSON (Content-Type: application/json), {got}",
                           "header.content-type", "send Content-Type: application/json; forms and text/plain "
                           "are refused so that no other web site can post here", cube)
        return None

    def _too_large(self, size: int | None, cube: bool) -> JSONResponse:
        limit = self.settings.max_body_bytes
        what = f"is {size:,} bytes" if size is not None else "is larger than that"  # chunked: cut at the limit
        return _refuse(413, "body_too_large", f"the request body {what}; the limit is {limit:,} bytes",
                       "body", "send a smaller request; an operator can raise http.max_body_bytes in canon.yml", cube)

    async def _read_body(self, scope, receive):
        """Read the body (counting, refusing at the first byte over the limit), check its JSON nesting,
        and hand a `receive` that replays it."""
        limit = self.settings.max_body_bytes
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return self._too_large(None, scope.get("path", "").startswith("/cubejs-api")), receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        depth = json_depth(body)
        if depth > self.settings.max_json_depth:
            cube = scope.get("path", "").startswith("/cubejs-api")
            return _refuse(400, "invalid_json", f"the JSON body nests {depth:,} levels deep; the limit is "
                           f"{self.settings.max_json_depth}", "body",
                           "flatten the request; an operator can raise http.max_json_depth in canon.yml", cube), receive
        return None, _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def without_paths(value, paths: dict[str, str]):
    """`value` (JSON-like) with each filesystem path in `paths` replaced by its public name (a public
    answer such as /v1/status must not show where the project or a DuckDB file lives)."""
    if isinstance(value, str):
        for path, name in sorted(paths.items(), key=lambda item: -len(item[0])):
            if path:
                value = value.replace(path, name)
        return value
    if isinstance(value, dict):
        return {k: without_paths(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [without_paths(v, paths) for v in value]
    return value


def install(app, project) -> GuardSettings:
    """Guard `app` with the settings of the project's canon.yml (kept on `app.state.http_guard`).

    Unless `http.allowed_hosts` says otherwise, an open server (no authentication: loopback only)
    answers only loopback names, and a server that requires a token answers any Host: DNS rebinding
    gains a page nothing there, since the browser holds no token for it."""
    from .project import load_config
    from .runtime.authn import Authenticator

    config = load_config(project)
    settings = GuardSettings.from_config(config)
    section = config.get("http") if isinstance(config.get("http"), dict) else {}
    if "allowed_hosts" not in section and Authenticator.from_config(config, project).required:
        settings = replace(settings, allowed_hosts=("*",))
    app.state.http_guard = settings
    app.add_middleware(HTTPGuard, settings=settings)
    return settings


def _replay(messages: list[dict], receive):
    """A `receive` that first yields `messages`, then waits on the real one (for a disconnect)."""
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


__all__ = ["install", "without_paths", "HTTPGuard", "GuardSettings", "json_depth", "check_json_depth", "json_depth_limit", "DEFAULTS"]
