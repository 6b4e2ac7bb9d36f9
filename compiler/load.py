"""Load pass: YAML files -> plain documents plus a map of source positions.

The only module of the compiler that reads files. YAML is composed node by node so every value
keeps its file and line; duplicate keys are rejected, and YAML 1.1 surprises (`on`, `no`, dates)
stay strings.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import CanonError, ConfigError, Location
from .yaml_limits import check_yaml

DEFINITION_DIRS = ("semantic_models", "metrics")
SETTINGS_FILE = "canon.yml"
MAX_FILE_BYTES = 5 * 1024 * 1024  # per definition file (and canon.yml); the demo's largest is ~20 KB

# libyaml's composer when present (10x faster); both keep node marks
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


@dataclass(frozen=True)
class Document:
    """One YAML file: its parsed value and the position of every node in it."""

    file: str
    kind: str  # "semantic_models" or "metrics"
    data: Any
    positions: dict[tuple, tuple[int, int]] = field(repr=False)

    def location(self, path: tuple) -> Location:
        """The position of `path`, falling back to its nearest ancestor that has one."""
        path = tuple(path)
        while path and path not in self.positions:
            path = path[:-1]
        line, column = self.positions.get(path, (1, 1))
        return Location(file=self.file, line=line, column=column)


def find_definition_files(project_dir: Path) -> list[tuple[str, Path]]:
    files = []
    for kind in DEFINITION_DIRS:
        folder = project_dir / kind
        if folder.is_dir():
            files += [(kind, p) for p in sorted(folder.rglob("*.y*ml")) if p.suffix in (".yml", ".yaml")]
    return files


def load_project(project_dir: str | Path) -> tuple[list[Document], list[CanonError]]:
    """Read every definition file; return the documents and the problems found while reading."""
    project_dir = Path(project_dir)
    documents, problems = [], []
    for kind, path in find_definition_files(project_dir):
        shown = str(path.relative_to(project_dir))
        text = ""
        try:
            text = read_text(path, shown)
            documents.append(load_text(text, shown, kind))
        except CanonError as error:
            # the names the unreadable file seems to define: validate does not report references
            # to them as unknown, which would only echo this error
            error.defined_names = _names_in(text)
            problems.append(error)
    try:
        settings = load_settings(project_dir)
        if settings is not None:
            documents.append(settings)
    except CanonError as error:
        problems.append(error)
    return documents, problems


def load_settings(project_dir: str | Path) -> Document | None:
    """canon.yml, whose `calendar:` and `time_spine:` sections the compiler reads."""
    path = Path(project_dir) / SETTINGS_FILE
    if not os.path.lexists(path):  # a dangling link is an error, not "no settings"
        return None
    return load_text(read_text(path, SETTINGS_FILE), SETTINGS_FILE, "settings")


def read_bytes(path: Path, shown: str) -> bytes:
    """A definition file's bytes, or a ConfigError naming it: a dangling link, a folder, a pipe, a file
    that cannot be read, one over MAX_FILE_BYTES. Never blocks: a FIFO is refused before any read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _unreadable(shown, "the file (or the target of its link) does not exist") from None
    except OSError as error:
        raise _unreadable(shown, error.strerror or str(error)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _unreadable(shown, "it is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise _unreadable(shown, error.strerror or str(error)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        line = data.count(b"\n", 0, MAX_FILE_BYTES) + 1
        raise ConfigError(f"the file is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit "
                          f"for a definition file (reached at line {line})",
                          location=Location(file=shown, line=line),
                          hint="split it into several files: one per semantic model, metrics by domain")
    return data


def read_text(path: Path, shown: str) -> str:
    """`read_bytes` decoded as UTF-8; a bad byte is a ConfigError at its line."""
    data = read_bytes(path, shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"the file is not valid UTF-8 (byte 0x{data[error.start]:02x})",
                          location=Location(file=shown, line=data.count(b"\n", 0, error.start) + 1),
                          hint="save the file as UTF-8") from None


def _unreadable(shown: str, why: str) -> ConfigError:
    return ConfigError(f"cannot read the definition file: {why}", location=Location(file=shown, line=1),
                       hint="fix or remove the file (a broken symlink, a folder or pipe named *.yml, "
                            "missing read permission)")


def _names_in(text: str) -> frozenset[str]:
    """`name: x` values of a file that is not valid YAML, line by line (a best effort)."""
    names = set()
    for line in text.splitlines():
        key, sep, value = line.strip().lstrip("-{ ").partition("name:")
        if sep and not key.strip():
            names.add(value.split(",")[0].strip(" '\"}"))
    return frozenset(n for n in names if n)


def load_text(text: str, file: str, kind: str) -> Document:
    check_yaml(text, file)  # alias bombs and deep nesting, refused before composing
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        context = ""
        if error.context and error.context_mark and error.context_mark.line + 1 != line:
            context = f" ({error.context} that starts at line {error.context_mark.line + 1})"
        raise ConfigError(
            f"malformed YAML: {error.problem or error}{context}",
            location=Location(file=file, line=line),
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    positions: dict[tuple, tuple[int, int]] = {}
    data = _to_python(node, (), positions, file) if node is not None else None
    return Document(file=file, kind=kind, data=data, positions=positions)


def _to_python(node: yaml.Node, path: tuple, positions: dict, file: str) -> Any:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, file)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                raise ConfigError(
                    f"duplicate key '{key}'",
                    location=Location(file=file, line=key_node.start_mark.line + 1),
                    hint="each key may appear once in a mapping; remove or rename one",
                )
            result[key] = _to_python(value_node, path + (key,), positions, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), positions, file) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node, file: str | None = None) -> Any:
    """YAML 1.2-style scalars: only true/false are booleans, dates stay strings."""
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(
            "a mapping key must be a plain value",
            location=Location(file=file, line=node.start_mark.line + 1),
            hint="write keys as plain names, e.g. `name:`",
        )
    value, tag = node.value, node.tag
    if node.style:  # quoted: always a string
        return value
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return True if value in _TRUE else False if value in _FALSE else value
    if tag.endswith(":int"):
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value
    if tag.endswith(":float"):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value
