"""The YAML reference and JSON Schemas: generated from the pydantic models, committed, never stale.

If a test here fails after a change to compiler/model.py: give every new field a comment (or a
Field description), then regenerate with `canon schema --out docs` and commit docs/.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from canon.server.cli import main
from canon.server.schema_doc import LANGUAGE_SERVER, json_schemas, project_files, reference_markdown

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def schemas() -> dict:
    return json_schemas()


def test_committed_reference_and_schemas_are_up_to_date(schemas):
    stale = []
    if (DOCS / "reference.md").read_text() != reference_markdown(schemas):
        stale.append("docs/reference.md")
    for kind, schema in schemas.items():
        if json.loads((DOCS / "schema" / f"{kind}.json").read_text()) != schema:
            stale.append(f"docs/schema/{kind}.json")
    assert not stale, f"{', '.join(stale)} out of date: run `canon schema --out docs`"


def _properties(node, path=""):
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{path}.{name}", prop
        for key, value in node.items():
            yield from _properties(value, f"{path}.{key}" if key != "properties" else path)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value, path)


def test_every_field_has_a_description(schemas):
    missing = [f"{kind}{path}" for kind, schema in schemas.items() for path, prop in _properties(schema)
               if not prop.get("description")]
    assert not missing, f"fields without a description (add a comment beside them in compiler/model.py): {missing}"


def test_the_reference_covers_every_metric_type_and_file(schemas):
    from canon.compiler.model import METRIC_TYPES

    text = reference_markdown(schemas)
    for kind in METRIC_TYPES:
        assert f'| `type` | `"{kind}"` | required |' in text
    for section in ("## Canon semantic model file", "## Canon metrics file", "## Canon project settings (canon.yml)",
                    "### SemanticModel", "### Dimension", "### SavedQuery", "### View", "### GlossaryTerm",
                    "### Calendar", "### Rules"):
        assert section + "\n" in text


def _validator(schema):
    return jsonschema.Draft202012Validator(schema)


def test_the_demo_project_validates_against_the_schemas(schemas):
    checked = 0
    for folder, kind in (("semantic_models", "semantic_model"), ("metrics", "metrics")):
        for path in sorted((REPO / folder).glob("*.yml")):
            errors = list(_validator(schemas[kind]).iter_errors(yaml.safe_load(path.read_text())))
            assert not errors, f"{path.name}: {errors[0].message}"
            checked += 1
    assert not list(_validator(schemas["canon"]).iter_errors(yaml.safe_load((REPO / "canon.yml").read_text())))
    assert checked >= 10


def test_the_schemas_catch_what_an_editor_should_underline(schemas):
    model = {"semantic_model": {"name": "order", "table": "orders", "dimensons": []}}
    assert any("dimensons" in e.message for e in _validator(schemas["semantic_model"]).iter_errors(model))
    metric = {"metrics": [{"name": "aov", "type": "ratio", "numerator": "revenue"}]}
    errors = list(_validator(schemas["metrics"]).iter_errors(metric))  # a oneOf over `type`: the ratio branch says why
    assert any("'denominator' is a required property" in sub.message for e in errors for sub in e.context)
    bad_name = {"metrics": [{"name": "Revenue", "type": "simple", "measure": "order.total"}]}
    assert list(_validator(schemas["metrics"]).iter_errors(bad_name))
    assert list(_validator(schemas["canon"]).iter_errors({"limts": {}}))  # strict top-level keys


def test_project_files_point_each_yaml_at_its_schema():
    files = project_files({"semantic_models/a.yml": "semantic_model: {}\n", "metrics/m.yml": "metrics: []\n",
                           "canon.yml": "warehouse: x.duckdb\n"})
    assert files["semantic_models/a.yml"].splitlines()[0] == f"{LANGUAGE_SERVER}../.canon/schema/semantic_model.json"
    assert files["metrics/m.yml"].splitlines()[0] == f"{LANGUAGE_SERVER}../.canon/schema/metrics.json"
    assert files["canon.yml"].splitlines()[0] == f"{LANGUAGE_SERVER}.canon/schema/canon.json"
    assert json.loads(files[".canon/schema/metrics.json"])["title"] == "Canon metrics file"


def test_canon_init_output_validates_against_the_schemas_it_writes(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE visits (visit_id INTEGER, shop_id INTEGER, visited_on DATE, spend DOUBLE, kind VARCHAR)")
        con.execute("CREATE TABLE shops (shop_id INTEGER, city VARCHAR)")
    project = tmp_path / "p"
    result = CliRunner().invoke(main, ["init", str(project), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.stderr
    for path in [*project.glob("semantic_models/*.yml"), *project.glob("metrics/*.yml"), project / "canon.yml"]:
        first = path.read_text().splitlines()[0]
        assert first.startswith(LANGUAGE_SERVER), path
        schema = json.loads((path.parent / first[len(LANGUAGE_SERVER):]).read_text())  # as the editor resolves it
        assert not list(_validator(schema).iter_errors(yaml.safe_load(path.read_text()))), path


def test_canon_schema_writes_the_docs(tmp_path):
    result = CliRunner().invoke(main, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "reference.md").read_text() == (DOCS / "reference.md").read_text()
    assert sorted(p.name for p in (tmp_path / "schema").iterdir()) == ["canon.json", "metrics.json", "semantic_model.json"]
