"""Importers: other semantic layers' definitions turned into Canon YAML (front ends, like the APIs).

    result = import_cube(Path("model"))      # or import_dbt(Path("models"))
    written = write_result(Path("out"), result, force=False)

Each importer returns the Canon documents it could build and a note for everything it could not
map exactly; `write_result` writes both (the notes as IMPORT_REPORT.md). The compiler never sees
the foreign formats.
"""

from .common import ImportResult, Note, write_result

__all__ = ["ImportResult", "Note", "write_result", "import_cube", "import_dbt"]


def import_cube(directory):
    from .cube import import_cube as run

    return run(directory)


def import_dbt(directory):
    from .dbt import import_dbt as run

    return run(directory)
