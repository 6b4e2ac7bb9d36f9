"""PostgreSQL protocol v3 framing: backend messages, frontend message parsing, SCRAM-SHA-256.

Plain functions over bytes; no I/O here. See the PostgreSQL documentation, "Frontend/Backend
Protocol" (message formats) and RFC 5802/7677 (SCRAM).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

PROTOCOL_V3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_MESSAGE = 16 * 1024 * 1024  # default of limits.wire.max_message (limits.py): larger ones are 08P01, FATAL
MAX_STARTUP = 10_000


class ProtocolError(Exception):
    """The client broke the protocol: answer with 08P01 and close."""


class EncodingError(ProtocolError):
    """A string field is not valid UTF-8: after authentication an ErrorResponse (22021), not the end."""


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def cstr(text: str) -> bytes:
    return text.encode("utf-8") + b"\0"


def auth_ok() -> bytes:
    return message(b"R", struct.pack("!i", 0))


def auth_cleartext() -> bytes:
    return message(b"R", struct.pack("!i", 3))


def auth_sasl(mechanisms=("SCRAM-SHA-256",)) -> bytes:
    return message(b"R", struct.pack("!i", 10) + b"".join(cstr(m) for m in mechanisms) + b"\0")


def auth_sasl_continue(data: bytes) -> bytes:
    return message(b"R", struct.pack("!i", 11) + data)


def auth_sasl_final(data: bytes) -> bytes:
    return message(b"R", struct.pack("!i", 12) + data)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key_data(pid: int, secret: int) -> bytes:
    return message(b"K", struct.pack("!ii", pid, secret))


def ready_for_query(status: bytes) -> bytes:
    return message(b"Z", status)


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def error_response(fields: list[tuple[bytes, str]], kind: bytes = b"E") -> bytes:
    payload = b"".join(code + cstr(value.replace("\0", "")) for code, value in fields) + b"\0"
    return message(kind, payload)


def row_description(columns: list[tuple[str, int]], formats: list[int]) -> bytes:
    from .types import TYPE_SIZES

    parts = [struct.pack("!h", len(columns))]
    for i, (name, oid) in enumerate(columns):
        fmt = formats[i] if i < len(formats) else 0
        parts.append(cstr(name) + struct.pack("!ihihih", 0, 0, oid, TYPE_SIZES.get(oid, -1), -1, fmt))
    return message(b"T", b"".join(parts))


def parameter_description(oids: list[int]) -> bytes:
    return message(b"t", struct.pack(f"!h{len(oids)}I", len(oids), *oids))


def data_row(cells: list[bytes | None]) -> bytes:
    parts = [struct.pack("!h", len(cells))]
    for cell in cells:
        if cell is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(struct.pack("!i", len(cell)) + cell)
    return message(b"D", b"".join(parts))


PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
NO_DATA = message(b"n")
def copy_out_response(columns: int) -> bytes:
    """CopyOutResponse: text format, every column text."""
    return message(b"H", struct.pack("!bh", 0, columns) + struct.pack("!h", 0) * columns)


def copy_data(data: bytes) -> bytes:
    return message(b"d", data)


COPY_DONE = message(b"c")
EMPTY_QUERY = message(b"I")
PORTAL_SUSPENDED = message(b"s")


class Reader:
    """Reads the fields of one message body; any overrun is a ProtocolError."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("message is shorter than its fields")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int16(self) -> int:
        return struct.unpack("!h", self._take(2))[0]

    def int32(self) -> int:
        return struct.unpack("!i", self._take(4))[0]

    def uint32(self) -> int:
        return struct.unpack("!I", self._take(4))[0]

    def byte(self) -> bytes:
        return self._take(1)

    def bytes(self, n: int) -> bytes:
        return self._take(n)

    def rest(self) -> bytes:
        return self._take(len(self.data) - self.pos)

    def cstr(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("unterminated string in message")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad = raw[error.start:error.start + 1].hex()
            raise EncodingError(f'invalid byte sequence for encoding "UTF8": 0x{bad}') from None


def parse_startup(body: bytes) -> dict[str, str]:
    reader = Reader(body)
    params = {}
    while reader.pos < len(body):
        key = reader.cstr()
        if not key:
            break
        params[key] = reader.cstr()
    return params


# --- SCRAM-SHA-256 (server side) ------------------------------------------------------------------------

ITERATIONS = 4096


class ScramServer:
    """One SCRAM-SHA-256 exchange for a known password (RFC 5802, RFC 7677, no channel binding)."""

    def __init__(self, password: str | None = None, *, verifier=None):
        """From a password, or from a stored verifier (salt, iterations, StoredKey, ServerKey) so that
        the password itself is never known to the server."""
        if verifier is not None:
            self.salt, self.iterations = verifier.salt, verifier.iterations
            self.stored_key, self.server_key = verifier.stored_key, verifier.server_key
        else:
            self.salt, self.iterations = os.urandom(16), ITERATIONS
            salted = hashlib.pbkdf2_hmac("sha256", (password or "").encode("utf-8"), self.salt, ITERATIONS)
            client_key = hmac.digest(salted, b"Client Key", "sha256")
            self.stored_key = hashlib.sha256(client_key).digest()
            self.server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.nonce = ""
        self.client_first_bare = ""
        self.server_first = ""

    def first(self, client_first: bytes) -> bytes:
        text = client_first.decode("utf-8")
        header, sep, bare = _split_gs2(text)
        if not sep or header[0] not in "ny":
            raise ProtocolError("SCRAM: channel binding is not supported here")
        attrs = _attrs(bare)
        if "r" not in attrs:
            raise ProtocolError("SCRAM: client nonce missing")
        self.client_first_bare = bare
        self.nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
        self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={self.iterations}"
        return self.server_first.encode()

    def final(self, client_final: bytes) -> bytes | None:
        """The server-final message when the proof is right, else None."""
        text = client_final.decode("utf-8")
        attrs = _attrs(text)
        without_proof = text.rsplit(",p=", 1)[0]
        if attrs.get("r") != self.nonce or "p" not in attrs:
            return None
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.digest(self.stored_key, auth_message, "sha256")
        try:
            proof = base64.b64decode(attrs["p"], validate=True)
        except ValueError:
            return None
        if len(proof) != len(signature):
            return None
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key):
            return None
        server_signature = hmac.digest(self.server_key, auth_message, "sha256")
        return b"v=" + base64.b64encode(server_signature)


def _split_gs2(text: str) -> tuple[str, bool, str]:
    # gs2-header is "n,," or "y,," (optionally with an authzid): the bare message follows the 2nd comma
    first = text.find(",")
    second = text.find(",", first + 1) if first >= 0 else -1
    if first < 1 or second < 0:
        return text, False, ""
    return text[:second + 1], True, text[second + 1:]


def _attrs(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        if len(part) >= 2 and part[1] == "=":
            out[part[0]] = part[2:]
    return out
