"""What the `canon cross-sell | recommend | upsell | audience | recommendations` commands share:
opening a snapshot store on the project's warehouse, the audience salt, and output formats."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
from pathlib import Path

from .snapshot import SnapshotStore

SALT_FILE = Path(".canon") / "audience_salt"


@contextlib.contextmanager
def open_store(project, warehouse: str | None, *, days: int | None = None):
    """A SnapshotStore over the project's catalog and warehouse. `current()` reuses the snapshot
    persisted by the server or by `canon recommendations refresh` when it was built from the same
    catalog and the same warehouse file; otherwise it builds (and persists) a new one."""
    from ..runtime import Runtime
    from .routes import settings

    with Runtime.open(project, warehouse, cached_catalog=True) as runtime:
        yield SnapshotStore(runtime.project, lambda: runtime.catalog, lambda: runtime,
                            days=settings(runtime.project)["window_days"] if days is None else days)


def audience_salt(project) -> str:
    """The project's salt for email-safe ids: $CANON_AUDIENCE_SALT, else `recommendations.audience_salt`
    in canon.yml, else a random one created once in <project>/.canon/audience_salt (keep it: changing
    it changes every id)."""
    from ..project import find_project, load_config

    if os.environ.get("CANON_AUDIENCE_SALT"):
        return os.environ["CANON_AUDIENCE_SALT"]
    root = find_project(project)
    configured = (load_config(root).get("recommendations") or {}).get("audience_salt")
    if configured:
        return str(configured)
    path = root / SALT_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(16)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(salt + "\n")
        return salt
    except FileExistsError:  # another process made it first
        return path.read_text().strip()


def audience_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "email_id", "recommended_product_ids", "recommended_products", "reason"])
    for r in rows:
        writer.writerow([r["customer_id"], r["email_id"], "|".join(map(str, r["recommended_product_ids"])),
                         "|".join(r["recommended_products"]), r["reason"]])
    return out.getvalue()


def to_json(body) -> str:
    return json.dumps(body, ensure_ascii=False, indent=2)


def print_items(title: str, columns: list[tuple[str, str]], items: list[dict], footer: str | None = None) -> None:
    """A rich table of `items` with (key, header) columns."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    for _, header in columns:
        table.add_column(header)
    for item in items:
        table.add_row(*(_cell(item.get(key)) for key, _ in columns))
    console = Console()
    console.print(table)
    if footer:
        console.print(footer, style="dim")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.2f}"
    if isinstance(value, dict):
        return str(value.get("product_name") or value)
    return str(value)
