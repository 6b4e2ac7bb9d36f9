"""Cube's JavaScript data model, the common subset: `cube(`name`, {...})` and `view(...)` calls whose
second argument is an object literal of strings, numbers, booleans, arrays and objects.

Template literals keep their `${...}` references as text (the YAML importer reads them the same way);
bare identifiers (`drillMembers: [id, createdAt]`) become their names. Anything else (functions,
spreads, computed values) makes that one cube unreadable, reported by the caller, never guessed.
"""

from __future__ import annotations

import re
from pathlib import Path

from canon.compiler.errors import ConfigError

from .common import LineDict

_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)
  | (?P<punct>\.\.\.|=>|[{}\[\]:,()])
  | (?P<other>.)
""", re.S | re.X)


class _Unreadable(Exception):
    pass


def read_js_model(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    tokens = [(m.lastgroup, m.group(), text.count("\n", 0, m.start()) + 1)
              for m in _TOKEN.finditer(text) if m.lastgroup != "space"]
    cubes, views, problems = [], [], []
    i = 0
    while i < len(tokens):
        kind, value, line = tokens[i]
        if kind == "name" and value in ("cube", "view") and i + 1 < len(tokens) and tokens[i + 1][1] == "(":
            try:
                name, body, i = _call(tokens, i + 2)
            except _Unreadable as reason:
                problems.append(f"{path.name}:{line}: {value}(...) is not a plain object literal ({reason})")
                i += 2
                continue
            body = LineDict({"name": name, **body})
            body.line = line
            (cubes if value == "cube" else views).append(body)
            continue
        i += 1
    if problems and not (cubes or views):
        raise ConfigError(problems[0], hint="rewrite the model in YAML, or simplify it to an object literal")
    return [{"cubes": cubes, "views": views, "_problems": problems}]


def _call(tokens, i):
    name, i = _value(tokens, i)
    if tokens[i][1] != ",":
        raise _Unreadable("expected `name, {...}`")
    body, i = _value(tokens, i + 1)
    if not isinstance(body, dict) or tokens[i][1] != ")":
        raise _Unreadable("expected an object literal")
    return str(name), body, i + 1


def _value(tokens, i):
    kind, value, _ = tokens[i]
    if value == "{":
        out, i = {}, i + 1
        while tokens[i][1] != "}":
            key_kind, key, _ = tokens[i]
            if key_kind not in ("name", "string") or tokens[i + 1][1] != ":":
                raise _Unreadable(f"unexpected '{key}'")
            out[_string(key) if key_kind == "string" else key], i = _value(tokens, i + 2)
            if tokens[i][1] == ",":
                i += 1
        return out, i + 1
    if value == "[":
        out, i = [], i + 1
        while tokens[i][1] != "]":
            item, i = _value(tokens, i)
            out.append(item)
            if tokens[i][1] == ",":
                i += 1
        return out, i + 1
    if kind == "string":
        return _string(value), i + 1
    if kind == "number":
        return float(value) if "." in value else int(value), i + 1
    if kind == "name" and tokens[i + 1][1] not in ("(", "=>"):
        return {"true": True, "false": False, "null": None}.get(value, value), i + 1
    raise _Unreadable(f"unsupported JavaScript '{value}'")


def _string(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)
