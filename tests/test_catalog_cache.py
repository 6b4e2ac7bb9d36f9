"""The validated catalog's cache (server/catalog_cache.py) is keyed by the compiler's own code too: a
catalog pickled by other code (a model without a field the code now reads) is never read back."""

from __future__ import annotations

import pytest

from canon.server import catalog_cache
from tests.support.project import copy_project

pytestmark = pytest.mark.fast


def test_other_compiler_code_gives_another_key(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    key = catalog_cache.fingerprint(project)
    assert catalog_cache.fingerprint(project) == key
    monkeypatch.setattr(catalog_cache, "compiler_digest", lambda: "other code")
    assert catalog_cache.fingerprint(project) != key

