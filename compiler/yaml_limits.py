"""Refuse hostile YAML before it is composed or expanded.

A few hundred bytes of anchors and aliases ("billion laughs") expand to billions of nodes when the
document is turned into Python values, and a deeply nested `[[[[...` crashes libyaml's composer (a C
stack overflow: the process dies, no exception). So before composing, `check_yaml` streams the
parser's events (libyaml's parser keeps its own heap stack, so it does not crash) and stops at the
first of:
- nesting deeper than MAX_DEPTH levels;
- more than MAX_ALIASES aliases in one file;
- more than MAX_NODES nodes once every alias is expanded (each anchor's expanded size is counted as
  its events stream by, so the check is linear in the file's size and stops at the limit): an alias
  bomb, or a file so large that composing it would take seconds (libyaml composes ~200k nodes/s);
- an alias to the node that contains it (a recursive structure).
Each refusal is a ConfigError at the line of the offending node. The limits are fixed: hand-written
definitions stay far below them (the demo project's largest file: 326 nodes, no aliases).
"""

from __future__ import annotations

import yaml

from .errors import ConfigError, Location

MAX_DEPTH = 64
MAX_ALIASES = 200
MAX_NODES = 100_000

_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HINT = "write the values out instead of repeating them through anchors (&name) and aliases (*name)"


def check_yaml(text: str, file: str) -> None:
    """Raise ConfigError when `text` nests too deep, has too many aliases or too many nodes once they
    are expanded. Malformed YAML is left for the composer to report (it gives the better message)."""
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for, once its node has ended
    open_anchors: set[str] = set()
    stack: list[list] = []  # per open collection: [anchor, nodes so far]
    aliases = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise _refusal(f"the YAML nests deeper than {MAX_DEPTH} levels", file, event,
                                   "flatten the structure; definitions need only a few levels")
                nodes += 1
                if nodes > MAX_NODES:
                    raise _too_many(file, event)
                stack.append([event.anchor, 1])
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, count = stack.pop()
                if anchor is not None:
                    sizes[anchor] = count
                    open_anchors.discard(anchor)
                _add(stack, count)
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise _too_many(file, event)
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                _add(stack, 1)
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if event.anchor in open_anchors:
                    raise _refusal(f"the YAML alias *{event.anchor} refers to the node that contains it",
                                   file, event, "a definition cannot contain itself; " + _HINT)
                if aliases > MAX_ALIASES:
                    raise _refusal(f"the file uses more than {MAX_ALIASES} YAML aliases", file, event, _HINT)
                size = sizes.get(event.anchor, 1)  # an unknown anchor: the composer reports it
                nodes += size
                if nodes > MAX_NODES:
                    raise _refusal(f"the YAML alias *{event.anchor} would expand the file past "
                                   f"{MAX_NODES:,} nodes (an alias bomb?)", file, event, _HINT)
                _add(stack, size)
    except yaml.YAMLError:
        return  # malformed: compose raises the positioned error


def _add(stack: list[list], count: int) -> None:
    if stack:
        stack[-1][1] += count


def _too_many(file: str, event: yaml.Event) -> ConfigError:
    return _refusal(f"the file has more than {MAX_NODES:,} YAML nodes (values, lists and mappings)", file, event,
                    "split it into several files: one per semantic model, metrics by domain")


def _refusal(message: str, file: str, event: yaml.Event, hint: str) -> ConfigError:
    return ConfigError(message, location=Location(file=file, line=event.start_mark.line + 1), hint=hint)
