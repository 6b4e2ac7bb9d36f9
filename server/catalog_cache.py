"""A cache of the validated catalog, so each CLI call does not re-read and re-check the YAML.

The key is a hash of every definition file's path and bytes plus the versions of Canon and
sqlglot; any edit, added or removed file gives a new key and a fresh build. The cache lives in
`<project>/.canon/` next to the demo warehouse and is written atomically; when it cannot be
written (read-only checkout) Canon just builds the catalog each time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from canon.compiler.catalog import Catalog
from canon.compiler.compile import load_catalog
from canon.compiler.load import find_definition_files

CACHE_FILE = Path(".canon") / "catalog.pickle"
FORMAT = 3  # 2: modules live under canon.; 3: metric facts, locations on the definitions


def fingerprint(project: Path) -> str:
    import sqlglot

    digest = hashlib.sha256(f"canon-cache-{FORMAT}-{sqlglot.__version__}".encode())
    settings = project / "canon.yml"
    for _, path in find_definition_files(project) + ([("settings", settings)] if settings.is_file() else []):
        digest.update(str(path.relative_to(project)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_catalog_cached(project: Path) -> Catalog:
    key = fingerprint(project)
    path = project / CACHE_FILE
    try:
        with path.open("rb") as handle:
            stored_key, catalog = pickle.load(handle)
        if stored_key == key:
            return catalog
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
        pass  # missing, stale or from another version: rebuild
    catalog = load_catalog(project)  # raises on invalid definitions; nothing is cached then
    _store(path, key, catalog)
    return catalog


def _store(path: Path, key: str, catalog: Catalog) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalog-", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump((key, catalog), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
