"""What every importer shares: YAML with line numbers in, Canon YAML and a report of what did not map out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from canon.compiler.errors import ConfigError

REPORT_FILE = "IMPORT_REPORT.md"
MAX_NAME = 63


class Unmapped(Exception):
    """Raised inside an importer when one definition cannot be carried over; it becomes a Note."""


@dataclass(frozen=True)
class Note:
    where: str  # file:line in the source project
    item: str  # what was not (exactly) carried over, e.g. "measure orders.revenue_share"
    reason: str  # why, and what Canon does instead (if anything)
    dropped: bool = True  # False: imported, but with a difference worth reviewing


@dataclass
class ImportResult:
    source: str  # "cube" | "dbt"
    models: dict[str, dict] = field(default_factory=dict)  # model name -> semantic_model document
    metrics: list[dict] = field(default_factory=list)
    saved_queries: list[dict] = field(default_factory=list)
    views: list[dict] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def note(self, where: str, item: str, reason: str, *, dropped: bool = True) -> None:
        self.notes.append(Note(where, item, reason, dropped))

    def files(self) -> dict[str, str]:
        """Relative path -> Canon YAML text."""
        out = {f"semantic_models/{name}.yml": dump({"semantic_model": model}) for name, model in sorted(self.models.items())}
        document = {key: value for key, value in (("metrics", self.metrics), ("saved_queries", self.saved_queries),
                                                  ("views", self.views)) if value}
        if document:
            out[f"metrics/{self.source}.yml"] = dump(document)
        return out

    def report(self) -> str:
        dropped = [n for n in self.notes if n.dropped]
        changed = [n for n in self.notes if not n.dropped]
        lines = [f"# Import report ({self.source})", "",
                 f"Imported {len(self.models)} semantic models, {len(self.metrics)} metrics, "
                 f"{len(self.saved_queries)} saved queries, {len(self.views)} views.", ""]
        for title, notes in (("Not imported", dropped), ("Imported with a difference to review", changed)):
            lines += [f"## {title} ({len(notes)})", ""]
            lines += [f"- {n.where}: {n.item} — {n.reason}" for n in notes] or ["- nothing"]
            lines.append("")
        return "\n".join(lines)


def dump(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)


def write_result(out: Path, result: ImportResult, *, force: bool = False) -> list[Path]:
    """Write the Canon files and the report under `out`; refuse to overwrite unless `force`."""
    from ..init_project import write_files  # the same writer as `canon init`: nothing overwritten unasked

    return write_files(out, {**result.files(), REPORT_FILE: result.report()}, force=force)


# --- reading the source files -------------------------------------------------------------------


class LineDict(dict):
    """A YAML mapping that remembers its line (1-based) for the report."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    mapping = LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_documents(path: Path) -> list:
    """Every YAML document of a file (MetricFlow's fixtures hold several per file)."""
    try:
        return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LineLoader) if d is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise ConfigError(f"malformed YAML{f' at line {mark.line + 1}' if mark else ''}: "
                          f"{getattr(error, 'problem', None) or error}") from None


def source_files(directory: Path, suffixes=(".yml", ".yaml")) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a folder", hint="pass the folder holding the model files")
    skip = {"node_modules", "target", "dbt_packages", ".git"}
    return sorted(p for p in directory.rglob("*") if p.suffix in suffixes and p.is_file()
                  and not skip.intersection(p.relative_to(directory).parts))


def where(root: Path, path: Path, node) -> str:
    line = getattr(node, "line", 0)
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    return f"{shown}:{line}" if line else str(shown)


def canon_name(text: str) -> str:
    """A Canon name for a foreign one: camelCase and other spellings to lower snake case."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(text).strip())
    name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "x"
    return (name if name[0].isalpha() else f"x_{name}")[:MAX_NAME]


def compact(document: dict) -> dict:
    """Drop empty and default-looking values so the YAML reads like hand-written Canon."""
    return {k: v for k, v in document.items() if v not in (None, [], (), {}, "")}
