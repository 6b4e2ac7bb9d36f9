"""Catalog listings under an access grant: what a user may not see is left out, not greyed out.

Front ends list metrics, dimensions, search hits, glossary terms and lineage from the catalog; these
helpers drop the members a `Grant` hides (server/runtime/access.py), so every listing agrees with
what queries allow.
"""

from __future__ import annotations

from canon.compiler.catalog import Catalog
from canon.compiler.errors import AccessDeniedError, UnknownNameError, did_you_mean

from .access import Grant


def check_metric(catalog: Catalog, grant: Grant, name: str):
    """The metric definition, or 404 (unknown, hints over visible names) / 403 (hidden)."""
    if name not in catalog.metrics:
        raise UnknownNameError(f"unknown metric '{name}'", hint=did_you_mean(name, grant.visible_metrics(catalog)))
    if not grant.allows_metric(catalog, name):
        raise AccessDeniedError(f"metric '{name}' is not available to user {grant.user!r}",
                                hint=f"denied by the access policies {', '.join(grant.policies)}")
    return catalog.metrics[name]


def dimension_allowed(catalog: Catalog, grant: Grant, ref: str) -> bool:
    if grant.open:
        return True
    from canon.compiler.refs import parse_ref

    head = ref.split(".")[0]
    if head == "metric_time":
        return grant.allows_dimension(catalog, "metric_time")
    try:
        dim = parse_ref(catalog, ref, item_model=_item_model(catalog, ref)).dimension
    except Exception:  # noqa: BLE001 — an unparsable name is nothing a grant can allow
        return False
    return dim is not None and grant.allows_dimension(catalog, dim)


def _item_model(catalog: Catalog, ref: str) -> str | None:
    if ref.split(".")[0] not in ("antecedent", "consequent"):
        return None
    return next((a.item_model for a in catalog.affinities.values()), None)


def visible_dimensions(catalog: Catalog, grant: Grant, dims) -> list:
    """Dimension infos (introspect's) whose `ref` the grant allows."""
    return [d for d in dims if dimension_allowed(catalog, grant, d.ref)]


def visible_hits(catalog: Catalog, grant: Grant, hits) -> list:
    keep = []
    for hit in hits:
        if hit.kind == "metric" and not grant.allows_metric(catalog, hit.name):
            continue
        if hit.kind == "dimension" and not dimension_allowed(catalog, grant, hit.name):
            continue
        if hit.kind == "term" and not _term_visible(catalog, grant, catalog.glossary.get(hit.name)):
            continue
        keep.append(hit)
    return keep


def _term_visible(catalog: Catalog, grant: Grant, term) -> bool:
    """A term is shown when it names nothing, or something the user may see."""
    if term is None:
        return False
    named = [("m", m) for m in term.metrics] + [("d", d) for d in term.dimensions]
    return not named or any(grant.allows_metric(catalog, n) if k == "m" else dimension_allowed(catalog, grant, n)
                            for k, n in named)


def visible_term(catalog: Catalog, grant: Grant, term) -> dict | None:
    if not _term_visible(catalog, grant, term):
        return None
    body = term.model_dump(mode="json")
    body["metrics"] = [m for m in term.metrics if grant.allows_metric(catalog, m)]
    body["dimensions"] = [d for d in term.dimensions if dimension_allowed(catalog, grant, d)]
    return body


def prune_lineage(catalog: Catalog, grant: Grant, result: dict) -> dict:
    """A lineage answer without hidden metric and dimension nodes (and what hangs only off them)."""
    if grant.open:
        return result

    def hidden(node: dict) -> bool:
        if node.get("kind") == "metric":
            return not grant.allows_metric(catalog, node.get("name", ""))
        if node.get("kind") == "dimension":
            return not dimension_allowed(catalog, grant, node.get("name", ""))
        return False

    gone = {n["id"] for n in result.get("nodes", []) if hidden(n)}

    def tree(node: dict | None) -> dict | None:
        if node is None or hidden(node):
            return None
        children = [c for c in (tree(child) for child in node.get("children", [])) if c is not None]
        return {**node, "children": children} if "children" in node else node

    out = {**result,
           "nodes": [n for n in result.get("nodes", []) if n["id"] not in gone],
           "edges": [e for e in result.get("edges", []) if e["from"] not in gone and e["to"] not in gone]}
    for side in ("up", "down"):
        if side in result:
            out[side] = tree(result[side])
    impact = result.get("impact")
    if isinstance(impact, dict):
        out["impact"] = {**impact, "metrics": [m for m in impact.get("metrics", []) if grant.allows_metric(catalog, m)]}
    return out
