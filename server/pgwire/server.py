"""The PostgreSQL wire server on asyncio: startup, SCRAM-SHA-256, simple and extended query protocol.

One `Connection` per client. Statements run in worker threads (the warehouse is blocking), so one slow
query never stalls other clients, and a CancelRequest can abandon it. Any protocol violation ends only
that connection; errors in statements become ErrorResponses and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import ssl
import struct
import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from canon.compiler.errors import CanonError

from . import protocol as p
from . import types as t
from .errors import (INTERNAL_ERROR, INVALID_PASSWORD, INVALID_SQL_STATEMENT_NAME, INVALID_CURSOR_NAME,
                     PROTOCOL_VIOLATION, QUERY_CANCELED, PgError, from_canon_error)
from .limits import AuthThrottle, WireLimits, fd_budget
from .copy_out import CopyEncoder
from .pgcatalog import REPORTED, SETTINGS
from ..runtime import Identity
from ..runtime.authn import wire_credentials as credentials  # noqa: F401 — re-exported: the CLI and front ends ask here
from ..warehouses.base import QueryTicket
from .session import CatalogState, Prepared, Result, Session, split_statements

log = logging.getLogger("canon.pgwire")

PEER_POLL_S = 0.2  # how often a running statement checks that its client is still connected
READ_CHUNK = 64 * 1024  # a message body arrives in chunks: a declared length reserves nothing
STATEMENT_TOO_COMPLEX = "54001"
CHARACTER_NOT_IN_REPERTOIRE = "22021"
TOO_MANY_CONNECTIONS = "53300"
IDLE_SESSION_TIMEOUT = "57P05"
INVALID_AUTHORIZATION = "28000"


@dataclass
class Portal:
    prepared: Prepared
    params: list
    formats: list[int]
    result: Result | None = None
    feed: "RowFeed | None" = None
    columns: list | None = None
    described: bool = False


@dataclass
class ServerConfig:
    user: str
    password: str | None
    ssl_context: ssl.SSLContext | None = None


class PgServer:
    """Shared state of one listening server: the runtime (catalog, warehouse, caps), live sessions (for
    cancels)."""

    def __init__(self, runtime, config: ServerConfig, limits: WireLimits | None = None):
        self.runtime = runtime
        self.state = CatalogState(runtime)
        self.config = config
        self.limits = limits or WireLimits()
        self.connections: dict[int, "Connection"] = {}
        self._next_pid = os.getpid() % 10000 * 1000
        # SCRAM verifiers computed once (4,096 PBKDF2 rounds), not on the event loop at every login
        from ..runtime.authn import ScramVerifier

        self.password_verifier = ScramVerifier.make(config.password) if config.password else None
        self.unknown_user_verifier = ScramVerifier.make(secrets.token_hex(16))
        # slots (limits.py): sockets still in startup/authentication, sessions in total and per address
        self.pending = 0
        self.sessions = 0
        self.per_address: dict[str, int] = {}
        self.throttle = AuthThrottle(self.limits)

    def new_pid(self) -> int:
        self._next_pid += 1
        return self._next_pid

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.pending >= self.limits.max_pending:  # a flood of sockets: keep descriptors for the rest
            writer.transport.abort()
            return
        connection = Connection(self, reader, writer)
        try:
            await connection.run()
        except (ConnectionError, asyncio.IncompleteReadError, p.ProtocolError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: log it, end this connection only
            log.exception("pgwire connection failed")
        finally:
            connection.cancel()  # a client that went away mid-query stops it in the engine
            connection.release()
            self.connections.pop(connection.pid, None)
            try:
                writer.close()
            except Exception:
                pass


class Connection:
    def __init__(self, server: PgServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.pid = 0
        self.secret = secrets.randbits(31)
        self.session: Session | None = None
        self.identity: Identity | None = None  # set by authenticate()
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.task: asyncio.Future | None = None
        self.cancelled = False
        self.skip_to_sync = False
        self.out: list[bytes] = []
        peer = writer.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        self.max_message = server.limits.startup_max_message  # until authenticated
        self.pending = True  # holds one of server.pending
        self.server.pending += 1
        self.in_session = False  # holds a session slot (sessions, per_address)

    # --- I/O --------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.out.append(data)
        if sum(len(chunk) for chunk in self.out) > 256 * 1024:
            self.writer.write(b"".join(self.out))
            self.out.clear()

    async def flush(self) -> None:
        if self.out:
            self.writer.write(b"".join(self.out))
            self.out.clear()
        await self.writer.drain()

    async def read_message(self) -> tuple[bytes, bytes]:
        header = await self.reader.readexactly(5)
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        if length < 4 or length > self.max_message:
            raise p.ProtocolError(f"invalid message length {length} (at most {self.max_message} bytes here)")
        return kind, await self.read_body(length - 4)

    async def read_body(self, size: int) -> bytes:
        """`size` bytes, read as they arrive: memory grows with the bytes received, not the length declared."""
        if size <= READ_CHUNK:
            return await self.reader.readexactly(size)
        body = bytearray()
        while len(body) < size:
            chunk = await self.reader.read(min(READ_CHUNK, size - len(body)))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(body), size)
            body += chunk
        return bytes(body)

    def release(self) -> None:
        """Give back this connection's slots (pending socket, session)."""
        server = self.server
        if self.pending:
            self.pending = False
            server.pending -= 1
        if self.in_session:
            self.in_session = False
            server.sessions -= 1
            left = server.per_address.get(self.address, 1) - 1
            if left > 0:
                server.per_address[self.address] = left
            else:
                server.per_address.pop(self.address, None)

    async def fatal(self, sqlstate: str, message: str) -> None:
        self.send(p.error_response(PgError(sqlstate, message, severity="FATAL").fields()))
        await self.flush()

    # --- startup ----------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.server.limits.startup_timeout_s):
                params = await self.startup()
                if params is None or not await self.admit():
                    return
                if not await self.authenticate(params.get("user", "")):
                    self.server.throttle.failed(self.address)
                    return
                self.server.throttle.succeeded(self.address)
        except TimeoutError:
            self.send(p.error_response(PgError(QUERY_CANCELED, "canceling authentication due to timeout",
                                               severity="FATAL").fields()))
            self.writer.write(b"".join(self.out))  # no drain: a client that reads nothing cannot hold us
            return
        except p.ProtocolError as error:  # an oversized or malformed message before authentication
            self.send(p.error_response(PgError(PROTOCOL_VIOLATION, str(error), severity="FATAL").fields()))
            self.writer.write(b"".join(self.out))
            return
        self.max_message = self.server.limits.max_message
        if self.pending:
            self.pending = False
            self.server.pending -= 1
        self.pid = self.server.new_pid()
        self.server.connections[self.pid] = self
        database = params.get("database") or params.get("user", "canon")
        self.session = Session(self.server.state.for_identity(self.identity), user=params.get("user", ""),
                               database=database, pid=self.pid)
        self.session.port = (self.writer.get_extra_info("sockname") or ("", 0))[1]  # inet_server_port()
        try:
            await asyncio.to_thread(self.session.state.get)
        except PgError as error:
            self.send(p.error_response(PgError(error.sqlstate, error.message, hint=error.hint, severity="FATAL").fields()))
            await self.flush()
            return
        self.send(p.auth_ok())
        app = params.get("application_name", "")
        self.session.settings["application_name"] = app
        for name in REPORTED:
            value = app if name == "application_name" else SETTINGS.get(name.lower(), "")
            if name == "session_authorization":
                value = self.session.user
            self.send(p.parameter_status(name, value))
        self.send(p.backend_key_data(self.pid, self.secret))
        self.send(p.ready_for_query(b"I"))
        await self.flush()
        await self.loop()

    async def admit(self) -> bool:
        """A session slot for this client, after its startup packet and before authentication (where
        PostgreSQL checks max_connections), and the wait its address earned by failed logins."""
        server, limits, address = self.server, self.server.limits, self.address
        retry = server.throttle.retry_after(address)
        if retry > 0:
            await self.fatal(INVALID_AUTHORIZATION, f"too many failed authentication attempts from {address}: "
                                                    f"try again in {int(retry) + 1} s")
            return False
        if server.sessions >= limits.max_connections:
            await self.fatal(TOO_MANY_CONNECTIONS, "sorry, too many clients already")
            return False
        if server.per_address.get(address, 0) >= limits.max_connections_per_address:
            await self.fatal(TOO_MANY_CONNECTIONS, f"too many connections from {address} "
                                                   f"(limits.wire.max_connections_per_address is "
                                                   f"{limits.max_connections_per_address})")
            return False
        self.in_session = True
        server.sessions += 1
        server.per_address[address] = server.per_address.get(address, 0) + 1
        delay = server.throttle.delay(address)
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    async def startup(self) -> dict | None:
        while True:
            length = struct.unpack("!i", await self.reader.readexactly(4))[0]
            if length < 8 or length > p.MAX_STARTUP:
                raise p.ProtocolError("invalid startup packet length")
            body = await self.reader.readexactly(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code == p.SSL_REQUEST:
                if self.server.config.ssl_context is not None:
                    self.writer.write(b"S")
                    await self.writer.drain()
                    await self.writer.start_tls(self.server.config.ssl_context)
                else:
                    self.writer.write(b"N")
                    await self.writer.drain()
                continue
            if code == p.GSSENC_REQUEST:
                self.writer.write(b"N")
                await self.writer.drain()
                continue
            if code == p.CANCEL_REQUEST:
                if len(body) >= 12:
                    pid, secret = struct.unpack("!ii", body[4:12])
                    target = self.server.connections.get(pid)
                    if target is not None and target.secret == secret:
                        target.cancel()
                return None
            if code >> 16 != 3:
                await self.fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                                          "Canon speaks protocol 3.0")
                return None
            return p.parse_startup(body[4:])

    async def authenticate(self, user: str) -> bool:
        """Who connects, as `self.identity`: a user declared in canon.yml (SCRAM-SHA-256 against its
        stored verifier), the configured wire user ($CANON_PG_USER / $CANON_PG_PASSWORD or `pg:`, SCRAM),
        or an API token sent as the password (any user name, as BI tools hold one secret; asked in
        clear text, so use TLS off loopback). With none of these configured the server trusts its
        clients, which `canon pg` / `canon serve` allow only on a loopback address."""
        config = self.server.config
        authn = self.server.runtime.authn
        declared = authn.declared(user)
        if declared is not None:
            self.identity = Identity(user, "pgwire", dict(declared.attributes))
            return await self._scram(user, p.ScramServer(verifier=declared.verifier))
        if config.password and user == config.user:
            self.identity = Identity(user, "pgwire", {})
            return await self._scram(user, p.ScramServer(verifier=self.server.password_verifier))
        if authn.accepts_tokens:
            return await self._token(user, authn)
        if not authn.required and not config.password:
            self.identity = Identity(user, "pgwire", {})
            return True
        # an unknown user goes through the same exchange as a known one, and fails it
        return await self._scram(user, p.ScramServer(verifier=self.server.unknown_user_verifier), known=False)

    async def _scram(self, user: str, scram: "p.ScramServer", known: bool = True) -> bool:
        self.send(p.auth_sasl())
        await self.flush()
        kind, body = await self.read_message()
        if kind != b"p":
            raise p.ProtocolError("expected a SASLInitialResponse")
        reader = p.Reader(body)
        mechanism = reader.cstr()
        size = reader.int32()
        if mechanism != "SCRAM-SHA-256":
            await self.fatal(INVALID_PASSWORD, f"authentication mechanism {mechanism} is not supported: use SCRAM-SHA-256")
            return False
        first = reader.bytes(size) if size >= 0 else b""
        self.send(p.auth_sasl_continue(scram.first(first)))
        await self.flush()
        kind, body = await self.read_message()
        if kind != b"p":
            raise p.ProtocolError("expected a SASLResponse")
        final = scram.final(body)
        if final is None or not known:
            await self.fatal(INVALID_PASSWORD, f'password authentication failed for user "{user}"')
            return False
        self.send(p.auth_sasl_final(final))
        return True

    async def _token(self, user: str, authn) -> bool:
        """The password is an API token (a JSON Web Token); its claims are the user's attributes."""
        self.send(p.auth_cleartext())
        await self.flush()
        kind, body = await self.read_message()
        if kind != b"p":
            raise p.ProtocolError("expected a PasswordMessage")
        token = p.Reader(body).cstr()
        try:
            self.identity = authn.verify_token(token, via="pgwire")
        except CanonError as error:
            await self.fatal(INVALID_PASSWORD, f'password authentication failed for user "{user}": {error.message}')
            return False
        return True

    # --- messages ---------------------------------------------------------------------------------

    async def next_message(self) -> tuple[bytes, bytes]:
        """The next message; a session idle past limits.wire.idle_session_timeout_s raises TimeoutError."""
        idle = self.server.limits.idle_session_timeout_s
        if idle <= 0:
            return await self.read_message()
        async with asyncio.timeout(idle):
            return await self.read_message()

    async def loop(self) -> None:
        while True:
            try:
                kind, body = await self.next_message()
            except p.ProtocolError as error:
                await self.fatal(PROTOCOL_VIOLATION, str(error))
                return
            except TimeoutError:
                await self.fatal(IDLE_SESSION_TIMEOUT, "terminating connection due to idle-session timeout")
                return
            if kind == b"X":
                return
            if self.skip_to_sync and kind not in (b"S",):
                if kind == b"H":  # a Flush still flushes while skipping to Sync (postgres.js waits on it)
                    await self.flush()
                continue
            try:
                if kind == b"Q":
                    await self.simple_query(p.Reader(body).cstr())
                elif kind == b"P":
                    await self.parse(body)
                elif kind == b"B":
                    await self.bind(body)
                elif kind == b"D":
                    await self.describe(body)
                elif kind == b"E":
                    await self.execute(body)
                elif kind == b"C":
                    self.close(body)
                elif kind == b"S":
                    self.skip_to_sync = False
                    self.send(p.ready_for_query(self.session.tx.encode()))
                    await self.flush()
                elif kind == b"H":
                    await self.flush()
                elif kind in (b"d", b"c", b"f"):
                    pass  # COPY data outside COPY: ignore, as PostgreSQL does
                elif kind == b"F":
                    raise PgError("0A000", "the function call protocol is not supported")
                else:
                    raise p.ProtocolError(f"unknown message type {kind!r}")
            except (PgError, p.EncodingError) as error:
                if isinstance(error, p.EncodingError):  # PostgreSQL: an error, not the end of the session
                    error = PgError(CHARACTER_NOT_IN_REPERTOIRE, str(error))
                self.report(error, extended=kind != b"Q")
                if kind == b"Q":
                    self.send(p.ready_for_query(self.session.tx.encode()))
                await self.flush()  # PostgreSQL sends an error at once, not at the next Sync
            except p.ProtocolError as error:
                await self.fatal(PROTOCOL_VIOLATION, str(error))
                return

    def report(self, error: PgError, *, extended: bool) -> None:
        if self.session.tx == "T":
            self.session.tx = "E"
        self.send(p.error_response(error.fields()))
        if extended:
            self.skip_to_sync = True

    async def call(self, fn, *args, new_statement: bool = True):
        """Run blocking work in the runtime's pool. A CancelRequest, or the client going away, stops the
        statement's query inside the engine (its ticket) and answers 57014."""
        self.cancelled = False
        if new_statement:
            self.session.ticket = QueryTicket()
        ticket = self.session.ticket
        loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(asyncio.wrap_future(self.server.runtime.pool.submit(fn, *args), loop=loop))
        try:
            while True:
                done, _ = await asyncio.wait({self.task}, timeout=PEER_POLL_S)
                if done:
                    return self.task.result()
                if self.peer_gone():
                    ticket.cancel("cancelled")
                    self.task.cancel()
                    raise ConnectionResetError("the client went away during a statement")
        except asyncio.CancelledError:
            if self.cancelled:
                raise PgError(QUERY_CANCELED, "canceling statement due to user request") from None
            raise
        except CanonError as error:
            raise from_canon_error(error) from None
        except PgError:
            raise
        except RecursionError:  # nesting deeper than the parser's stack (3,000 parentheses, NOT NOT ...)
            raise PgError(STATEMENT_TOO_COMPLEX, "statement is too complex: expressions are nested too deeply",
                          hint="nest fewer parentheses, NOTs or function calls") from None
        except Exception as error:
            log.exception("statement failed")
            raise PgError(INTERNAL_ERROR, f"internal error: {type(error).__name__}: {error}") from None
        finally:
            self.task = None

    def cancel(self) -> None:
        ticket = self.session.ticket if self.session is not None else None
        if ticket is not None:
            ticket.cancel("cancelled")  # stops the engine's query; the statement fails with 57014
        task = self.task
        if task is not None and not task.done():
            self.cancelled = True
            task.get_loop().call_soon_threadsafe(task.cancel)

    def peer_gone(self) -> bool:
        """Whether the client closed its end. Nothing reads the socket while a statement runs, so look at
        the reader's EOF flag (set by the transport) rather than reading ahead of pipelined messages."""
        return getattr(self.reader, "_eof", False) or self.writer.transport.is_closing()

    # --- simple query -------------------------------------------------------------------------------

    async def simple_query(self, text: str) -> None:
        statements = split_statements(text)
        if statements == [""]:
            self.send(p.EMPTY_QUERY)
        for statement in statements:
            try:
                prepared = await self.call(self.session.prepare, statement)
                self.session.check_transaction(prepared)
                result = await self.call(self.session.execute, prepared, [])
            except PgError as error:
                self.report(error, extended=False)
                break
            if prepared.kind == "empty":
                self.send(p.EMPTY_QUERY)
                continue
            self.after_utility(prepared)
            self.send_notices(result)
            if result.columns is not None:
                if prepared.copy is not None:  # COPY (SELECT …) TO STDOUT: CopyOutResponse, CopyData…, CopyDone
                    feed = CopyFeed(result, prepared.copy)
                    self.send(feed.start())
                else:
                    self.send(p.row_description(result.columns, []))
                    feed = RowFeed(result, [])
                try:
                    while not feed.finished:
                        await self.send_feed(feed, 0)
                except PgError as error:
                    self.report(error, extended=False)
                    break
                if prepared.copy is not None:
                    self.send(p.COPY_DONE)
                self.send(p.command_complete(feed.tag()))
            else:
                self.send(p.command_complete(result.tag))
        self.send(p.ready_for_query(self.session.tx.encode()))
        await self.flush()

    def after_utility(self, prepared: Prepared) -> None:
        if prepared.kind != "utility":
            return
        words = [tok.text.upper() for tok in prepared.tokens]
        if prepared.keyword == "DISCARD":
            self.statements = {k: v for k, v in self.statements.items() if k == ""}
            self.portals.clear()
        elif prepared.keyword == "DEALLOCATE":
            if "ALL" in words[1:]:
                self.statements = {k: v for k, v in self.statements.items() if k == ""}
            else:
                self.statements.pop(prepared.tokens[-1].text, None)

    def send_notices(self, result) -> None:
        for text in getattr(result, "notices", ()):
            self.send(p.error_response([(b"S", "WARNING"), (b"V", "WARNING"), (b"C", "01000"), (b"M", text)], kind=b"N"))

    async def send_feed(self, feed: "RowFeed", limit: int) -> None:
        """Send the next rows of a result: pulled and encoded in a worker thread, written as they come,
        so a large result never sits whole in memory nor blocks the event loop."""
        data = await self.call(feed.pull, limit, new_statement=False)
        self.send(data)
        await self.flush()

    # --- extended query -----------------------------------------------------------------------------

    async def parse(self, body: bytes) -> None:
        reader = p.Reader(body)
        name, text = reader.cstr(), reader.cstr()
        count = reader.int16()
        oids = [reader.uint32() for _ in range(max(count, 0))]
        prepared = await self.call(self.session.prepare, text, oids)
        if prepared.copy is not None:
            raise PgError("0A000", "COPY … TO STDOUT runs as a simple query, not a prepared statement",
                          hint="send it with the simple query protocol (psql's \\copy does)")
        if name and name in self.statements:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        self.statements[name] = prepared
        self.send(p.PARSE_COMPLETE)

    async def bind(self, body: bytes) -> None:
        reader = p.Reader(body)
        portal_name, statement_name = reader.cstr(), reader.cstr()
        prepared = self.statements.get(statement_name)
        if prepared is None:
            raise PgError(INVALID_SQL_STATEMENT_NAME, f'prepared statement "{statement_name}" does not exist')
        formats = [reader.int16() for _ in range(max(reader.int16(), 0))]
        count = reader.int16()
        if count != prepared.param_count:
            raise PgError(PROTOCOL_VIOLATION, f"bind message supplies {count} parameters, but prepared statement "
                                              f'"{statement_name}" requires {prepared.param_count}')
        params = []
        for i in range(count):
            size = reader.int32()
            data = None if size == -1 else reader.bytes(size)
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            oid = prepared.param_oids[i] if i < len(prepared.param_oids) else t.TEXT
            try:
                params.append(t.decode_param(data, fmt, oid))
            except t.ParameterError as error:
                raise PgError("22P02", str(error)) from None
        result_formats = [reader.int16() for _ in range(max(reader.int16(), 0))]
        self.session.check_transaction(prepared)
        self.portals[portal_name] = Portal(prepared, params, result_formats)
        self.send(p.BIND_COMPLETE)

    async def describe(self, body: bytes) -> None:
        reader = p.Reader(body)
        what, name = reader.byte(), reader.cstr()
        if what == b"S":
            prepared = self.statements.get(name)
            if prepared is None:
                raise PgError(INVALID_SQL_STATEMENT_NAME, f'prepared statement "{name}" does not exist')
            columns = await self.call(self.session.describe, prepared, None)
            self.send(p.parameter_description(prepared.param_oids))
            self.send(p.row_description(columns, []) if columns is not None else p.NO_DATA)
            return
        portal = self.portals.get(name)
        if portal is None:
            cursor = self.session.cursors.get(name)
            if cursor is None:
                raise PgError(INVALID_CURSOR_NAME, f'portal "{name}" does not exist')
            columns = cursor.result.columns
            self.send(p.row_description(columns, []) if columns is not None else p.NO_DATA)
            return
        if portal.prepared.kind in ("semantic", "catalog", "explain"):
            if portal.prepared.kind == "semantic":
                portal.columns = await self.call(self.session.describe, portal.prepared, portal.params)
            else:
                portal.result = await self.call(self.session.execute, portal.prepared, portal.params)
                portal.columns = portal.result.columns
        else:
            portal.columns = await self.call(self.session.describe, portal.prepared, portal.params)
        self.send(p.row_description(portal.columns, portal.formats) if portal.columns is not None else p.NO_DATA)

    async def execute(self, body: bytes) -> None:
        reader = p.Reader(body)
        name, limit = reader.cstr(), reader.int32()
        portal = self.portals.get(name)
        if portal is None:
            raise PgError(INVALID_CURSOR_NAME, f'portal "{name}" does not exist')
        if portal.prepared.kind == "empty":
            self.send(p.EMPTY_QUERY)
            return
        if portal.result is None:
            self.session.check_transaction(portal.prepared)
            portal.result = await self.call(self.session.execute, portal.prepared, portal.params)
            self.after_utility(portal.prepared)
            self.send_notices(portal.result)
        result = portal.result
        if result.columns is None:
            self.send(p.command_complete(result.tag))
            return
        if portal.feed is None:
            portal.feed = RowFeed(result, portal.formats)
        feed = portal.feed
        if limit <= 0:
            while not feed.finished:
                await self.send_feed(feed, 0)
        else:
            await self.send_feed(feed, limit)
        if not feed.finished:
            self.send(p.PORTAL_SUSPENDED)
        else:
            self.send(p.command_complete(feed.tag()))

    def close(self, body: bytes) -> None:
        reader = p.Reader(body)
        what, name = reader.byte(), reader.cstr()
        if what == b"S":
            self.statements.pop(name, None)
        else:
            self.portals.pop(name, None)
        self.send(p.CLOSE_COMPLETE)


class RowFeed:
    """The rows of one result on their way to the client: batches pulled from the runtime's stream and
    encoded as DataRow messages, in a worker thread. `pull(limit)` returns the bytes of the next batch
    (limit 0) or of the next `limit` rows (a portal's Execute with a row count)."""

    def __init__(self, result: Result, formats: list[int]):
        self.result = result
        self.oids = [oid for _, oid in result.columns]
        self.binary = [(formats[i] if len(formats) > 1 else (formats[0] if formats else 0)) == 1
                       for i in range(len(self.oids))]
        self.source = result.batches if result.batches is not None else iter([result.rows])
        self.pending: list[tuple] = []
        self.sent = 0
        self.finished = False

    def pull(self, limit: int) -> bytes:
        rows: list[tuple] = []
        while not self.finished and (limit <= 0 and not rows or limit > 0 and len(rows) < limit):
            if not self.pending:
                self.pending = next(self.source, None)
                if self.pending is None:
                    self.finished, self.pending = True, []
                    break
            take = len(self.pending) if limit <= 0 else limit - len(rows)
            rows += self.pending[:take]
            self.pending = self.pending[take:]
        if limit > 0 and not self.pending and not self.finished:
            self.pending = next(self.source, None)  # look ahead: the last row closes the portal, not suspends it
            if self.pending is None:
                self.finished, self.pending = True, []
        self.sent += len(rows)
        return self.encode_rows(rows)

    def encode_rows(self, rows: list[tuple]) -> bytes:
        """DataRow messages of rows, encoded column by column (each cell as its int32 length and bytes,
        NULL as -1) with an encoder chosen once per column: SELECT * over the wire spends most of its
        time here, and a column at a time keeps the per-cell work to one call."""
        if not rows:
            return b""
        columns = []
        for values, (plain, remembered) in zip(zip(*rows), self.cells):
            sample = next((v for v in values if v is not None), None)
            cell = remembered if type(sample) in MEMO_TYPES else plain  # a column holds one type
            columns.append([cell(v) for v in values])
        pack, head = _INT32.pack, struct.pack("!h", len(self.encoders))
        out = []
        for cells in zip(*columns):
            body = head + b"".join(cells)
            out.append(b"D" + pack(len(body) + 4) + body)
        return b"".join(out)

    @functools.cached_property
    def cells(self) -> list:
        """Per column: value -> its length-prefixed bytes (NULL: length -1). Dimension columns repeat few
        values (a category, a country), so a column of MEMO_TYPES values remembers the cells it made, up
        to MEMO_CELLS of them. Each column has both makers: (plain, remembered)."""
        return [_cell_maker(encode) for encode in self.encoders]

    @functools.cached_property
    def encoders(self) -> list:
        return [functools.partial(t.encode_binary, oid=oid) if as_binary else _text_encoder(oid)
                for oid, as_binary in zip(self.oids, self.binary)]

    def tag(self) -> str:
        tag = self.result.tag
        return f"SELECT {self.sent}" if tag.startswith("SELECT") else tag


class CopyFeed(RowFeed):
    """A result as COPY data (`COPY (SELECT …) TO STDOUT`): each row one CopyData message in the text
    or CSV format, cells as their PostgreSQL text (copy_out.py)."""

    def __init__(self, result: Result, options):
        super().__init__(result, [])
        self.encoder = CopyEncoder(options, [name for name, _ in result.columns])

    def start(self) -> bytes:
        header = self.encoder.header()
        return p.copy_out_response(len(self.oids)) + (p.copy_data(header) if header is not None else b"")

    def encode_rows(self, rows: list[tuple]) -> bytes:
        encoders = self.encoders
        return b"".join(p.copy_data(self.encoder.line([None if v is None else encode(v).decode("utf-8")
                                                        for encode, v in zip(encoders, row)])) for row in rows)

    def tag(self) -> str:
        return f"COPY {self.sent}"


_INT32 = struct.Struct("!i")
MEMO_CELLS = 4096  # remembered cells per column and result
# types whose equal values always encode alike (not floats: -0.0 == 0.0; not Decimals: 1.5 == 1.50;
# not datetimes: equal instants in two zones)
MEMO_TYPES = frozenset({str, int, date})


def _cell_maker(encode):
    pack, null = _INT32.pack, b"\xff\xff\xff\xff"
    memo: dict = {}

    def plain(value) -> bytes:
        if value is None:
            return null
        encoded = encode(value)
        return pack(len(encoded)) + encoded

    def remembered(value) -> bytes:
        found = memo.get(value)
        if found is None:
            found = plain(value)
            if len(memo) < MEMO_CELLS:
                memo[value] = found
        return found

    return plain, remembered


def _text_encoder(oid: int):
    """A column's text encoder: t.encode_text, with the common value types answered without its checks."""
    def generic(value) -> bytes:
        return t.encode_text(value, oid).encode("utf-8")

    if oid == t.BOOL:
        return generic
    plain_date = oid not in (t.TIMESTAMP, t.TIMESTAMPTZ)

    def encode(value) -> bytes:
        kind = type(value)
        if kind is str:
            return value.encode("utf-8")
        if kind is int:
            return str(value).encode()
        if kind is Decimal:
            return b"NaN" if value.is_nan() else format(value, "f").encode()
        if kind is date and plain_date:
            return value.isoformat().encode()
        return generic(value)

    return encode


# --- starting -------------------------------------------------------------------------------------------


def wire_limits(runtime) -> WireLimits:
    """canon.yml's limits.wire (validated), with sockets kept within the process's descriptors."""
    from ..project import load_config

    project = getattr(runtime, "project", None)
    return WireLimits.from_config(load_config(project) if project is not None else {}).within(fd_budget())


def make_ssl_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    if not certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


async def serve(runtime, host: str, port: int, user: str, password: str | None, *,
                ssl_context: ssl.SSLContext | None = None, ready=None, limits: WireLimits | None = None) -> None:
    """Serve the runtime's views until cancelled. `ready(port)` is called once listening (port 0 picks
    a free one). `limits`: by default canon.yml's limits.wire (a ConfigError when invalid)."""
    server = PgServer(runtime, ServerConfig(user, password, ssl_context), limits or wire_limits(runtime))
    # the reader's buffer stops reading past 2 x limit: bodies are read in chunks of this size anyway
    listener = await asyncio.start_server(server.handle, host, port, limit=READ_CHUNK)
    bound = listener.sockets[0].getsockname()[1]
    if ready is not None:
        ready(bound)
    async with listener:
        await listener.serve_forever()


@dataclass
class PgServerHandle:
    host: str
    port: int
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    _task: asyncio.Future = field(repr=False, default=None)

    def stop(self, timeout: float = 5.0) -> None:
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(timeout)


def start_pg_server(runtime, host: str = "127.0.0.1", port: int = 5433,
                    user: str = "canon", password: str | None = None, *, ssl_context=None) -> PgServerHandle:
    """Start the PostgreSQL wire server in a background thread (for `canon serve --pg-port`), on the
    same runtime as the HTTP API (a new catalog version rebuilds the pg_catalog emulation). Returns
    once listening; `.stop()` shuts it down."""
    limits = wire_limits(runtime)  # here, so a bad limits.wire is the caller's ConfigError
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    def ready(bound):
        holder["port"] = bound
        started.set()

    def main():
        asyncio.set_event_loop(loop)
        task = loop.create_task(serve(runtime, host, port, user, password,
                                      ssl_context=ssl_context, ready=ready, limits=limits))
        holder["task"] = task
        try:
            loop.run_until_complete(task)
        except (asyncio.CancelledError, Exception) as error:  # noqa: BLE001 - reported below
            holder.setdefault("error", error)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="canon-pgwire", daemon=True)
    thread.start()
    started.wait(30)
    if "port" not in holder:
        raise OSError(f"the PostgreSQL wire server could not listen on {host}:{port}: {holder.get('error')}")
    return PgServerHandle(host, holder["port"], thread, loop, holder.get("task"))


def check_open_bind(runtime, host: str, password: str | None) -> None:
    """Serving SQL without any authentication is for this machine only."""
    if password:
        return
    runtime.authn.check_bind(host, "the PostgreSQL wire server")
