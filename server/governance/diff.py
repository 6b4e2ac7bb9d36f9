"""`canon diff`: the catalog at a git ref against the working tree, every change classified.

- **breaking**: a metric, dimension, measure, model, view or saved query removed or renamed; a
  metric's type or a dimension's type changed; a column dropped from a view.
- **value_changing**: an expression, filter, aggregation, window, join key or time dimension
  changed, so the numbers move — directly, or through something the object is built from (the
  compiled SQL of its sample query differs).
- **metadata_only**: label, description, owner, tier, tags, deprecation, data tests.
- **additive**: something new; nothing existing changes.

For each value-changing metric: the compiled SQL before and after (unified diff), the numbers of a
sample query before and after on the warehouse, its dependents (lineage upward), and whether it
was certified and so needs re-certification. Exit code 1 when anything is breaking.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from canon.compiler.catalog import Catalog
from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.errors import CanonError, ConfigError
from canon.compiler.lineage import LineageGraph, build_lineage
from canon.compiler.request import QueryRequest

SEVERITIES = ("breaking", "value_changing", "metadata_only", "additive")
META_FIELDS = frozenset({"label", "description", "owner", "tier", "tags", "replaced_by", "sunset"})
MODEL_META = META_FIELDS | {"tests", "freshness"}
FORMATS = ("text", "json", "markdown")
SHOWN_ROWS = 12  # rows of sample numbers in text and markdown


@dataclass
class Change:
    kind: str  # metric | model | dimension | measure | entity | view | saved_query
    name: str
    change: str  # removed | added | renamed | changed
    severity: str
    details: list[str] = field(default_factory=list)
    cause: str | None = None  # for an indirect change: what moved it
    dependents: list[str] = field(default_factory=list)
    recertify: bool = False
    sample: dict | None = None  # request, sql before/after, sql diff, numbers


@dataclass
class DiffReport:
    base: str
    head: str
    changes: list[Change]
    notes: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return any(c.severity == "breaking" for c in self.changes)

    @property
    def exit_code(self) -> int:
        return 1 if self.breaking else 0

    def by_severity(self, severity: str) -> list[Change]:
        return [c for c in self.changes if c.severity == severity]

    def to_dict(self) -> dict:
        return {"base": self.base, "head": self.head, "breaking": self.breaking,
                "summary": {s: len(self.by_severity(s)) for s in SEVERITIES},
                "changes": [asdict(c) for c in self.changes], "notes": self.notes}


# --- the catalog at a git ref ------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ConfigError("git is not installed", hint="canon diff reads the base catalog from git") from None
    if done.returncode != 0:
        raise ConfigError(f"git {' '.join(args[:2])} failed: {done.stderr.strip().splitlines()[0] if done.stderr.strip() else done.returncode}",
                          hint="run inside a git repository and name an existing ref (branch, tag or commit)")
    return done.stdout


def export_ref(project: Path, ref: str, target: Path) -> Path:
    """Write the definition files of `project` as of `ref` into `target`; returns the project folder there."""
    project = project.resolve()
    top = Path(_git(project, "rev-parse", "--show-toplevel").strip()).resolve()
    _git(project, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    prefix = project.relative_to(top).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    listed = _git(top, "ls-tree", "-r", "--name-only", ref, "--",
                  f"{prefix}semantic_models", f"{prefix}metrics", f"{prefix}canon.yml")
    out = target / "project"
    for folder in ("semantic_models", "metrics"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for path in filter(None, listed.splitlines()):
        blob = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=top, capture_output=True, check=True).stdout
        dest = out / path[len(prefix):]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(blob)
    return out


def catalog_at_ref(project: Path, ref: str) -> Catalog:
    with tempfile.TemporaryDirectory(prefix="canon-diff-") as tmp:
        folder = export_ref(project, ref, Path(tmp))
        try:
            return load_catalog(folder)
        except CanonError as error:
            raise ConfigError(f"the catalog at {ref} does not validate:\n{error}",
                              hint="compare against a ref whose definitions are valid") from None


# --- classification ------------------------------------------------------------------------------


def _dump(obj, exclude=META_FIELDS) -> dict:
    return obj.model_dump(mode="json", exclude=set(exclude))


def _field_changes(before: dict, after: dict) -> list[str]:
    out = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            out.append(f"{key}: {_short(before.get(key))} → {_short(after.get(key))}")
    return out


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _meta_changes(before, after, fields=META_FIELDS) -> list[str]:
    a, b = _dump(before, ()), _dump(after, ())
    return _field_changes({k: a[k] for k in fields if k in a}, {k: b[k] for k in fields if k in b})


def _renames(removed: dict, added: dict, same) -> dict[str, str]:
    """old name -> new name, where a removed and an added object are identical but for the name."""
    found, taken = {}, set()
    for old, old_obj in removed.items():
        for new, new_obj in added.items():
            if new not in taken and same(old_obj, new_obj):
                found[old] = new
                taken.add(new)
                break
    return found


def _effective(obj, exclude) -> dict:
    """A member's definition with its expression spelled out (`expr` defaults to the name)."""
    data = _dump(obj, exclude | {"name"})
    if "expr" in data and data["expr"] is None and not (getattr(obj, "agg", None) == "count"):
        data["expr"] = obj.name
    return data


def _members(base: dict, head: dict, kind: str, owner: str, severity_of, changes: list[Change], exclude,
             removed_severity: str = "breaking"):
    """Dimensions, measures or entities of one model: removed, renamed, added, changed."""
    removed = {n: base[n] for n in base if n not in head}
    added = {n: head[n] for n in head if n not in base}
    renames = _renames(removed, added, lambda a, b: _effective(a, exclude) == _effective(b, exclude))
    consequence = (f"queries naming {owner}.{{}} fail" if removed_severity == "breaking"
                   else "join paths through it change")
    for old, obj in removed.items():
        if old in renames:
            changes.append(Change(kind, f"{owner}.{old}", "renamed", removed_severity,
                                  [f"renamed to {owner}.{renames[old]}; {consequence.format(old)}"]))
        else:
            changes.append(Change(kind, f"{owner}.{old}", "removed", removed_severity,
                                  [f"removed; {consequence.format(old)}"]))
    for new in added:
        if new not in renames.values():
            changes.append(Change(kind, f"{owner}.{new}", "added", "additive"))
    for name in set(base) & set(head):
        a, b = base[name], head[name]
        structural = _field_changes(_dump(a, exclude), _dump(b, exclude))
        if structural:
            changes.append(Change(kind, f"{owner}.{name}", "changed", severity_of(structural), structural))
        elif _dump(a, ()) != _dump(b, ()):
            changes.append(Change(kind, f"{owner}.{name}", "changed", "metadata_only",
                                  _field_changes(_dump(a, ()), _dump(b, ()))))


def _compare_models(base: Catalog, head: Catalog, changes: list[Change]):
    for name in sorted(set(base.models) | set(head.models)):
        if name not in head.models:
            changes.append(Change("model", name, "removed", "breaking", ["semantic model removed"]))
            continue
        if name not in base.models:
            changes.append(Change("model", name, "added", "additive"))
            continue
        a, b = base.models[name].definition, head.models[name].definition
        member_fields = {"dimensions", "measures", "entities"}
        structural = _field_changes(_dump(a, MODEL_META | member_fields), _dump(b, MODEL_META | member_fields))
        if structural:
            changes.append(Change("model", name, "changed", "value_changing", structural))
        meta = _meta_changes(a, b, MODEL_META)
        if meta:
            changes.append(Change("model", name, "changed", "metadata_only", meta))
        dim_meta = {"label", "description"}

        def dim_severity(details):
            return "breaking" if any(d.startswith("type:") for d in details) else "value_changing"

        _members({d.name: d for d in a.dimensions}, {d.name: d for d in b.dimensions}, "dimension", name,
                 dim_severity, changes, dim_meta)
        _members({x.name: x for x in a.measures}, {x.name: x for x in b.measures}, "measure", name,
                 lambda d: "value_changing", changes, dim_meta)
        _members({e.name: e for e in a.entities}, {e.name: e for e in b.entities}, "entity", name,
                 lambda d: "value_changing", changes, frozenset(), removed_severity="value_changing")


def _compare_metrics(base: Catalog, head: Catalog, changes: list[Change]) -> set[str]:
    """Metric-level changes; returns the metrics changed directly in a value-changing way."""
    removed = {n: base.metrics[n] for n in base.metrics if n not in head.metrics}
    added = {n: head.metrics[n] for n in head.metrics if n not in base.metrics}
    renames = _renames(removed, added, lambda a, b: _dump(a, META_FIELDS | {"name"}) == _dump(b, META_FIELDS | {"name"}))
    direct = set()
    for old in removed:
        if old in renames:
            changes.append(Change("metric", old, "renamed", "breaking",
                                  [f"renamed to {renames[old]}; dashboards and queries naming {old} fail"]))
        else:
            changes.append(Change("metric", old, "removed", "breaking",
                                  ["metric removed; dashboards and queries naming it fail"]))
    for new in added:
        if new not in renames.values():
            changes.append(Change("metric", new, "added", "additive", [f"new {added[new].type} metric"]))
    for name in sorted(set(base.metrics) & set(head.metrics)):
        a, b = base.metrics[name], head.metrics[name]
        if a.type != b.type:
            changes.append(Change("metric", name, "changed", "breaking", [f"type: {a.type} → {b.type}"]))
            continue
        structural = _field_changes(_dump(a), _dump(b))
        if structural:
            direct.add(name)
            changes.append(Change("metric", name, "changed", "value_changing", structural))
        meta = _meta_changes(a, b)
        if meta:
            changes.append(Change("metric", name, "changed", "metadata_only", meta))
    return direct


def _compare_views(base: Catalog, head: Catalog, changes: list[Change]):
    for kind, attr in (("view", "views"), ("saved_query", "saved_queries")):
        old, new = getattr(base, attr), getattr(head, attr)
        for name in sorted(set(old) | set(new)):
            if name not in new:
                changes.append(Change(kind, name, "removed", "breaking", [f"{kind.replace('_', ' ')} removed"]))
                continue
            if name not in old:
                changes.append(Change(kind, name, "added", "additive"))
                continue
            a, b = old[name], new[name]
            lost = [m for m in a.metrics if m not in b.metrics]
            dims = lambda v: [d if isinstance(d, str) else (d.name or d.ref) for d in v.dimensions]  # noqa: E731
            lost += [d for d in dims(a) if d not in dims(b)]
            structural = _field_changes(_dump(a), _dump(b))
            if lost:
                changes.append(Change(kind, name, "changed", "breaking",
                                      [f"columns removed: {', '.join(lost)}"] + structural))
            elif structural:
                severity = "additive" if kind == "view" else "value_changing"
                changes.append(Change(kind, name, "changed", severity, structural))
            meta = _meta_changes(a, b)
            if meta:
                changes.append(Change(kind, name, "changed", "metadata_only", meta))


# --- samples: SQL and numbers before and after ----------------------------------------------------


def sample_request(catalog: Catalog, name: str, by: tuple[str, ...] = ()) -> QueryRequest:
    """The query whose SQL and numbers are compared: by metric_time.year, else .month, else the total
    (affinity: by category pair); `by` overrides."""
    metric = catalog.metrics[name]
    if by:
        return QueryRequest(metrics=(name,), dimensions=by, order=by)
    if metric.type == "affinity":
        dims = ("antecedent.category", "consequent.category")
        return QueryRequest(metrics=(name,), dimensions=dims, order=dims)
    if metric.type == "cohort":  # one row per cohort and period since its start
        dims = (f"metric_time.{metric.grain}", "cohort.periods_since")
        return QueryRequest(metrics=(name,), dimensions=dims, order=dims)
    candidates = [QueryRequest(metrics=(name,), dimensions=(d,), order=(d,))
                  for d in ("metric_time.year", "metric_time.month")]
    for request in candidates:
        if _compiled(catalog, request, "duckdb")[0] is not None:
            return request
    return QueryRequest(metrics=(name,))


def _compiled(catalog: Catalog, request: QueryRequest, dialect: str) -> tuple[str | None, str | None]:
    """(SQL, None), or (None, why not). An internal error is reported, not hidden: it becomes a note."""
    try:
        return compile_request(catalog, request, dialect, pretty=True).sql, None
    except CanonError as error:
        return None, error.message
    except Exception as error:  # a compiler bug must not hide the rest of the review
        return None, f"internal error {type(error).__name__}: {error}"


def sql_diff(before: str, after: str, base: str, head: str) -> str:
    return "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(),
                                          f"before ({base})", f"after ({head})", lineterm=""))


def _numbers(warehouse, sql: str | None) -> tuple[list[str], list[list]] | None:
    if warehouse is None or sql is None:
        return None
    from canon.server.results import json_value

    columns, rows = warehouse.execute(sql)
    return columns, [[json_value(v) for v in row] for row in rows]


def _compare_numbers(before, after, n_keys: int) -> list[dict]:
    """Rows keyed on the dimensions: value before, after and the change."""
    def keyed(result):
        if result is None:
            return {}
        return {tuple(r[:n_keys]): r[n_keys] for r in result[1]}

    a, b = keyed(before), keyed(after)
    rows = []
    for key in list(dict.fromkeys([*a, *b])):
        x, y = a.get(key), b.get(key)
        delta = (y - x) if isinstance(x, (int, float)) and isinstance(y, (int, float)) else None
        pct = (delta / x * 100) if delta is not None and x else None
        rows.append({"key": list(key), "before": x, "after": y, "delta": delta,
                     "delta_pct": round(pct, 3) if pct is not None else None})
    return rows


# --- the report ------------------------------------------------------------------------------------


def diff_catalogs(base: Catalog, head: Catalog, *, warehouse=None, base_name: str = "base",
                  head_name: str = "working tree", sample_by: tuple[str, ...] = (),
                  dialect: str | None = None) -> DiffReport:
    changes: list[Change] = []
    _compare_models(base, head, changes)
    direct = _compare_metrics(base, head, changes)
    _compare_views(base, head, changes)
    dialect = dialect or (warehouse.dialect if warehouse is not None else "duckdb")
    head_graph, base_graph = build_lineage(head), build_lineage(base)
    notes = []

    # every metric kept whose compiled SQL moved is value-changing (directly, or through its inputs)
    moved: dict[str, tuple[QueryRequest, str | None, str | None]] = {}
    for name in sorted(set(base.metrics) & set(head.metrics)):
        if base.metrics[name].type != head.metrics[name].type:
            continue
        request = sample_request(head, name, sample_by)
        (before, why_before), (after, why_after) = _compiled(base, request, dialect), _compiled(head, request, dialect)
        for why in {w for w in (why_before, why_after) if w and w.startswith("internal error")}:
            notes.append(f"metric {name}: cannot compile its sample query ({why})")
        if before != after or name in direct:
            moved[name] = (request, before, after)
    by_metric = {c.name: c for c in changes if c.kind == "metric" and c.severity == "value_changing"}
    for name in moved:
        if name not in by_metric:
            cause = _cause(base_graph, head_graph, name, set(moved) | _changed_nodes(changes))
            change = Change("metric", name, "changed", "value_changing",
                            [f"compiled SQL changed through {cause}" if cause else "compiled SQL changed"],
                            cause=cause)
            changes.append(change)
            by_metric[name] = change

    for change in changes:
        graph = base_graph if change.change in ("removed", "renamed") else head_graph
        node = _node_id(change)
        if node in graph.nodes:
            change.dependents = [_label(graph, n) for n in graph.dependents(node)]
        old = _governed_before(base, change)
        if change.severity in ("value_changing", "breaking") and old is not None and old.tier == "certified":
            change.recertify = True
        if change.kind == "metric" and change.name in moved and change.severity == "value_changing":
            request, before, after = moved[change.name]
            sample = {"request": {"metrics": list(request.metrics), "dimensions": list(request.dimensions)},
                      "sql_before": before, "sql_after": after,
                      "sql_diff": sql_diff(before or "", after or "", base_name, head_name)}
            try:
                nb, na = _numbers(warehouse, before), _numbers(warehouse, after)
                if nb is not None or na is not None:
                    sample["numbers"] = _compare_numbers(nb, na, len(request.dimensions))
                    sample["columns"] = list(request.dimensions) + [change.name]
            except CanonError as error:
                sample["numbers_error"] = error.message
            change.sample = sample
    if warehouse is None:
        notes.append("no warehouse: numbers before/after were not computed")
    order = {s: i for i, s in enumerate(SEVERITIES)}
    kinds = {k: i for i, k in enumerate(("metric", "view", "saved_query", "model", "dimension", "measure", "entity"))}
    changes.sort(key=lambda c: (order[c.severity], kinds.get(c.kind, 9), c.name))
    return DiffReport(base_name, head_name, changes, notes)


def _changed_nodes(changes: list[Change]) -> set[str]:
    return {_node_id(c) for c in changes if c.severity in ("value_changing", "breaking")}


def _cause(base_graph: LineageGraph, head_graph: LineageGraph, name: str, changed: set[str]) -> str | None:
    """The nearest changed thing below a metric, e.g. `metric revenue` or `measure order_item.line_revenue`."""
    node = f"metric:{name}"
    for dep in head_graph.closure(node, "down"):
        if dep in changed or dep.split(":", 1)[1] in changed:
            return _label(head_graph, dep)
    return None


def _node_id(change: Change) -> str:
    return {"metric": "metric", "model": "model", "dimension": "dimension", "measure": "measure",
            "view": "view", "saved_query": "saved_query", "entity": "model"}[change.kind] + ":" + (
        change.name.split(".")[0] if change.kind == "entity" else change.name)


def _label(graph: LineageGraph, node_id: str) -> str:
    node = graph.nodes[node_id]
    return f"{node.kind.replace('_', ' ')} {node.name}"


def _governed_before(base: Catalog, change: Change):
    if change.kind == "metric":
        return base.metrics.get(change.name)
    if change.kind == "model":
        model = base.models.get(change.name)
        return model.definition if model else None
    if change.kind == "view":
        return base.views.get(change.name)
    if change.kind == "saved_query":
        return base.saved_queries.get(change.name)
    return None


def diff_project(project: Path, base_ref: str = "HEAD", *, warehouse=None, sample_by=(), dialect=None) -> DiffReport:
    base = catalog_at_ref(project, base_ref)
    head = load_catalog(project)
    return diff_catalogs(base, head, warehouse=warehouse, base_name=base_ref, head_name="working tree",
                         sample_by=tuple(sample_by), dialect=dialect)


# --- rendering ---------------------------------------------------------------------------------------

_TITLES = {"breaking": "Breaking", "value_changing": "Value-changing", "metadata_only": "Metadata-only",
           "additive": "Additions"}


def _fmt(value) -> str:
    if value is None:
        return "∅"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_text(report: DiffReport) -> str:
    lines = [f"canon diff: {report.base} → {report.head}"]
    if not report.changes:
        lines.append("no changes to the catalog")
    for severity in SEVERITIES:
        group = report.by_severity(severity)
        if not group:
            continue
        lines.append("")
        lines.append(f"{_TITLES[severity].upper()} ({len(group)})")
        for c in group:
            flag = "  [needs re-certification]" if c.recertify else ""
            lines.append(f"  {c.change} {c.kind.replace('_', ' ')} {c.name}{flag}")
            for d in c.details:
                lines.append(f"      {d}")
            if c.dependents:
                lines.append(f"      dependents: {', '.join(c.dependents)}")
            if c.sample:
                lines += ["      " + x for x in _sample_text(c)]
    for note in report.notes:
        lines.append(f"note: {note}")
    lines.append("")
    lines.append("result: " + ("BREAKING changes" if report.breaking else "no breaking changes"))
    return "\n".join(lines)


def _sample_text(c: Change) -> list[str]:
    s = c.sample
    dims = ", ".join(s["request"]["dimensions"]) or "(total)"
    out = [f"sample query: {c.name} by {dims}"]
    if s.get("sql_diff"):
        out.append("SQL diff:")
        out += ["  " + x for x in s["sql_diff"].splitlines()]
    if s.get("numbers") is not None:
        out.append("numbers before → after:")
        for row in s["numbers"][:SHOWN_ROWS]:
            key = ", ".join(_fmt(k) for k in row["key"]) or "total"
            pct = f" ({row['delta_pct']:+.2f}%)" if row["delta_pct"] is not None else ""
            out.append(f"  {key}: {_fmt(row['before'])} → {_fmt(row['after'])}{pct}")
    if s.get("numbers") and len(s["numbers"]) > SHOWN_ROWS:
        out.append(f"  … {len(s['numbers']) - SHOWN_ROWS} more rows (--format json has them all)")
    if s.get("numbers_error"):
        out.append(f"numbers: {s['numbers_error']}")
    return out


def render_markdown(report: DiffReport) -> str:
    counts = ", ".join(f"{len(report.by_severity(s))} {_TITLES[s].lower()}" for s in SEVERITIES)
    status = "❌ **Breaking changes**" if report.breaking else "✅ No breaking changes"
    lines = [f"## Canon catalog diff: `{report.base}` → {report.head}", "", f"{status} — {counts}", ""]
    recert = [c for c in report.changes if c.recertify]
    if recert:
        lines.append("**Needs re-certification:** " + ", ".join(f"`{c.name}`" for c in recert))
        lines.append("")
    for severity in SEVERITIES:
        group = report.by_severity(severity)
        if not group:
            continue
        lines += [f"### {_TITLES[severity]} ({len(group)})", "", "| change | object | details | dependents |",
                  "|---|---|---|---|"]
        for c in group:
            details = "<br>".join(_md_cell(d) for d in c.details) + (" 🔁 re-certify" if c.recertify else "")
            lines.append(f"| {c.change} | {c.kind.replace('_', ' ')} `{c.name}` | {details} | "
                         f"{', '.join(_md_cell(d) for d in c.dependents)} |")
        lines.append("")
        for c in group:
            if not c.sample:
                continue
            dims = ", ".join(c.sample["request"]["dimensions"]) or "total"
            lines += [f"<details><summary><code>{c.name}</code>: SQL and numbers (by {dims})</summary>", ""]
            if c.sample.get("sql_diff"):
                lines += ["```diff", c.sample["sql_diff"], "```", ""]
            if c.sample.get("numbers") is not None:
                lines += [f"| {dims} | before | after | Δ | Δ % |", "|---|--:|--:|--:|--:|"]
                for row in c.sample["numbers"][:SHOWN_ROWS]:
                    key = ", ".join(_fmt(k) for k in row["key"]) or "total"
                    pct = f"{row['delta_pct']:+.2f}%" if row["delta_pct"] is not None else ""
                    lines.append(f"| {key} | {_fmt(row['before'])} | {_fmt(row['after'])} | "
                                 f"{_fmt(row['delta'])} | {pct} |")
                if len(c.sample["numbers"]) > SHOWN_ROWS:
                    lines.append(f"| … {len(c.sample['numbers']) - SHOWN_ROWS} more rows | | | | |")
                lines.append("")
            lines += ["</details>", ""]
    for note in report.notes:
        lines.append(f"_{note}_")
    return "\n".join(lines).rstrip() + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(report: DiffReport, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str)
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)
