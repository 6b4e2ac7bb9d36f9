"""The YAML reference (docs/reference.md) and JSON Schemas (docs/schema/*.json), generated.

    schemas = json_schemas()            # {"semantic_model": {...}, "metrics": {...}, "canon": {...}}
    text = reference_markdown(schemas)
    write_docs(Path("docs"))            # `canon schema --out docs`; tests/test_schema_doc.py diffs it

Everything comes from the pydantic models in compiler/model.py (model_json_schema), so the reference
cannot drift from what `canon validate` accepts. A field's description is its `Field(description=)`
or else the comment written beside it (or on the lines right above it) in the model's source:
pydantic's `use_attribute_docstrings` idea, read here at generation time instead of at every import.
canon.yml's top-level keys come from server/project.py KNOWN_KEYS (strict: nothing else is allowed).
"""

from __future__ import annotations

import ast
import copy
import inspect
import io
import json
import tokenize
from pathlib import Path

from pydantic import BaseModel

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# which file holds what; the `# yaml-language-server: $schema=` line of each kind of file points here
DOCUMENTS = {
    "semantic_model": "a file in semantic_models/ (`semantic_model:` or `semantic_models:`)",
    "metrics": "a file in metrics/ (metrics, saved queries, views, glossary, rollups, recommendations)",
    "canon": "canon.yml, the project settings",
}
PROJECT_SCHEMA_DIR = ".canon/schema"  # where `canon init` writes the schemas for editors
LANGUAGE_SERVER = "# yaml-language-server: $schema="


def json_schemas() -> dict[str, dict]:
    from canon.compiler import model, rules
    from canon.server.project import KNOWN_KEYS

    comments = _field_comments(model) | _field_comments(rules)
    out = {"semantic_model": _finish(model.SemanticModelFile.model_json_schema(), "Canon semantic model file", comments),
           "metrics": _finish(model.MetricsFile.model_json_schema(), "Canon metrics file", comments)}
    settings = model.Settings.model_json_schema()
    defs = dict(settings.pop("$defs", {}))
    rules_schema = rules.Rules.model_json_schema()
    defs.update(rules_schema.pop("$defs", {}))
    defs["Rules"] = rules_schema
    properties = {}
    for key, reader in KNOWN_KEYS.items():
        if key in settings["properties"]:
            properties[key] = settings["properties"][key]
        elif key == "rules":
            properties[key] = {"$ref": "#/$defs/Rules"}
        elif key == "warehouse":
            properties[key] = {"type": "string", "description": "The warehouse: a DuckDB file (relative to the "
                               "project folder) or a postgresql:// URL; $CANON_WAREHOUSE and --warehouse override it."}
        else:
            properties[key] = {"description": f"Read by server/{reader}; see the README section of that name."}
        properties[key].setdefault("description", comments.get(("Settings", key)) or f"Read by {reader}.")
    canon = {"title": "Canon project settings (canon.yml)", "type": "object", "additionalProperties": False,
             "properties": properties, "$defs": defs}
    out["canon"] = _finish(canon, canon["title"], comments, extra_classes={"Rules": rules.Rules})
    return out


def _finish(schema: dict, title: str, comments: dict, extra_classes: dict | None = None) -> dict:
    from canon.compiler import model

    schema = copy.deepcopy(schema)
    classes = {name: cls for name, cls in vars(model).items() if isinstance(cls, type) and issubclass(cls, BaseModel)}
    classes.update(extra_classes or {})
    top = schema.get("title")
    for name, definition in [(top, schema), *schema.get("$defs", {}).items()]:
        cls = classes.get(name)
        python_names = {f.alias or n: n for n, f in cls.model_fields.items()} if cls is not None else {}
        for field, prop in definition.get("properties", {}).items():
            prop.pop("title", None)
            attribute = python_names.get(field, field)  # `from:` in YAML is `valid_from` in Python
            if "description" not in prop and cls is not None:
                text = next((comments[(c.__name__, attribute)] for c in cls.__mro__ if (c.__name__, attribute) in comments),
                            None)
                if text:
                    prop["description"] = text
    schema["title"] = title
    return {"$schema": SCHEMA_DIALECT, **schema}


def _field_comments(module) -> dict[tuple[str, str], str]:
    """(class, field) -> the comment beside the field, or on the comment lines right above it."""
    source = inspect.getsource(module)
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    out = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            text = comments.get(item.end_lineno) if item.end_lineno in comments and \
                lines[item.end_lineno - 1].lstrip()[:1] != "#" else None
            if text is None:  # a block of comment lines right above the field
                above, line = [], item.lineno - 1
                while line in comments and lines[line - 1].lstrip().startswith("#"):
                    above.insert(0, comments[line])
                    line -= 1
                text = " ".join(above) or None
            if text:
                out[(node.name, item.target.id)] = text
    return out


# --- the reference page ------------------------------------------------------------------------------


def reference_markdown(schemas: dict[str, dict] | None = None) -> str:
    schemas = schemas or json_schemas()
    lines = ["# Canon YAML reference", "",
             "Generated from the pydantic models in `compiler/model.py` by `canon schema --out docs` — do not edit",
             "by hand; `tests/test_schema_doc.py` fails when this page is out of date. JSON Schemas for editors",
             "are in `docs/schema/` (`canon init` writes them into `.canon/schema/` and points each file at",
             "them with a `# yaml-language-server: $schema=` line).", "",
             "Names (`name:` of models, entities, dimensions, measures, metrics) are lower snake case: "
             "`^[a-z][a-z0-9_]*$`, at most 63 characters. Windows read like `28 days` or `1 month`.", ""]
    for kind, what in DOCUMENTS.items():
        schema = schemas[kind]
        lines += [f"## {schema['title']}", "", f"{what.capitalize()}. JSON Schema: `docs/schema/{kind}.json`.", ""]
        lines += _table(schema, schema)
        for name in _reachable(schema):
            definition = schema["$defs"][name]
            lines += [f"### {name}", ""]
            if definition.get("description"):
                lines += [" ".join(definition["description"].split()), ""]
            lines += _table(definition, schema)
    return "\n".join(lines).rstrip() + "\n"


def _reachable(schema: dict) -> list[str]:
    """$defs in the order a reader meets them (breadth first from the file's top level)."""
    order, queue = [], [schema]
    while queue:
        node = queue.pop(0)
        for ref in _refs(node.get("properties", {})):
            if ref not in order:
                order.append(ref)
                queue.append(schema["$defs"][ref])
    return order


def _refs(value) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"].rsplit("/", 1)[-1]] if "$ref" in value else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _table(definition: dict, schema: dict) -> list[str]:
    properties = definition.get("properties", {})
    if not properties:
        return []
    required = set(definition.get("required", ()))
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for field, prop in properties.items():
        default = "required" if field in required else (f"`{json.dumps(prop['default'])}`" if "default" in prop else "")
        description = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
        rows.append(f"| `{field}` | {_type(prop)} | {default} | {description} |")
    return rows + [""]


def _type(prop: dict) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            parts = [_type(p) for p in prop[key] if p.get("type") != "null"]
            return " \\| ".join(dict.fromkeys(parts)) or "null"
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map to {_type(prop['additionalProperties'])}"
    if kind == "string" and prop.get("pattern"):
        return "name" if prop["pattern"] == "^[a-z][a-z0-9_]*$" else "string"
    return str(kind or "any")


# --- files ---------------------------------------------------------------------------------------------


def write_docs(out: Path) -> list[Path]:
    """docs/reference.md and docs/schema/<kind>.json under `out`."""
    schemas = json_schemas()
    files = {Path("reference.md"): reference_markdown(schemas)}
    files.update({Path("schema") / f"{kind}.json": schema_text(schema) for kind, schema in schemas.items()})
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def schema_text(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def project_files(files: dict[str, str]) -> dict[str, str]:
    """A new project's files with the `$schema` line on top of each YAML file, plus the schemas it
    names (under .canon/schema/), so editors complete and check the YAML as it is typed."""
    schemas = json_schemas()
    out = {}
    for relative, text in files.items():
        kind = _kind_of(relative)
        if kind is None or text.startswith(LANGUAGE_SERVER):
            out[relative] = text
            continue
        depth = len(Path(relative).parts) - 1
        out[relative] = f"{LANGUAGE_SERVER}{'../' * depth}{PROJECT_SCHEMA_DIR}/{kind}.json\n{text}"
    for kind, schema in schemas.items():
        out[f"{PROJECT_SCHEMA_DIR}/{kind}.json"] = schema_text(schema)
    return out


def _kind_of(relative: str) -> str | None:
    parts = Path(relative).parts
    if parts == ("canon.yml",):
        return "canon"
    if parts and parts[0] == "semantic_models" and relative.endswith((".yml", ".yaml")):
        return "semantic_model"
    if parts and parts[0] == "metrics" and relative.endswith((".yml", ".yaml")):
        return "metrics"
    return None
