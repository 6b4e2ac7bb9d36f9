"""PostgreSQL types: OIDs, and values to and from the text and binary wire formats.

Only the types Canon answers with (and the ones catalog queries return) are encoded; a value of
any other Python type is sent as text.
"""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

BOOL, BYTEA, CHAR, NAME, INT8, INT2, INT4, REGPROC, TEXT, OID = 16, 17, 18, 19, 20, 21, 23, 24, 25, 26
FLOAT4, FLOAT8, UNKNOWN, BPCHAR, VARCHAR = 700, 701, 705, 1042, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC = 1082, 1083, 1114, 1184, 1186, 1700
REGCLASS, REGTYPE = 2205, 2206
TEXT_ARRAY, INT2_ARRAY, INT4_ARRAY, INT8_ARRAY, OID_ARRAY, NAME_ARRAY, CHAR_ARRAY = 1009, 1005, 1007, 1016, 1028, 1003, 1002
BOOL_ARRAY, FLOAT8_ARRAY, NUMERIC_ARRAY, VARCHAR_ARRAY = 1000, 1022, 1231, 1015

# catalog kinds -> result type of a column
KIND_OIDS = {"categorical": TEXT, "string": TEXT, "number": NUMERIC, "boolean": BOOL, "time": TIMESTAMP, "date": DATE}

# typname, oid, typlen, typcategory, array oid, element oid
BUILTIN_TYPES: list[tuple[str, int, int, str, int, int]] = [
    ("bool", BOOL, 1, "B", BOOL_ARRAY, 0),
    ("bytea", BYTEA, -1, "U", 1001, 0),
    ("char", CHAR, 1, "Z", CHAR_ARRAY, 0),
    ("name", NAME, 64, "S", NAME_ARRAY, 0),
    ("int8", INT8, 8, "N", INT8_ARRAY, 0),
    ("int2", INT2, 2, "N", INT2_ARRAY, 0),
    ("int2vector", 22, -1, "A", 1006, INT2),
    ("int4", INT4, 4, "N", INT4_ARRAY, 0),
    ("regproc", REGPROC, 4, "N", 1008, 0),
    ("text", TEXT, -1, "S", TEXT_ARRAY, 0),
    ("oid", OID, 4, "N", OID_ARRAY, 0),
    ("oidvector", 30, -1, "A", 1013, OID),
    ("json", 114, -1, "U", 199, 0),
    ("xml", 142, -1, "U", 143, 0),
    ("float4", FLOAT4, 4, "N", 1021, 0),
    ("float8", FLOAT8, 8, "N", FLOAT8_ARRAY, 0),
    ("unknown", UNKNOWN, -2, "X", 0, 0),
    ("bpchar", BPCHAR, -1, "S", 1014, 0),
    ("varchar", VARCHAR, -1, "S", VARCHAR_ARRAY, 0),
    ("date", DATE, 4, "D", 1182, 0),
    ("time", TIME, 8, "D", 1183, 0),
    ("timestamp", TIMESTAMP, 8, "D", 1115, 0),
    ("timestamptz", TIMESTAMPTZ, 8, "D", 1185, 0),
    ("interval", INTERVAL, 16, "T", 1187, 0),
    ("numeric", NUMERIC, -1, "N", NUMERIC_ARRAY, 0),
    ("regclass", REGCLASS, 4, "N", 2210, 0),
    ("regtype", REGTYPE, 4, "N", 2211, 0),
    ("uuid", 2950, 16, "U", 2951, 0),
    ("jsonb", 3802, -1, "U", 3807, 0),
    ("void", 2278, 4, "P", 0, 0),
    ("record", 2249, -1, "P", 2287, 0),
    ("cstring", 2275, -2, "P", 1263, 0),  # type I/O functions' argument (pgcli lists pg_proc)
    ("trigger", 2279, 4, "P", 0, 0),  # pgcli: WHERE p.prorettype::regtype != 'trigger'::regtype
    ("_bool", BOOL_ARRAY, -1, "A", 0, BOOL),
    ("_char", CHAR_ARRAY, -1, "A", 0, CHAR),
    ("_name", NAME_ARRAY, -1, "A", 0, NAME),
    ("_int2", INT2_ARRAY, -1, "A", 0, INT2),
    ("_int4", INT4_ARRAY, -1, "A", 0, INT4),
    ("_text", TEXT_ARRAY, -1, "A", 0, TEXT),
    ("_oid", OID_ARRAY, -1, "A", 0, OID),
    ("_varchar", VARCHAR_ARRAY, -1, "A", 0, VARCHAR),
    ("_int8", INT8_ARRAY, -1, "A", 0, INT8),
    ("_float8", FLOAT8_ARRAY, -1, "A", 0, FLOAT8),
    ("_date", 1182, -1, "A", 0, DATE),
    ("_timestamp", 1115, -1, "A", 0, TIMESTAMP),
    ("_numeric", NUMERIC_ARRAY, -1, "A", 0, NUMERIC),
]
TYPE_NAMES = {oid: name for name, oid, *_ in BUILTIN_TYPES}
TYPE_SIZES = {oid: size for _, oid, size, *_ in BUILTIN_TYPES}
# the name format_type() prints
FORMAT_NAMES = {BOOL: "boolean", INT8: "bigint", INT2: "smallint", INT4: "integer", TEXT: "text", FLOAT4: "real",
                FLOAT8: "double precision", VARCHAR: "character varying", BPCHAR: "character", DATE: "date",
                TIMESTAMP: "timestamp without time zone", TIMESTAMPTZ: "timestamp with time zone",
                NUMERIC: "numeric", NAME: "name", OID: "oid", CHAR: '"char"', TIME: "time without time zone",
                INTERVAL: "interval", BYTEA: "bytea", REGCLASS: "regclass", REGTYPE: "regtype"}

# DuckDB result type names (cursor.description) -> PostgreSQL OIDs, for catalog query results
DUCKDB_OIDS = {"VARCHAR": TEXT, "BIGINT": INT8, "INTEGER": INT4, "SMALLINT": INT2, "TINYINT": INT2,
               "HUGEINT": NUMERIC, "UBIGINT": NUMERIC, "UINTEGER": INT8, "USMALLINT": INT4, "UTINYINT": INT2,
               "BOOLEAN": BOOL, "DOUBLE": FLOAT8, "FLOAT": FLOAT4, "DATE": DATE, "TIMESTAMP": TIMESTAMP,
               "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ, "TIME": TIME, "INTERVAL": INTERVAL, "BLOB": BYTEA,
               "UUID": 2950, "JSON": 114, '"NULL"': TEXT, "NULL": TEXT}


def duckdb_oid(type_name: str) -> int:
    name = str(type_name).upper()
    if name.startswith("DECIMAL"):
        return NUMERIC
    if name.endswith("[]"):
        inner = DUCKDB_OIDS.get(name[:-2], TEXT)
        return {TEXT: TEXT_ARRAY, INT4: INT4_ARRAY, INT8: INT8_ARRAY, INT2: INT2_ARRAY, BOOL: BOOL_ARRAY,
                FLOAT8: FLOAT8_ARRAY}.get(inner, TEXT_ARRAY)
    return DUCKDB_OIDS.get(name, TEXT)


# --- values -> text -------------------------------------------------------------------------------------


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _array_text(values) -> str:
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
            continue
        text = encode_text(v, TEXT)
        if text == "" or any(c in text for c in ',{}"\\ ') or text.upper() == "NULL":
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(text)
    return "{" + ",".join(parts) + "}"


def encode_text(value, oid: int) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if oid == BOOL and isinstance(value, (int, str)):
        return "t" if value in (1, "t", "true", "True") else "f"
    if isinstance(value, float):
        if oid == NUMERIC and math.isfinite(value):
            return repr(value)
        return _float_text(value)
    if isinstance(value, Decimal):
        return "NaN" if value.is_nan() else format(value, "f")
    if isinstance(value, datetime):
        if oid == DATE:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        if oid in (TIMESTAMP, TIMESTAMPTZ):
            return value.isoformat() + " 00:00:00"
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.days} days {value.seconds // 3600:02d}:{value.seconds // 60 % 60:02d}:{value.seconds % 60:02d}"
    if isinstance(value, (list, tuple)):
        return _array_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    return str(value)


# --- values -> binary -----------------------------------------------------------------------------------

_PG_EPOCH = date(2000, 1, 1)
_PG_EPOCH_DT = datetime(2000, 1, 1)
_BINARY_OIDS = {BOOL, INT2, INT4, INT8, OID, FLOAT4, FLOAT8, TEXT, VARCHAR, NAME, BPCHAR, CHAR, UNKNOWN,
                DATE, TIMESTAMP, TIMESTAMPTZ, NUMERIC, REGCLASS, REGTYPE, REGPROC, BYTEA}


def has_binary(oid: int) -> bool:
    return oid in _BINARY_OIDS


def _numeric_binary(value) -> bytes:
    if isinstance(value, float):
        if math.isnan(value):
            return struct.pack("!hhhh", 0, 0, 0xC000, 0)
        if math.isinf(value):
            return struct.pack("!hhHh", 0, 0, 0xD000 if value > 0 else 0xF000, 0)
        value = Decimal(repr(value))
    value = Decimal(value)
    if value.is_nan():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    sign, digits, exponent = value.as_tuple()
    if isinstance(exponent, str):  # infinity
        return struct.pack("!hhHh", 0, 0, 0xF000 if sign else 0xD000, 0)
    dscale = max(0, -exponent)
    text = "".join(map(str, digits)) or "0"
    if exponent >= 0:
        int_part, frac_part = text + "0" * exponent, ""
    else:
        int_part, frac_part = text[:exponent] or "0", text[exponent:].rjust(-exponent, "0")
    int_part = int_part.lstrip("0")
    int_part = "0" * (-len(int_part) % 4) + int_part
    frac_part = frac_part + "0" * (-len(frac_part) % 4)
    groups = [int(int_part[i:i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i:i + 4]) for i in range(0, len(frac_part), 4)]
    # strip leading and trailing zero groups
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f"!hhHh{len(groups)}h", len(groups), weight, 0x4000 if sign else 0, dscale, *groups)


def encode_binary(value, oid: int) -> bytes:
    if oid == BOOL:
        return b"\x01" if value else b"\x00"
    if oid == INT2:
        return struct.pack("!h", int(value))
    if oid in (INT4,):
        return struct.pack("!i", int(value))
    if oid in (OID, REGCLASS, REGTYPE, REGPROC):
        return struct.pack("!I", int(value) & 0xFFFFFFFF)
    if oid == INT8:
        return struct.pack("!q", int(value))
    if oid == FLOAT4:
        return struct.pack("!f", float(value))
    if oid == FLOAT8:
        return struct.pack("!d", float(value))
    if oid == NUMERIC:
        return _numeric_binary(value)
    if oid == DATE:
        day = value.date() if isinstance(value, datetime) else value
        return struct.pack("!i", (day - _PG_EPOCH).days)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        delta = value - _PG_EPOCH_DT
        return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if oid == BYTEA and isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return encode_text(value, oid).encode("utf-8")


# --- parameters from the client -------------------------------------------------------------------------


class ParameterError(ValueError):
    pass


def decode_param(data: bytes | None, fmt: int, oid: int):
    """A bound parameter as a Python value (None for NULL)."""
    if data is None:
        return None
    if fmt == 0:
        text = data.decode("utf-8")
        try:
            if oid in (INT2, INT4, INT8, OID):
                return int(text)
            if oid in (FLOAT4, FLOAT8):
                return float(text)
            if oid == NUMERIC:
                return Decimal(text)
            if oid == BOOL:
                return text.lower() in ("t", "true", "1", "yes", "on")
            if oid == DATE:
                return parse_date(text)
            if oid in (TIMESTAMP, TIMESTAMPTZ):
                return parse_timestamp(text, with_zone=oid == TIMESTAMPTZ)
            if oid in ARRAY_ELEMENTS:
                return [None if v is None else decode_param(v.encode("utf-8"), 0, ARRAY_ELEMENTS[oid])
                        for v in parse_array_text(text)]
        except (ValueError, InvalidOperation):
            raise ParameterError(f"invalid input {text!r} for a parameter of type {TYPE_NAMES.get(oid, oid)}") from None
        return text
    try:
        if oid == INT2:
            return struct.unpack("!h", data)[0]
        if oid == INT4:
            return struct.unpack("!i", data)[0]
        if oid in (INT8,):
            return struct.unpack("!q", data)[0]
        if oid == OID:
            return struct.unpack("!I", data)[0]
        if oid == FLOAT4:
            return struct.unpack("!f", data)[0]
        if oid == FLOAT8:
            return struct.unpack("!d", data)[0]
        if oid == BOOL:
            return data != b"\x00"
        if oid == DATE:
            return _PG_EPOCH + timedelta(days=struct.unpack("!i", data)[0])
        if oid in (TIMESTAMP, TIMESTAMPTZ):
            return _PG_EPOCH_DT + timedelta(microseconds=struct.unpack("!q", data)[0])
        if oid == NUMERIC:
            return _decode_numeric(data)
        if oid in ARRAY_ELEMENTS:
            return _decode_array(data)
        if oid in (TEXT, VARCHAR, NAME, BPCHAR, UNKNOWN):
            return data.decode("utf-8")
    except struct.error:
        raise ParameterError(f"malformed binary parameter of type {TYPE_NAMES.get(oid, oid)}") from None
    return data.decode("utf-8")


def _decode_numeric(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack("!hhHh", data[:8])
    if sign == 0xC000:
        return Decimal("NaN")
    digits = struct.unpack(f"!{ndigits}h", data[8:8 + 2 * ndigits])
    value = Decimal(0)
    for i, d in enumerate(digits):
        value += Decimal(d) * (Decimal(10000) ** (weight - i))
    value = -value if sign == 0x4000 else value
    return value.quantize(Decimal(1).scaleb(-dscale)) if dscale else value


# --- dates, timestamps and arrays as PostgreSQL's date_in / timestamp_in / array_in read them -----------

ARRAY_ELEMENTS = {name_oid: element for _, name_oid, _, category, _, element in BUILTIN_TYPES
                  if category == "A" and element}


def _split_zone(text: str) -> tuple[str, str]:
    """'2025-01-01 00:00:00+00' -> ('2025-01-01 00:00:00', '+00'); a trailing Z, UTC or GMT is a zone too."""
    body = text.strip()
    for suffix in ("Z", "UTC", "GMT", "z"):
        if body.endswith(suffix) and len(body) > 10:
            return body[: -len(suffix)].rstrip(), "+00:00"
    at = max(body.rfind("+"), body.rfind("-"))
    if at > 10:  # past the date's own dashes
        return body[:at].rstrip(), body[at:]
    return body, ""


def _zone(text: str) -> timezone | None:
    if not text:
        return None
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (1, 2, 4, 6):
        raise ValueError(text)
    digits = digits.zfill(2) if len(digits) == 1 else digits
    hours, minutes, seconds = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes, seconds=seconds))


def parse_timestamp(text: str, *, with_zone: bool) -> datetime:
    """ISO forms date_in/timestamp_in accept: 'T' or ' ' between date and time, 0-9 fraction digits,
    zones as Z, +HH, +HHMM, +HH:MM, with or without a space before them. A timestamptz becomes UTC (the
    session's TimeZone); a plain timestamp ignores the zone, as PostgreSQL does."""
    body, zone_text = _split_zone(text)
    body = body.replace("T", " ").strip()
    day, _, clock = body.partition(" ")
    if "." in clock:
        clock, fraction = clock.split(".", 1)
        clock += "." + (fraction + "000000")[:6]
    value = datetime.fromisoformat(day + ("T" + clock if clock else ""))
    zone = _zone(zone_text)
    if with_zone and zone is not None:
        value = value.replace(tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)
    return value


def parse_date(text: str) -> date:
    """A date, also from a timestamp text ('2025-01-01 +00', '2025-01-01T00:00:00.000Z'): its date part."""
    return parse_timestamp(text, with_zone=False).date()


def parse_array_text(text: str) -> list[str | None]:
    """A one-dimensional array literal '{a,"b c",NULL}' -> its elements (NULL unquoted -> None)."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(text)
    items: list[str | None] = []
    i, body = 0, text[1:-1]
    if not body.strip():
        return items
    while i <= len(body):
        while i < len(body) and body[i] == " ":
            i += 1
        if i < len(body) and body[i] == '"':
            i += 1
            chars = []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\" and i + 1 < len(body):
                    i += 1
                chars.append(body[i])
                i += 1
            i += 1
            items.append("".join(chars))
            end = body.find(",", i)
        else:
            end = body.find(",", i)
            raw = (body[i:] if end == -1 else body[i:end]).strip()
            if raw.startswith("{"):
                raise ValueError("multi-dimensional arrays are not supported")
            items.append(None if raw.upper() == "NULL" else raw)
        if end == -1:
            break
        i = end + 1
    return items


def _decode_array(data: bytes) -> list:
    ndim, _, element = struct.unpack("!iiI", data[:12])
    if ndim == 0:
        return []
    if ndim != 1:
        raise ParameterError("multi-dimensional array parameters are not supported")
    count, _ = struct.unpack("!ii", data[12:20])
    at, out = 20, []
    for _ in range(count):
        size = struct.unpack("!i", data[at:at + 4])[0]
        at += 4
        if size == -1:
            out.append(None)
            continue
        out.append(decode_param(data[at:at + size], 1, element))
        at += size
    return out
