"""Where the project and its warehouse are.

The project is the folder holding `semantic_models/` and `metrics/`: `--project`, else
$CANON_PROJECT, else the current folder or the nearest parent that has them. The warehouse is
`--warehouse`, else $CANON_WAREHOUSE, else `warehouse:` in the project's canon.yml, else the demo
DuckDB file that `canon demo` writes: `<project>/.canon/demo.duckdb`.
"""

from __future__ import annotations

import os
from pathlib import Path

from canon.compiler.errors import ConfigError

DEMO_FILE = Path(".canon") / "demo.duckdb"
CONFIG_FILE = "canon.yml"


def find_project(explicit: str | os.PathLike | None = None) -> Path:
    if explicit or os.environ.get("CANON_PROJECT"):
        path = Path(explicit or os.environ["CANON_PROJECT"]).expanduser().resolve()
        if not _is_project(path):
            raise ConfigError(f"{path} is not a Canon project",
                              hint="a project folder holds semantic_models/ and metrics/")
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if _is_project(folder):
            return folder
    raise ConfigError(f"no Canon project in {here} or its parents",
                      hint="run inside a folder holding semantic_models/ and metrics/, or pass --project DIR")


def _is_project(path: Path) -> bool:
    return (path / "semantic_models").is_dir() and (path / "metrics").is_dir()


def load_config(project: Path) -> dict:
    path = project / CONFIG_FILE
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{CONFIG_FILE}: malformed YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE}: must be a mapping of settings")
    return data


def demo_path(project: Path) -> Path:
    return project / DEMO_FILE


def warehouse_url(project: Path, explicit: str | None = None) -> str:
    """The warehouse to use, as a DuckDB file path or a postgresql:// URL."""
    if explicit:
        return explicit
    if os.environ.get("CANON_WAREHOUSE"):
        return os.environ["CANON_WAREHOUSE"]
    configured = load_config(project).get("warehouse")
    if configured:
        return str(configured)
    return str(demo_path(project))
