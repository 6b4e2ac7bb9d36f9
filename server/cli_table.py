"""`canon query`'s table for people: drawn in one pass of plain string work, ids printed as they are.

rich's Table measures and wraps every cell (milliseconds a row here), so a large answer never finished
drawing: this module pads the cells itself (microseconds a row), in rich's heavy-head box style, and
draws at most TABLE_ROWS rows, then says how many there are and that --format csv or json print every
row. Thousands separators are for metric values only: a dimension column (its name is a reference with
a dot, `product.product_id`, `metric_time.dow`; metric names have none) prints numbers as they are, so
an id reads 24852, not 24,852.
"""

from __future__ import annotations

import click

TABLE_ROWS = 1000


def is_dimension(name: str) -> bool:
    return "." in name


def print_table(result, limit: int = TABLE_ROWS) -> None:
    from canon.server import results

    names = [c["name"] for c in result.columns]
    shape = [(c["type"], is_dimension(c["name"]), c["type"] == "number") for c in result.columns]
    shown = result.rows[:limit]
    cells = [[_cell(v, kind, dim, results.format_cell) for v, (kind, dim, _) in zip(row, shape)] for row in shown]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = [_rule("┏", "━", "┳", "┓", widths),
             "┃" + "┃".join(f" {n.ljust(w)} " for n, w in zip(names, widths)) + "┃",
             _rule("┡", "━", "╇", "┩", widths)]
    right = [number for _, _, number in shape]
    lines += ["│" + "│".join(f" {c.rjust(w) if r else c.ljust(w)} " for c, w, r in zip(row, widths, right)) + "│"
              for row in cells]
    lines.append(_rule("└", "─", "┴", "┘", widths))
    click.echo("\n".join(lines))
    total = len(result.rows)
    if total > limit:
        click.secho(f"showing the first {limit:,} of {total:,} rows; use --format csv or --format json for all of them",
                    fg="yellow")
    partial = getattr(result, "partial_periods", None)
    for column, periods in (partial or {}).items():
        click.secho(f"partial: {column} {', '.join(periods)} (only some of the period's days are in the range "
                    "or over)", fg="yellow")
    click.secho(f"{total} row(s) in {result.elapsed_ms:.1f} ms", dim=True)


def _rule(left: str, line: str, cross: str, right: str, widths: list[int]) -> str:
    return left + cross.join(line * (w + 2) for w in widths) + right


def _cell(value, kind: str, dimension: bool, format_cell) -> str:
    if dimension and value is not None and not isinstance(value, bool) and isinstance(value, (int, float)):
        return str(value)
    return format_cell(value, kind)


def echo_partial(result) -> None:
    """For csv/json on a terminal: the partial-period note on stderr (json also carries it in the body)."""
    for column, periods in (getattr(result, "partial_periods", None) or {}).items():
        click.echo(f"note: partial periods of {column}: {', '.join(periods)}", err=True)
