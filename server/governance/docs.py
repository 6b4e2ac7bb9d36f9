"""`canon docs`: a static catalog site — an index of every metric, one page per metric (definition,
owner, tier, lineage down to tables and columns, what depends on it, compiled SQL), one per
semantic model and view. Plain HTML and a little CSS; Mermaid draws the lineage when the page can
load it, and the text tree is always there.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import yaml

from canon.compiler.catalog import Catalog
from canon.compiler.compile import compile_request
from canon.compiler.errors import CanonError
from canon.compiler.lineage import build_lineage, impact, render_mermaid, render_text, sources, tree

CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header{background:#1d2330;color:#fff;padding:12px 24px}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#f0f2f5}pre{background:#fff;border:1px solid #e3e6ea;padding:10px;overflow:auto;font-size:13px}
.tier{border-radius:10px;padding:1px 8px;font-size:12px;color:#fff}.certified{background:#16794c}.verified{background:#2d6cdf}
.draft{background:#8a8f98}.deprecated{background:#b42318}.tag{background:#eef1f6;border-radius:8px;padding:1px 6px;font-size:12px;margin-right:4px}
.warn{background:#fff4e5;border:1px solid #f5a524;padding:8px;border-radius:4px}input{padding:6px;width:320px}
dl{display:grid;grid-template-columns:160px 1fr;gap:4px 12px}dt{color:#5b6270}
"""

SEARCH_JS = """
document.getElementById('q').addEventListener('input',function(e){var q=e.target.value.toLowerCase();
document.querySelectorAll('tbody tr').forEach(function(r){r.style.display=r.dataset.search.includes(q)?'':'none';});});
"""

MERMAID = ('<script type="module">import mermaid from "https://cdn.jsdelivr.net/npm/mermaid@10/dist/mermaid.esm.min.mjs";'
           'mermaid.initialize({startOnLoad:true});</script>')


def _e(text) -> str:
    return html.escape("" if text is None else str(text))


def _page(title: str, body: str, depth: int = 0, extra: str = "") -> str:
    up = "../" * depth
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)} · Canon catalog</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style>{extra}</head>"
            f"<body><header><a href='{up}index.html'>Canon catalog</a></header><main>{body}</main></body></html>\n")


def _tier(tier: str | None) -> str:
    return f"<span class='tier {_e(tier)}'>{_e(tier)}</span>" if tier else ""


def _tags(tags) -> str:
    return "".join(f"<span class=tag>{_e(t)}</span>" for t in tags or ())


_KIND_OF = {"metrics": "metric", "saved_queries": "saved_query", "views": "view"}


def _link(kind: str, name: str, depth: int = 1) -> str:
    folder = {"metric": "metrics", "model": "models", "view": "views"}.get(kind)
    if folder is None:
        return _e(name)
    return f"<a href='{'../' * depth}{folder}/{_e(name)}.html'>{_e(name)}</a>"


def build_site(catalog: Catalog, out: str | Path, *, dialect: str = "duckdb") -> list[Path]:
    """Write the site into `out`; returns the files written."""
    out = Path(out)
    for folder in ("metrics", "models", "views"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    graph = build_lineage(catalog)
    written = [_write(out / "index.html", _index(catalog))]
    for name in sorted(catalog.metrics):
        written.append(_write(out / "metrics" / f"{name}.html", _metric_page(catalog, graph, name, dialect)))
    for name in sorted(catalog.models):
        written.append(_write(out / "models" / f"{name}.html", _model_page(catalog, graph, name)))
    for name in sorted(catalog.views):
        written.append(_write(out / "views" / f"{name}.html", _view_page(catalog, graph, name)))
    search = [{"kind": "metric", "name": n, "label": m.label, "description": m.description, "tags": list(m.tags),
               "tier": m.tier, "owner": m.owner, "url": f"metrics/{n}.html"} for n, m in sorted(catalog.metrics.items())]
    search += [{"kind": "term", "name": n, "label": t.term, "description": t.definition, "tags": list(t.synonyms),
                "url": f"index.html#term-{n}"} for n, t in sorted(catalog.glossary.items())]
    written.append(_write(out / "search.json", json.dumps(search, ensure_ascii=False, indent=1)))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _index(catalog: Catalog) -> str:
    rows = []
    for name, m in sorted(catalog.metrics.items()):
        search = " ".join(str(x) for x in (name, m.label, m.description, m.owner, m.tier, *m.tags) if x).lower()
        rows.append(f"<tr data-search='{_e(search)}'><td><a href='metrics/{_e(name)}.html'>{_e(name)}</a></td>"
                    f"<td>{_e(m.label)}</td><td>{_e(m.type)}</td><td>{_tier(m.tier)}</td><td>{_e(m.owner)}</td>"
                    f"<td>{_tags(m.tags)}</td><td>{_e(' '.join((m.description or '').split()))}</td></tr>")
    models = "".join(f"<li><a href='models/{_e(n)}.html'>{_e(n)}</a> — {_e(mi.definition.label)} {_tier(mi.definition.tier)}</li>"
                     for n, mi in sorted(catalog.models.items()))
    views = "".join(f"<li><a href='views/{_e(n)}.html'>{_e(n)}</a> — {_e(v.label)} {_tier(v.tier)}</li>"
                    for n, v in sorted(catalog.views.items()))
    terms = "".join(
        f"<dt id='term-{_e(n)}'>{_e(t.term)}</dt><dd>{_e(' '.join(t.definition.split()))}"
        + (f"<br><small>also: {_e(', '.join(t.synonyms))}</small>" if t.synonyms else "")
        + (f"<br>measured by: {', '.join(_link('metric', x, 0) for x in t.metrics)}" if t.metrics else "")
        + (f" {_e(', '.join(t.dimensions))}" if t.dimensions else "") + "</dd>"
        for n, t in sorted(catalog.glossary.items()))
    body = (f"<h1>Metrics ({len(catalog.metrics)})</h1><p><input id=q placeholder='search metrics, tags, owners…'></p>"
            "<table><thead><tr><th>name</th><th>label</th><th>type</th><th>tier</th><th>owner</th><th>tags</th>"
            f"<th>description</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<h2>Glossary</h2><dl>{terms}</dl>"
            f"<h2>Semantic models</h2><ul>{models}</ul><h2>Views</h2><ul>{views}</ul>"
            f"<script>{SEARCH_JS}</script>")
    return _page("Metrics", body)


def _definition_yaml(obj) -> str:
    data = obj.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _governance(obj) -> str:
    rows = [("owner", _e(obj.owner) or "<em>none</em>"), ("tier", _tier(obj.tier)), ("tags", _tags(obj.tags))]
    if obj.replaced_by:
        rows.append(("replaced by", _link("metric", obj.replaced_by)))
    if obj.sunset:
        rows.append(("sunset", _e(obj.sunset)))
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _metric_page(catalog: Catalog, graph, name: str, dialect: str) -> str:
    m = catalog.metrics[name]
    node = f"metric:{name}"
    deprecated = ""
    if m.tier == "deprecated":
        deprecated = (f"<p class=warn>Deprecated{': use ' + _link('metric', m.replaced_by) if m.replaced_by else ''}"
                      f"{' (removed after ' + _e(m.sunset) + ')' if m.sunset else ''}.</p>")
    used = sources(graph, node)
    deps = impact(graph, node)
    dep_html = "".join(
        f"<li>{kind.replace('_', ' ')}: " + ", ".join(_link(_KIND_OF[kind], n) for n in names) + "</li>"
        for kind, names in deps.items() if names) or "<li>nothing depends on it</li>"
    inputs = dict.fromkeys(use.metric for use in catalog.facts[name].inputs)
    inputs_html = ", ".join(_link("metric", i) for i in inputs)
    try:
        from canon.server.governance.diff import sample_request

        sql = compile_request(catalog, sample_request(catalog, name), dialect, pretty=True).sql
    except CanonError as error:
        sql = f"-- cannot compile a sample query: {error.message}"
    body = (f"<h1>{_e(m.label or name)} <small><code>{_e(name)}</code></small></h1>{deprecated}"
            f"<p>{_e(m.description) or '<em>No description.</em>'}</p>{_governance(m)}"
            f"<h2>Definition</h2><p>type: <b>{_e(m.type)}</b>{' · built from ' + inputs_html if inputs_html else ''}</p>"
            f"<pre>{_e(_definition_yaml(m))}</pre>"
            f"<h2>Lineage</h2><p>tables: {_e(', '.join(used['tables']))}<br>columns: {_e(', '.join(used['columns']))}</p>"
            f"<pre class=mermaid>{_e(render_mermaid(graph, node, 'down'))}</pre>"
            f"<details><summary>as a tree</summary><pre>{_e(render_text(tree(graph, node, 'down')))}</pre></details>"
            f"<h2>Depends on it</h2><ul>{dep_html}</ul>"
            f"<h2>SQL ({_e(dialect)})</h2><pre>{_e(sql)}</pre>")
    return _page(name, body, depth=1, extra=MERMAID)


def _model_page(catalog: Catalog, graph, name: str) -> str:
    model = catalog.models[name]
    d = model.definition
    dims = "".join(f"<tr><td>{_e(x.name)}</td><td>{_e(x.type)}</td><td><code>{_e(x.sql)}</code></td><td>{_e(x.description)}</td></tr>"
                   for x in d.dimensions)
    measures = "".join(f"<tr><td>{_e(x.name)}</td><td>{_e(x.agg)}</td><td><code>{_e(x.expr or '')}</code></td><td>{_e(x.description)}</td></tr>"
                       for x in d.measures)
    tests = "".join(f"<li><code>{_e(json.dumps(t.model_dump(mode='json', exclude_defaults=True), ensure_ascii=False))}</code></li>"
                    for t in d.tests) or "<li>none</li>"
    fresh = _e(json.dumps(d.freshness.model_dump(mode="json"))) if d.freshness else "not monitored"
    deps = impact(graph, f"model:{name}")
    body = (f"<h1>{_e(d.label or name)} <small><code>{_e(name)}</code></small></h1><p>{_e(d.description)}</p>{_governance(d)}"
            f"<p>source: <code>{_e(d.table or 'sql')}</code></p>" + (f"<pre>{_e(d.sql)}</pre>" if d.sql else "") +
            f"<h2>Dimensions</h2><table><tr><th>name</th><th>type</th><th>expr</th><th>description</th></tr>{dims}</table>"
            f"<h2>Measures</h2><table><tr><th>name</th><th>agg</th><th>expr</th><th>description</th></tr>{measures}</table>"
            f"<h2>Data tests</h2><ul>{tests}</ul><p>freshness: {fresh}</p>"
            f"<h2>Metrics built on it</h2><p>{', '.join(_link('metric', n) for n in deps['metrics']) or 'none'}</p>")
    return _page(name, body, depth=1)


def _view_page(catalog: Catalog, graph, name: str) -> str:
    v = catalog.views[name]
    dims = ", ".join(_e(d if isinstance(d, str) else d.ref) for d in v.dimensions)
    body = (f"<h1>{_e(v.label or name)} <small><code>{_e(name)}</code></small></h1><p>{_e(v.description)}</p>{_governance(v)}"
            f"<h2>Metrics</h2><p>{', '.join(_link('metric', m) for m in v.metrics)}</p><h2>Dimensions</h2><p>{dims}</p>")
    return _page(name, body, depth=1)
