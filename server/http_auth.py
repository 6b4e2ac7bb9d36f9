"""Authentication and CORS for the HTTP and Cube APIs.

Every request but the public ones (health, OpenAPI, docs) carries a JSON Web Token in its
`Authorization` header, with or without `Bearer ` (Cube's clients send it bare), when the server has
a secret, key or users configured (server/runtime/authn.py). The middleware verifies it before any
route runs, so no endpoint can forget to: a missing or bad token is 401 with `WWW-Authenticate:
Bearer` (the Cube API: 403 with Cube's `{"error": ...}` body, as Cube answers). The identity lands on
`request.state.identity`; `identity_of(request)` reads it for the runtime.

CORS: browser apps on the origins listed in canon.yml `cors_origins:` may call the API (preflight
included; answered before authentication, as browsers send no credentials on a preflight). None by
default.
"""

from __future__ import annotations

import json

from fastapi import Request

from canon.compiler.errors import AuthenticationError, ConfigError

from .runtime import Identity

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                          "/redoc", "/cubejs-api/v1/readyz", "/cubejs-api/v1/livez", "/"})
PUBLIC_PREFIXES = ("/app/",)  # the web app's shell and assets (server/webapp): no data; its API calls carry the token


def front_end(path: str) -> str:
    return "cube" if path.startswith("/cubejs-api") else "mcp" if path.startswith("/mcp") else "http"


def identity_of(request: Request) -> Identity:
    """The caller, as the middleware verified it (open servers: an anonymous HTTP client)."""
    identity = getattr(request.state, "identity", None)
    return identity if identity is not None else Identity(via=front_end(request.url.path))


class AuthMiddleware:
    """Verify the caller of every non-public request before routing (pure ASGI: nothing buffered)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or scope["path"] in PUBLIC_PATHS \
                or scope["path"].startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        via = front_end(scope["path"])
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is None:  # not started (or stopping): fail closed
            await _send_json(send, 503, {"code": "starting", "message": "the server is starting; retry shortly"}, [])
            return
        authn = runtime.authn
        if authn.required:
            header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            try:
                if header is None:
                    raise AuthenticationError("no credentials: this server requires a token",
                                              hint="send Authorization: Bearer <JSON Web Token>")
                identity = authn.verify_token(header.decode("latin-1"), via=via)
            except AuthenticationError as error:
                await _refuse(send, via, error, missing=header is None)
                return
        else:
            identity = Identity(via=via)
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)


async def _refuse(send, via: str, error: AuthenticationError, *, missing: bool) -> None:
    if via == "cube":
        # Cube: 403 {"error": ...}; its clients show `error`
        status = 403
        body = {"error": "Authorization header isn't set" if missing else "Invalid token",
                "code": error.code, "message": error.message, "hint": error.hint}
        headers = []
    else:
        status = 401
        body = error.to_dict()
        headers = [(b"www-authenticate", b'Bearer realm="canon"')]
    await _send_json(send, status, body, headers)


async def _send_json(send, status: int, body: dict, headers: list) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


def cors_origins(config: dict) -> list[str]:
    origins = config.get("cors_origins") or []
    if isinstance(origins, str):
        origins = [origins]
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        raise ConfigError("canon.yml: cors_origins must be a list of origins",
                          hint="cors_origins: [https://app.example.com]")
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"canon.yml: cors_origins: {origin!r} is not an origin",
                              hint="write scheme://host[:port], e.g. https://app.example.com")
    return [o.rstrip("/") for o in origins]


def install(app, config: dict) -> None:
    """Authentication inside, CORS outside it (added last = runs first)."""
    from starlette.middleware.cors import CORSMiddleware

    app.add_middleware(AuthMiddleware)
    origins = cors_origins(config)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials="*" not in origins,
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                           expose_headers=["Warning"], max_age=600)
