"""A cache of the validated catalog, so each CLI call does not re-read and re-check the YAML.

The key is a hash of every definition file's path and bytes plus the version of sqlglot and a hash of
the compiler's source; any edit, added or removed file, or other compiler code, gives a new key and a
fresh build. The cache lives in `<project>/.canon/` next to the demo warehouse and is written atomically; when it cannot be
written (read-only checkout) Canon just builds the catalog each time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from canon.compiler.catalog import Catalog
from canon.compiler.compile import load_catalog
from canon.compiler.errors import ConfigError
from canon.compiler.load import SETTINGS_FILE, find_definition_files, read_bytes

CACHE_FILE = Path(".canon") / "catalog.pickle"
FORMAT = 5  # 2: modules live under canon.; 3: metric facts, locations on the definitions; 4: segments;
# 5: roles, validity, cohorts, rollups, recommendations, exports, formats


@functools.lru_cache(maxsize=1)
def compiler_digest() -> str:
    """A hash of the compiler's own source: a catalog pickled by other code (a new field on a model,
    a changed pass) is never read back, without anyone remembering to bump FORMAT (~1 ms, once)."""
    import canon.compiler as compiler

    digest = hashlib.sha256()
    root = Path(compiler.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(project: Path) -> str:
    """A hash of every definition file. It never fails on one file: a file that cannot be read (a
    dangling link, no permission, over the size cap) enters the hash as its error, so fixing or
    removing it changes the key, and the reload that follows reports it."""
    import sqlglot

    digest = hashlib.sha256(f"canon-cache-{FORMAT}-{sqlglot.__version__}-{compiler_digest()}".encode())
    settings = project / SETTINGS_FILE
    files = find_definition_files(project) + ([("settings", settings)] if os.path.lexists(settings) else [])
    for _, path in files:
        shown = str(path.relative_to(project))
        digest.update(shown.encode() + b"\0")
        try:
            digest.update(read_bytes(path, shown) + b"\0")
        except ConfigError as error:
            digest.update(b"\1unreadable: " + str(error).encode() + b"\0")
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
