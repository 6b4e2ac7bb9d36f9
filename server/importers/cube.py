"""`canon import cube DIR`: a Cube data model (YAML; JavaScript through cube_js.py) -> Canon.

Mapping:
- a cube is a semantic model (`sql_table` -> table, `sql` -> sql); its `primary_key` dimension is the
  model's primary entity, named after the cube;
- a join `{CUBE}.x = {other}.id` (any relationship) becomes a foreign entity on the side whose column
  is not its own primary key, named after the other cube, so Canon's entity graph joins them;
- dimensions keep their names (camelCase to snake_case), types string/number/time/boolean ->
  categorical/number/time/boolean; `{CUBE}.col`, `{CUBE.member}` and `{member}` are resolved to columns;
- a measure becomes a measure plus a metric `<cube>_<measure>`; count, count_distinct(_approx), sum, avg,
  min, max keep their meaning; `filters` become a CASE WHEN inside the measure; a `number` measure over
  other measures (`{a} / {b}`) is a derived metric;
- segments are segments (their SQL rewritten over the cube's dimensions); views are views.
Everything else (pre-aggregations, access policies, hierarchies, multi-stage and rolling measures,
references to other cubes' columns inside a dimension) is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlglot import exp, parse_one

from canon.compiler.errors import ConfigError

from .common import ImportResult, Unmapped, canon_name, compact, read_documents, source_files, where

DIMENSION_TYPES = {"string": "categorical", "number": "number", "time": "time", "boolean": "boolean"}
AGGS = {"count": "count", "count_distinct": "count_distinct", "countdistinct": "count_distinct",
        "count_distinct_approx": "count_distinct", "countdistinctapprox": "count_distinct",
        "sum": "sum", "avg": "avg", "min": "min", "max": "max"}
IGNORED = {"pre_aggregations": "pre-aggregations (Canon's rollups are configured apart)",
           "access_policy": "access policies (Canon's `access:` in canon.yml)", "accessPolicy": "access policies",
           "hierarchies": "hierarchies", "refresh_key": "refresh keys", "data_source": "data sources",
           "extends": "cube inheritance (extends)", "folders": "folders"}
# Cube's template references: {CUBE}, {CUBE.member}, {member}, {other}, {other.member}; `${...}` in JS
_REF = re.compile(r"\$?\{\s*([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?\s*\}")


def import_cube(directory) -> ImportResult:
    root = Path(directory)
    result = ImportResult("cube")
    cubes, views = [], []
    for path in source_files(root, (".yml", ".yaml", ".js")):
        try:
            documents = _js_documents(path) if path.suffix == ".js" else read_documents(path)
        except ConfigError as error:  # e.g. Jinja-templated YAML: one file, not the whole import
            result.note(where(root, path, None), "file", f"{error.message} (Jinja-templated models are not supported)")
            continue
        for document in documents:
            if isinstance(document, dict):
                for problem in document.get("_problems", ()):  # JS cubes that are not plain literals
                    result.note(problem.split(": ", 1)[0], "cube", problem.split(": ", 1)[1])
                cubes += [(path, c) for c in document.get("cubes") or () if isinstance(c, dict)]
                views += [(path, v) for v in document.get("views") or () if isinstance(v, dict)]
    model = _Model(root, result, {c["name"]: (path, c) for path, c in cubes if c.get("name")})
    for path, cube in cubes:
        model.cube(path, cube)
    for path, cube in cubes:
        for join in _items(cube.get("joins")):
            try:
                model.join(cube, join)
            except Unmapped as reason:
                result.note(where(root, path, join), f"join {cube['name']} -> {join.get('name')}", str(reason))
    for path, view in views:
        model.view(path, view)
    return result


def _js_documents(path: Path) -> list:
    from .cube_js import read_js_model

    return read_js_model(path)


def _items(value) -> list[dict]:
    """Cube YAML lists members; Cube JS maps name -> member. Both become [{name, ...}]."""
    if isinstance(value, dict):
        return [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in value.items()]
    return [v for v in value or () if isinstance(v, dict)]


def _key(member: dict, snake: str, camel: str):
    return member.get(snake, member.get(camel))


class _Model:
    def __init__(self, root: Path, result: ImportResult, cubes: dict):
        self.root, self.result, self.cubes = root, result, cubes
        self.dims: dict[str, dict[str, dict]] = {}  # cube -> member name -> dimension member
        self.measures: dict[str, dict[str, dict]] = {}
        self.primary: dict[str, str] = {}  # cube -> primary key column (plain)

    # --- cubes ---------------------------------------------------------------------------------

    def cube(self, path: Path, cube: dict) -> None:
        name, at = cube["name"], where(self.root, path, cube)
        model = canon_name(name)
        if model != name:
            self.result.note(at, f"cube {name}", f"renamed to '{model}' (Canon names are lower snake case)", dropped=False)
        self.dims[name] = {d["name"]: d for d in _items(cube.get("dimensions")) if d.get("name")}
        self.measures[name] = {m["name"]: m for m in _items(cube.get("measures")) if m.get("name")}
        table, sql = _key(cube, "sql_table", "sqlTable"), cube.get("sql")
        document: dict = {"name": model, "label": cube.get("title"), "description": _text(cube.get("description"))}
        if table and not _REF.search(str(table)):
            table = str(table).strip()
            if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*){0,2}", table):
                document["table"] = table
            else:  # quoted or otherwise spelled: read by sqlglot, written as a query over it
                document["sql"] = exp.select(exp.Star()).from_(exp.to_table(table)).sql()
        elif sql and not _REF.search(str(sql)):
            document["sql"] = " ".join(str(sql).split())
        else:
            self.result.note(at, f"cube {name}", "its SQL refers to other cubes or has no table; not imported")
            return
        for key, what in IGNORED.items():
            if cube.get(key):
                self.result.note(at, f"cube {name}: {key}", f"{what} are not imported", dropped=False)
        renamed = [f"{m} -> {canon_name(m)}" for m in (*self.dims[name], *self.measures[name]) if canon_name(m) != m]
        if renamed:
            self.result.note(at, f"cube {name}: members renamed", ", ".join(renamed), dropped=False)
        entities, dimensions, time_dims = [], [], []
        for dim in self.dims[name].values():
            try:
                out = self.dimension(name, dim)
            except Unmapped as reason:
                self.result.note(where(self.root, path, dim), f"dimension {name}.{dim['name']}", str(reason))
                continue
            if _key(dim, "primary_key", "primaryKey"):
                entities.append({"name": model, "type": "primary", "expr": out.get("expr", out["name"])})
                self.primary[name] = out.get("expr", out["name"])
            dimensions.append(out)
            if out["type"] == "time":
                time_dims.append(out["name"])
        measures = []
        for measure in self.measures[name].values():
            try:
                measures += self.measure(path, name, measure)
            except Unmapped as reason:
                self.result.note(where(self.root, path, measure), f"measure {name}.{measure['name']}", str(reason))
        segments = []
        for segment in _items(cube.get("segments")):
            try:
                segments.append(compact({"name": canon_name(segment["name"]), "filter": self.segment(name, segment),
                                         "label": segment.get("title"), "description": _text(segment.get("description"))}))
            except Unmapped as reason:
                self.result.note(where(self.root, path, segment), f"segment {name}.{segment['name']}", str(reason))
        document.update(entities=entities, dimensions=dimensions, measures=measures, segments=segments)
        if time_dims:
            # Cube asks for a time dimension per query; Canon's metric_time needs a default one
            document["default_time"] = time_dims[0]
            if len(time_dims) > 1:
                self.result.note(at, f"cube {name}", f"default_time set to '{time_dims[0]}' (the first of "
                                                      f"{', '.join(time_dims)}): metric_time uses it", dropped=False)
        self.result.models[model] = compact(document)

    def dimension(self, cube: str, dim: dict) -> dict:
        kind = DIMENSION_TYPES.get(str(dim.get("type")))
        if kind is None:
            raise Unmapped(f"dimension type '{dim.get('type')}' is not supported")
        if dim.get("sub_query") or dim.get("subQuery"):
            raise Unmapped("sub-query dimensions are not supported")
        name = canon_name(dim["name"])
        expr = self.column_sql(cube, dim.get("sql") or dim["name"], seen=(dim["name"],))
        out = {"name": name, "type": kind, "expr": None if expr == name else expr,
               "label": dim.get("title"), "description": _text(dim.get("description"))}
        return compact(out)

    def column_sql(self, cube: str, sql: str, seen: tuple = ()) -> str:
        """A member's SQL with Cube's references resolved to this cube's own columns."""
        def replace(match: re.Match) -> str:
            head, member = match.group(1), match.group(2)
            if head == "CUBE" or head == cube:
                if member is None:
                    return "\x00"  # `{CUBE}.col`: the qualifier goes, the column stays
                return self._member_sql(cube, member, seen)
            if member is None and head in self.dims.get(cube, {}):
                return self._member_sql(cube, head, seen)
            raise Unmapped(f"refers to '{match.group(0)}' of another cube; Canon dimensions are over their own model's columns")

        text = _REF.sub(replace, str(sql)).replace("\x00.", "").replace("\x00", "")
        text = re.sub(r"\bCUBE\.", "", text)  # the bare `CUBE.col` spelling
        return " ".join(text.split())

    def _member_sql(self, cube: str, member: str, seen: tuple) -> str:
        dim = self.dims.get(cube, {}).get(member)
        if dim is None or member in seen:
            raise Unmapped(f"refers to '{member}', which is not a dimension of {cube}" if dim is None
                           else f"'{member}' refers to itself")
        inner = self.column_sql(cube, dim.get("sql") or member, seen + (member,))
        return inner if re.fullmatch(r"\w+", inner) else f"({inner})"

    def measure(self, path: Path, cube: str, measure: dict) -> list[dict]:
        kind = str(measure.get("type", "")).replace("Distinct", "_distinct").replace("Approx", "_approx").lower()
        model, name = canon_name(cube), canon_name(measure["name"])
        metric = {"name": f"{model}_{name}", "label": measure.get("title"), "description": _text(measure.get("description"))}
        if _key(measure, "multi_stage", "multiStage"):
            raise Unmapped("multi-stage measures are not supported")
        if _key(measure, "rolling_window", "rollingWindow") or kind in ("running_total", "runningtotal"):
            raise Unmapped("rolling windows on a measure are not imported; write a cumulative metric over it")
        if kind == "number":
            refs = self._measure_refs(cube, str(measure.get("sql", "")))
            if not refs:
                raise Unmapped("a `number` measure over raw SQL (not over other measures) has no Canon equivalent")
            expr = _REF.sub(lambda m: refs[m.group(0)], str(measure["sql"]))
            self.result.metrics.append(compact({**metric, "type": "derived", "expr": " ".join(expr.split()),
                                                "metrics": sorted(set(refs.values()))}))
            return []
        agg = AGGS.get(kind)
        if agg is None:
            raise Unmapped(f"measure type '{measure.get('type')}' is not supported")
        expr = self.column_sql(cube, measure["sql"]) if measure.get("sql") is not None else None
        conditions = [self.column_sql(cube, f["sql"]) for f in measure.get("filters") or ()
                      if isinstance(f, dict) and f.get("sql")]
        if conditions:
            condition = " AND ".join(f"({c})" for c in conditions)
            expr = f"CASE WHEN {condition} THEN {expr or 1} END"
        if "approx" in kind:
            self.result.note(where(self.root, path, measure), f"measure {cube}.{measure['name']}",
                             "approximate distinct count imported as an exact one", dropped=False)
        self.result.metrics.append(compact({**metric, "type": "simple", "measure": f"{model}.{name}"}))
        return [compact({"name": name, "agg": agg, "expr": expr, "label": measure.get("title"),
                         "description": _text(measure.get("description"))})]

    def _measure_refs(self, cube: str, sql: str) -> dict[str, str]:
        refs = {}
        for match in _REF.finditer(sql):
            head, member = match.group(1), match.group(2)
            owner, name = (cube, head) if member is None else (cube if head == "CUBE" else head, member)
            if name not in self.measures.get(owner, {}):
                raise Unmapped(f"'{match.group(0)}' is not a measure; only measures may appear in a `number` measure")
            refs[match.group(0)] = f"{canon_name(owner)}_{canon_name(name)}"
        return refs

    def segment(self, cube: str, segment: dict) -> str:
        """Cube segments are SQL over the cube's columns; Canon's are over its dimensions, by name."""
        sql = self.column_sql(cube, segment["sql"])
        columns = {}
        for dim in self.dims[cube].values():
            try:
                columns[self.column_sql(cube, dim.get("sql") or dim["name"]).lower()] = canon_name(dim["name"])
            except Unmapped:
                continue
        tree = parse_one(sql)
        for column in list(tree.find_all(exp.Column)):
            name = columns.get(column.name.lower())
            if name is None:
                raise Unmapped(f"column '{column.name}' is not a dimension of {cube}; add one, then the segment")
            column.replace(exp.column(name, table=canon_name(cube)))
        return tree.sql()

    # --- joins ---------------------------------------------------------------------------------

    def join(self, cube: dict, join: dict) -> None:
        source, target = cube["name"], join.get("name")
        if target not in self.cubes or canon_name(target) not in self.result.models:
            raise Unmapped(f"'{target}' is not an imported cube")
        if canon_name(source) not in self.result.models:
            return
        left, right = self._join_columns(source, target, str(join.get("sql", "")))
        if right is not None and self.primary.get(target, "").lower() == right.lower():
            holder, other, column = source, target, left
        elif left is not None and self.primary.get(source, "").lower() == left.lower():
            holder, other, column = target, source, right
        else:
            raise Unmapped("neither side of the ON clause is a primary key: Canon joins a foreign key to a primary key")
        model = self.result.models[canon_name(holder)]
        entities = model.setdefault("entities", [])
        existing = next((e for e in entities if e["name"] == canon_name(other)), None)
        if existing is not None:
            if existing.get("expr", existing["name"]).lower() != column.lower():
                raise Unmapped(f"{holder} already joins {other} on another column")
            return
        entities.append({"name": canon_name(other), "type": "foreign", "expr": column})
        if str(join.get("relationship")) in ("one_to_many", "hasMany", "has_many"):
            self.result.note(f"cube {source}", f"join {source} -> {target}", f"Canon joins {target} to {source}; "
                             f"to group {source}'s measures by {target}'s dimensions mark {canon_name(target)} `bridge: true`",
                             dropped=False)

    def _join_columns(self, source: str, target: str, sql: str) -> tuple[str | None, str | None]:
        """(source column, target column) of an ON clause `a = b`."""
        def replace(match: re.Match) -> str:
            head, member = match.group(1), match.group(2)
            side = "__src" if head in ("CUBE", source) else "__tgt" if head == target else None
            if side is None:
                raise Unmapped(f"the ON clause refers to '{match.group(0)}'")
            if member is None:
                return f"{side}"
            cube = source if side == "__src" else target
            column = self._member_sql(cube, member, ())
            if not re.fullmatch(r"\w+", column):
                raise Unmapped(f"the join key '{member}' is an expression, not a column")
            return f"{side}.{column}"

        try:
            tree = parse_one(_REF.sub(replace, sql))
        except Unmapped:
            raise
        except Exception:  # noqa: BLE001 — any unreadable ON clause is reported, not fatal
            raise Unmapped(f"cannot read the ON clause '{sql}'") from None
        if not (isinstance(tree, exp.EQ) and all(isinstance(s, exp.Column) for s in (tree.this, tree.expression))):
            raise Unmapped(f"the ON clause '{sql}' is not one equality of two columns")
        sides = {c.table: c.name for c in (tree.this, tree.expression)}
        if set(sides) != {"__src", "__tgt"}:
            raise Unmapped(f"the ON clause '{sql}' does not compare {source} with {target}")
        return sides["__src"], sides["__tgt"]

    # --- views ---------------------------------------------------------------------------------

    def view(self, path: Path, view: dict) -> None:
        at, metrics, dimensions, skipped = where(self.root, path, view), [], [], []
        root = None
        for part in view.get("cubes") or ():
            join_path = str(part.get("join_path") or part.get("joinPath") or "")
            cube = join_path.split(".")[-1]
            if cube not in self.cubes or canon_name(cube) not in self.result.models:
                self.result.note(at, f"view {view.get('name')}: {join_path}", "not an imported cube")
                continue
            root = root or cube
            includes = part.get("includes", "*")
            excluded = set(part.get("excludes") or ())
            names = list(self.dims[cube]) + list(self.measures[cube]) if includes == "*" else includes
            prefix = (part.get("alias") or cube) + "_" if part.get("prefix") else ""
            for item in names:
                member, alias = (item.get("name"), item.get("alias")) if isinstance(item, dict) else (item, None)
                if member in excluded:
                    continue
                shown = canon_name(alias or prefix + member)
                if member in self.measures[cube]:
                    metric = f"{canon_name(cube)}_{canon_name(member)}"
                    if cube != root:  # a joined cube's measure by the root's lines would cross a join backwards
                        skipped.append(metric)
                    elif any(m["name"] == metric for m in self.result.metrics):
                        metrics.append(metric)
                elif member in self.dims[cube]:
                    ref = f"{canon_name(cube)}.{canon_name(member)}"
                    dimensions.append(ref if shown == ref.replace(".", "_") else {"ref": ref, "name": shown})
        if skipped:
            self.result.note(at, f"view {view.get('name')}: {', '.join(skipped)}", f"measures of cubes joined to {root} are "
                             "left out: every metric of a Canon view must group by every view dimension (query them on "
                             "their own, or mark the root model `bridge: true` and add them by hand)", dropped=False)
        if view.get("measures") or view.get("dimensions"):
            self.result.note(at, f"view {view.get('name')}",
                             "members listed outside `cubes:` (the old view syntax) are not imported")
        if not metrics:
            self.result.note(at, f"view {view.get('name')}", "no imported measure: a Canon view needs at least one metric")
            return
        self.result.note(at, f"view {view.get('name')}", "measures keep their Canon metric names (<cube>_<measure>) "
                         "and Canon chooses the join path from its entity graph", dropped=False)
        self.result.views.append(compact({"name": canon_name(view["name"]), "label": view.get("title"),
                                          "description": _text(view.get("description")),
                                          "metrics": list(dict.fromkeys(metrics)), "dimensions": dimensions}))


def _text(value) -> str | None:
    return " ".join(str(value).split()) if value else None
