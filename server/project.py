"""Where the project and its warehouse are.

The project is the folder holding `semantic_models/` and `metrics/`: `--project`, else
$CANON_PROJECT, else the current folder or the nearest parent that has them. The warehouse is
`--warehouse`, else $CANON_WAREHOUSE, else `warehouse:` in the project's canon.yml (a relative path
there is relative to the project folder, wherever Canon runs from), else the demo DuckDB file that
`canon demo` writes: `<project>/.canon/demo.duckdb`.

canon.yml is strict at its top level: a key no part of Canon reads (a typo such as `limts:`) is an
error naming the line and the closest known key, never silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from canon.compiler.errors import ConfigError

DEMO_FILE = Path(".canon") / "demo.duckdb"
CONFIG_FILE = "canon.yml"
# every top-level section of canon.yml, and who reads it; a new section must be added here
# (tests/test_init.py checks that every `config.get("...")` in server/ and compiler/ is listed)
KNOWN_KEYS = {
    "warehouse": "project.py", "calendar": "compiler", "time_spine": "compiler", "rules": "compiler/rules.py",
    "limits": "runtime/limits.py, pgwire/limits.py", "http": "http_guard.py", "pg": "pgwire/server.py",
    "auth": "runtime/authn.py", "users": "runtime/authn.py", "access": "runtime/policies.py",
    "cors_origins": "http_auth.py", "audit": "runtime/audit.py", "cache": "runtime/result_cache.py",
    "recommendations": "recommend/routes.py", "rollups": "rollups/schedule.py",
}


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

    from canon.compiler.load import read_text
    from canon.compiler.yaml_limits import check_yaml

    text = read_text(path, CONFIG_FILE)  # size-capped; alias bombs and deep nesting refused before parsing
    check_yaml(text, CONFIG_FILE)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{CONFIG_FILE}: malformed YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE}: must be a mapping of settings")
    _check_keys(data, text)
    return data


def _check_keys(data: dict, text: str) -> None:
    unknown = [key for key in data if key not in KNOWN_KEYS]
    if not unknown:
        return
    import yaml

    from canon.compiler.errors import CatalogErrors, Location, did_you_mean

    lines = {}
    node = yaml.compose(text)  # the key nodes' marks give each unknown key's line
    for key_node, _ in getattr(node, "value", ()):
        lines.setdefault(key_node.value, key_node.start_mark.line + 1)
    problems = [ConfigError(f"unknown setting '{key}'", location=Location(CONFIG_FILE, lines.get(str(key))),
                            hint=did_you_mean(str(key), KNOWN_KEYS)) for key in unknown]
    raise problems[0] if len(problems) == 1 else CatalogErrors(problems)


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
        return resolve_from(project, str(configured))
    return str(demo_path(project))


def resolve_from(project: Path, url: str) -> str:
    """A warehouse written in canon.yml: file and folder paths taken relative to the project."""
    if "://" in url:
        return url
    for prefix in ("spark-local:", "chdb:"):  # engines over a folder of parquet files
        if url.startswith(prefix):
            return prefix + resolve_from(project, url[len(prefix):])
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else project / path)
