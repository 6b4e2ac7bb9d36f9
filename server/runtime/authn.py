"""Who is asking: API tokens and declared users, turned into an `Identity`.

    CANON_API_SECRET=...                       # HS256 tokens (what Cube's clients send)
    canon.yml:
      auth:
        public_key_file: keys/api.pem          # RS256 tokens too (optional)
        audience: canon                        # checked when set (optional)
      users:                                   # PostgreSQL-wire users (SCRAM-SHA-256)
        ann:
          password: "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"   # `canon passwd` prints one
          attributes: {role: country_manager, country: DE}

A token's claims are the user's attributes (`user.<claim>` in policies). Tokens are verified with
PyJWT: the algorithm is fixed by the key (`alg: none` and algorithm swaps are refused), `exp` and
`nbf` are checked. With no secret, key or user configured, authentication is off; `check_bind`
then refuses any address but loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from canon.compiler.errors import AuthenticationError, ConfigError

from .access import Identity

SECRET_ENV = "CANON_API_SECRET"
SCRAM_ITERATIONS = 4096
MAX_TOKEN_CHARS = 16_384  # a JWT larger than this is not one a client meant to send
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class ScramVerifier:
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it: the password itself is never kept."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def parse(cls, text: str, *, where: str) -> "ScramVerifier":
        try:
            method, rest = text.split("$", 1)
            head, keys = rest.split("$", 1)
            iterations, salt = head.split(":", 1)
            stored, server = keys.split(":", 1)
            if method != "SCRAM-SHA-256":
                raise ValueError(method)
            verifier = cls(int(iterations), base64.b64decode(salt, validate=True),
                           base64.b64decode(stored, validate=True), base64.b64decode(server, validate=True))
        except (ValueError, TypeError):
            raise ConfigError(f"canon.yml: {where} is not a SCRAM-SHA-256 verifier",
                              hint="write SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>; "
                                   "`canon passwd` prints one for a password") from None
        if verifier.iterations < 1000 or len(verifier.stored_key) != 32 or len(verifier.server_key) != 32:
            raise ConfigError(f"canon.yml: {where} is not a usable SCRAM-SHA-256 verifier",
                              hint="at least 1000 iterations and 32-byte keys; `canon passwd` prints one")
        return verifier

    @classmethod
    def make(cls, password: str, *, iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None) -> "ScramVerifier":
        salt = salt or os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        return cls(iterations, salt, hashlib.sha256(client_key).digest(), hmac.digest(salted, b"Server Key", "sha256"))

    def text(self) -> str:
        b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        return f"SCRAM-SHA-256${self.iterations}:{b64(self.salt)}${b64(self.stored_key)}:{b64(self.server_key)}"


@dataclass(frozen=True)
class DeclaredUser:
    name: str
    verifier: ScramVerifier
    attributes: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Authenticator:
    secret: str | None = None
    public_key: str | None = None
    audience: str | None = None
    users: dict = field(default_factory=dict)  # name -> DeclaredUser

    @classmethod
    def from_config(cls, config: dict, project: Path | None = None, environ=os.environ) -> "Authenticator":
        section = config.get("auth") or {}
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `auth` must be a mapping", hint="auth: {public_key_file: FILE, audience: NAME}")
        unknown = sorted(set(section) - {"public_key_file", "audience"})
        if unknown:
            raise ConfigError(f"canon.yml: auth.{unknown[0]} is not a known setting",
                              hint="valid settings: public_key_file, audience")
        public_key = None
        if section.get("public_key_file"):
            path = Path(str(section["public_key_file"]))
            if not path.is_absolute() and project is not None:
                path = project / path
            try:
                public_key = path.read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError(f"canon.yml: auth.public_key_file {path} cannot be read ({error.strerror})") from None
        return cls(secret=environ.get(SECRET_ENV) or None, public_key=public_key,
                   audience=str(section["audience"]) if section.get("audience") else None,
                   users=_users(config.get("users")))

    @property
    def required(self) -> bool:
        """Authentication is on when anything could authenticate someone."""
        return bool(self.secret or self.public_key or self.users)

    @property
    def accepts_tokens(self) -> bool:
        return bool(self.secret or self.public_key)

    def verify_token(self, token: str, *, via: str) -> Identity:
        """The identity a token proves; AuthenticationError for anything else."""
        import jwt

        token = (token or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise AuthenticationError("no token: send a JSON Web Token in the Authorization header",
                                      hint="Authorization: Bearer <token>, signed with $CANON_API_SECRET (HS256)")
        if not self.accepts_tokens:
            raise AuthenticationError("this server accepts no tokens (no $CANON_API_SECRET or auth.public_key_file)")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        keys = [(alg, key) for alg, key in (("HS256", self.secret), ("RS256", self.public_key)) if key]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        key = dict(keys).get(algorithm)
        if key is None:
            raise AuthenticationError(f"token algorithm {algorithm!r} is not accepted",
                                      hint="accepted: " + ", ".join(alg for alg, _ in keys))
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=self.audience,
                                options={"require": [], "verify_aud": self.audience is not None})
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired", hint="ask for a new token") from None
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"invalid token: {error}") from None
        if not isinstance(claims, dict):
            raise AuthenticationError("invalid token: its payload is not a JSON object")
        subject = claims.get("sub") or claims.get("user") or claims.get("email") or "token"
        return Identity(user=str(subject)[:200], via=via, claims=claims)

    def declared(self, name: str) -> DeclaredUser | None:
        return self.users.get(name)

    def check_bind(self, host: str, what: str) -> None:
        """Serving without authentication is for this machine only."""
        if self.required or is_loopback(host):
            return
        raise ConfigError(f"{what}: refusing to serve on {host} without authentication",
                          hint=f"set ${SECRET_ENV} (API tokens) or declare `users:` in canon.yml, "
                               "or bind 127.0.0.1")


def wire_credentials(config: dict) -> tuple[str, str | None]:
    """The one configured wire user, if any: $CANON_PG_USER / $CANON_PG_PASSWORD, else canon.yml
    `pg: {user, password}`. There is no default password: with none set (and no tokens or `users:`),
    the server trusts its clients and listens only on loopback."""
    section = config.get("pg") if isinstance(config.get("pg"), dict) else {}
    user = os.environ.get("CANON_PG_USER") or section.get("user") or "canon"
    password = os.environ.get("CANON_PG_PASSWORD") or section.get("password") or None
    return str(user), (str(password) if password else None)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _users(section) -> dict:
    if not section:
        return {}
    if not isinstance(section, dict):
        raise ConfigError("canon.yml: `users` must be a mapping of user names",
                          hint="users: {ann: {password: 'SCRAM-SHA-256$...', attributes: {role: finance}}}")
    users = {}
    for name, spec in section.items():
        where = f"users.{name}"
        if not isinstance(spec, dict) or "password" not in spec:
            raise ConfigError(f"canon.yml: {where} needs a `password` (a SCRAM-SHA-256 verifier)",
                              hint="`canon passwd` prints one")
        unknown = sorted(set(spec) - {"password", "attributes"})
        if unknown:
            raise ConfigError(f"canon.yml: {where}.{unknown[0]} is not a known setting", hint="valid: password, attributes")
        attributes = spec.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ConfigError(f"canon.yml: {where}.attributes must be a mapping of claims")
        users[str(name)] = DeclaredUser(str(name), ScramVerifier.parse(str(spec["password"]), where=f"{where}.password"),
                                        {**attributes, "sub": str(name)})
    return users
