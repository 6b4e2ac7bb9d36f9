"""`canon init DIR --warehouse URL`: a starter project proposed from the warehouse's tables.

    files = propose(schema, warehouse="shop.duckdb")   # relative path -> YAML text (pure)
    written = write_files(Path("DIR"), files, force=False)

One semantic model per table:
- entities from declared keys (primary, foreign); without them, from names: `id`, `<model>_id` or
  `<table>_id` is the primary key, any other `<x>_id` a foreign key to entity `x`;
- time dimensions from DATE and TIMESTAMP columns (DATE ones `stored_as: date`: a time zone never
  moves a calendar day), the first one the model's `default_time`; a model without one takes the
  default time of the first model its foreign keys join that has one (lines: their receipt's time);
- categorical dimensions from text columns, boolean ones from booleans;
- measures: a row count, and a sum of every numeric column that is not a key.
A starter metrics file gives each model its count, each sum, and each sum per row as a ratio; canon.yml
names the warehouse. Every guess carries a `# REVIEW:` comment. Nothing is overwritten without `force`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

from canon.compiler.errors import ConfigError, did_you_mean

from .warehouse_schema import Schema, Table

REVIEW = "# REVIEW:"
MAX_NAME = 63


@dataclass
class ModelProposal:
    table: Table
    name: str
    lines: list[str] = field(default_factory=list)
    sums: list[str] = field(default_factory=list)  # measure names of the sums
    has_time: bool = False
    foreign: list[str] = field(default_factory=list)  # the models its foreign keys join, in column order
    default_time: str | None = None


def kind_of(data_type: str) -> str:
    """date | timestamp | timestamptz | number | boolean | text | other, from an information_schema type."""
    parsed = None
    for dialect in ("duckdb", "postgres"):
        try:
            parsed = exp.DataType.build(data_type, dialect=dialect).this
            break
        except Exception:  # noqa: BLE001 — sqlglot raises several types on unknown spellings
            continue
    T = exp.DataType.Type
    if parsed in (T.DATE, T.DATE32):
        return "date"
    if parsed in (T.TIMESTAMPTZ, T.TIMESTAMPLTZ):
        return "timestamptz"  # an instant: shifting it into a request's zone is right
    if parsed in exp.DataType.TEMPORAL_TYPES and parsed not in (T.TIME, T.TIMETZ):
        return "timestamp"
    if parsed == T.BOOLEAN:
        return "boolean"
    if parsed in exp.DataType.NUMERIC_TYPES and parsed != T.BIT:
        return "number"
    if parsed in exp.DataType.TEXT_TYPES or parsed in (T.ENUM, T.UUID):
        return "text"
    return "other"


def name_for(text: str) -> str:
    """A Canon name (lower case, `[a-z][a-z0-9_]*`) for a table or column name."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_") or "x"
    return (name if name[0].isalpha() else f"t_{name}")[:MAX_NAME]


def singular(name: str, columns=()) -> str:
    """A model's name from its table's: the table's own key column settles it (`skus` has `sku_id`),
    else English plural rules that leave `status` or `campus` alone."""
    keys = {c.lower() for c in columns}
    for candidate in (name[:-3] + "y", name[:-2], name[:-1]) if name.endswith("s") else ():
        if candidate and f"{candidate}_id" in keys:
            return candidate
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith(("ss", "us", "is")) and len(name) > 3:
        return name[:-1]
    return name


def _yaml(value: str) -> str:
    """A YAML flow scalar: plain when it is a simple name, else a JSON string (YAML reads JSON)."""
    return value if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .]*", value) and value.lower() not in (
        "yes", "no", "on", "off", "true", "false", "null", "y", "n") else json.dumps(value)


def _column_sql(column: str) -> str:
    """The column as SQL: quoted when it is not a plain lower-case identifier."""
    return column if re.fullmatch(r"[a-z_][a-z0-9_]*", column) else exp.to_identifier(column, quoted=True).sql()


def _item(fields: dict[str, str], comment: str | None = None) -> str:
    body = ", ".join(f"{k}: {_yaml(v)}" for k, v in fields.items())
    return f"      - {{{body}}}" + (f"  {REVIEW} {comment}" if comment else "")


def _with_expr(name: str, column: str, fields: dict) -> dict:
    return fields if name == column else {**fields, "expr": _column_sql(column)}


def _table_ref(table: Table, schema: Schema) -> str:
    """The shortest name that finds the table again (plain in the current schema, else qualified)."""
    return table.name if schema.find(table.name) is table else f"{table.schema}.{table.name}"


def propose(schema: Schema, warehouse: str, tables: list[Table] | None = None) -> dict[str, str]:
    """Relative path -> file text for a starter project over `tables` (default: all of them)."""
    tables = tables if tables is not None else schema.tables
    names: dict[str, str] = {}  # table name -> model name (unique)
    for table in tables:
        base = singular(name_for(table.name), list(table.columns))
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[table.name.lower()] = name
    files: dict[str, str] = {}
    proposals = []
    primaries = {names[t.name.lower()]: _primary(t, names[t.name.lower()]) for t in tables}
    owned = {name for name, (column, _) in primaries.items() if column}  # entities a model is keyed on
    for table in tables:
        name = names[table.name.lower()]
        proposals.append(_model(table, name, primaries[name], names, owned, schema))
    _borrow_times(proposals)
    for proposal in proposals:
        files[f"semantic_models/{proposal.name}.yml"] = "\n".join(proposal.lines) + "\n"
    files["metrics/starter.yml"] = _metrics(proposals)
    files["canon.yml"] = _config(warehouse)
    from .schema_doc import project_files  # the `$schema` line and the schemas editors read

    return project_files(files)


def _primary(table: Table, name: str) -> tuple[str | None, bool]:
    """The primary key column (declared, else guessed from its name) and whether it was guessed."""
    if len(table.primary_key) == 1:
        return table.primary_key[0], False
    lowered = {c.lower(): c for c in table.columns}
    for candidate in ("id", f"{name}_id", f"{name_for(table.name)}_id"):
        if candidate in lowered:
            return lowered[candidate], True
    return None, False


def _model(table: Table, name: str, primary_key: tuple[str | None, bool], models: dict[str, str], owned: set[str],
           schema: Schema) -> ModelProposal:
    """`owned`: the entities some proposed model has as primary (a foreign key must join one of them)."""
    proposal = ModelProposal(table, name)
    kinds = {column: kind_of(kind) for column, kind in table.columns.items()}
    entities: list[str] = []
    keys: set[str] = set()
    notes: dict[str, str] = {}  # key-like columns kept as dimensions, and why
    primary, guessed = primary_key
    if primary:
        entities.append(_item(_with_expr(name, primary, {"name": name, "type": "primary"}),
                              f"no declared primary key: {primary} guessed from its name; check it is unique"
                              if guessed else None))
        keys.add(primary)
    for column in table.columns:
        if column == primary:
            continue
        referenced = table.foreign_keys.get(column)
        declared = referenced is not None
        if declared:
            entity = models.get(referenced.lower()) or singular(name_for(referenced))
        elif column.lower().endswith("_id") and len(column) > 3:
            entity = name_for(column[:-3])
        else:
            continue
        if entity not in owned or entity == name:
            notes[column] = f"looks like a key to '{entity}', which no model here has as primary: kept as a dimension"
            continue
        entities.append(_item(_with_expr(entity, column, {"name": entity, "type": "foreign"}),
                              None if declared else f"foreign key guessed from the name {column}: joins model "
                                                    f"'{entity}'"))
        keys.add(column)
        proposal.foreign.append(entity)
    dimensions, measures, skipped, times = [], [], [], []
    if primary:  # the key itself, to group and filter by (spend per customer; a recommendation's item id)
        dim = name_for(primary)
        dimensions.append(_item(_with_expr(dim, primary, {"name": dim})))
    for column, kind in kinds.items():
        if column in keys:
            continue
        if column in notes:
            dim = name_for(column)
            dimensions.append(_item(_with_expr(dim, column, {"name": dim}), notes[column]))
            continue
        dim = name_for(column)
        if kind == "date":
            dimensions.append(_item(_with_expr(dim, column, {"name": dim, "type": "time", "stored_as": "date"})))
            times.append(dim)
        elif kind in ("timestamp", "timestamptz"):
            dimensions.append(_item(_with_expr(dim, column, {"name": dim, "type": "time"}),
                                    "read as UTC: a request's time zone shifts it (say `stored_as: date` if it "
                                    "holds calendar days)" if kind == "timestamp" else None))
            times.append(dim)
        elif kind == "boolean":
            dimensions.append(_item(_with_expr(dim, column, {"name": dim, "type": "boolean"})))
        elif kind == "text":
            dimensions.append(_item(_with_expr(dim, column, {"name": dim})))
        elif kind == "number":
            measures.append(_item(_with_expr(dim, column, {"name": dim, "agg": "sum"}),
                                  "summed; use avg, min or max for levels such as prices or balances"))
            proposal.sums.append(dim)
        else:
            skipped.append(f"{column} ({table.columns[column]})")
    count = f"{name}_count"[:MAX_NAME]
    measures.insert(0, _item({"name": count, "agg": "count"}))
    lines = [f"# Proposed by `canon init` from table {table.schema}.{table.name}. Lines marked REVIEW are guesses.",
             "semantic_model:",
             f"  name: {name}",
             f"  table: {_yaml(_table_ref(table, schema))}"]
    if skipped:
        lines.append(f"  # columns left out (types without a default role): {', '.join(skipped)}")
    for title, items in (("entities", entities), ("dimensions", dimensions), ("measures", measures)):
        if items:
            lines += [f"  {title}:", *(i[2:] for i in items)]
    if times:
        others = f"; other time dimensions: {', '.join(times[1:])}" if len(times) > 1 else ""
        lines.append(f"  default_time: {times[0]}" + (f"  {REVIEW} the time axis of this model's metrics{others}"
                                                      if others else ""))
        proposal.has_time = True
        proposal.default_time = times[0]
    proposal.lines = lines
    return proposal


def _borrow_times(proposals: list[ModelProposal]) -> None:
    """A model without a time column of its own (receipt lines) takes the default time of the first model
    its foreign keys join that has one (`default_time: receipt.bought_at`, as the demo's order_item has
    order.ordered_at): its metrics then have a time axis (date ranges, windows, the recommendation snapshot)."""
    own = {p.name: p.default_time for p in proposals if p.default_time}
    for p in proposals:
        joined = next((model for model in p.foreign if model in own), None)
        if p.default_time is None and joined:
            p.default_time = f"{joined}.{own[joined]}"
            p.lines.append(f"  default_time: {p.default_time}  {REVIEW} no time column here: the time of the "
                           f"joined {joined}; remove it if these rows do not happen then")


def _metrics(proposals: list[ModelProposal]) -> str:
    lines = ["# Proposed by `canon init`: a first metric per measure. Rename, describe and certify what you keep.",
             "metrics:"]
    for p in proposals:
        count = f"{p.name}_count"[:MAX_NAME]
        lines.append(f"  - {{name: {count}, type: simple, measure: {p.name}.{count}, "
                     f"label: {_yaml(p.name.replace('_', ' ').capitalize() + ' count')}}}")
        for column in p.sums:
            metric = f"{p.name}_{column}"
            if len(metric) > MAX_NAME:
                continue
            lines.append(f"  - {{name: {metric}, type: simple, measure: {p.name}.{column}}}  {REVIEW} a sum of {column}")
            ratio = f"{metric}_per_{p.name}"
            if len(ratio) <= MAX_NAME:
                lines.append(f"  - {{name: {ratio}, type: ratio, numerator: {metric}, denominator: {count}}}"
                             f"  {REVIEW} average {column} per {p.name}")
    return "\n".join(lines) + "\n"


def _config(warehouse: str) -> str:
    lines = ["# Canon project settings, written by `canon init`."]
    if "://" in warehouse and "@" in warehouse.split("://", 1)[1]:
        scheme, rest = warehouse.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        if ":" in credentials:  # never write a password into a file reviewed like code
            warehouse = f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
            lines.append(f"{REVIEW} the password is not written here: set PGPASSWORD, or the whole URL in $CANON_WAREHOUSE")
    lines.append(f"warehouse: {json.dumps(warehouse)}")
    return "\n".join(lines) + "\n"


def choose_tables(schema: Schema, wanted: list[str] | None) -> list[Table]:
    if not wanted:
        if not schema.tables:
            raise ConfigError("the warehouse has no tables to describe", hint="check the URL, or load data first")
        return schema.tables
    chosen, unknown = [], []
    for name in wanted:
        table = schema.find(name)
        (chosen.append(table) if table is not None else unknown.append(name))
    if unknown:
        raise ConfigError(f"--tables: {', '.join(repr(u) for u in unknown)} not in the warehouse",
                          hint=did_you_mean(unknown[0], schema.plain_names()))
    return chosen


def write_files(target: Path, files: dict[str, str], *, force: bool = False) -> list[Path]:
    existing = [path for path in files if (target / path).exists()]
    if existing and not force:
        raise ConfigError(f"{target}: {', '.join(existing)} already exist(s); nothing was written",
                          hint="pass --force to overwrite them, or choose another folder")
    written = []
    for path, text in files.items():
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    (target / "metrics").mkdir(exist_ok=True)
    return written


def config_warehouse(url: str, target: Path) -> str:
    """What canon.yml says: a DuckDB file relative to the project when it lies inside it."""
    if "://" in url or (":" in url.split("/", 1)[0] and not Path(url).exists()):  # a URL, spark-local:DIR
        return url
    path = Path(url).expanduser().resolve()
    try:
        return str(path.relative_to(target.resolve()))
    except ValueError:
        return str(path)
