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


def print_recommend(body: dict, snapshot) -> None:
    """`canon recommend` as a table, titled with the customer's shown dimensions (the block's customers.show)."""
    shown = [str(v) for v in snapshot.customers[body["customer_id"]].shown.values()]
    print_items(f"Customer {body['customer_id']} ({', '.join(shown)}): {body['strategy']}",
                [("product_id", "id"), ("product_name", "product"), ("cross_sell_score", "score"),
                 ("cross_sell_lift", "lift"), ("reason", "why")], body["items"])


def print_upsell(body: dict, snapshot) -> None:
    """`canon upsell` as a table: one row per candidate, with its group and the best bought there."""
    layout = snapshot.layout
    price = layout.price_key
    items = []
    for group in body["categories"]:
        best = group.get(f"highest_{price}_bought") if price else None
        bought = " ".join(str(x) for x in (group["highest_tier_bought"], f"({best:.2f})" if best is not None else None)
                          if x is not None)
        items += [{**i, "_group": group[layout.group_key], "_bought": bought} for i in group["items"]]
    columns = [("_group", layout.group_key), ("_bought", "highest bought"), ("product_name", "product")]
    columns += [(k, k) for k in ("tier",) if layout.tier_order]
    columns += [(price, "price"), ("expected_uplift", "uplift")] if price else []
    print_items(f"Upsell for customer {body['customer_id']}", columns + [("product_purchase_frequency", "orders")],
                items)
