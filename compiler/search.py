"""Catalog search: metrics, dimensions and glossary terms that match what a person types.

Pure and small: each candidate gets a score from where the words match (name, label, synonym, tag,
description); a glossary term that matches also brings the metrics it names.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog


@dataclass(frozen=True)
class Hit:
    kind: str  # metric | dimension | term
    name: str
    label: str | None
    score: int
    why: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "label": self.label, "score": self.score, "why": self.why}


def _score(words: list[str], fields: list[tuple[str, int, str | None]]) -> tuple[int, str]:
    """Every word must match somewhere; the best field of each word counts."""
    total, why = 0, []
    for word in words:
        best = max(((weight, label) for label, weight, text in fields if text and word in text.lower()), default=None)
        if best is None:
            return 0, ""
        total += best[0]
        why.append(best[1])
    return total, ", ".join(dict.fromkeys(why))


def search(catalog: Catalog, text: str, *, limit: int = 20) -> list[Hit]:
    words = [w for w in str(text).lower().replace("_", " ").split() if w]
    if not words:
        return []
    hits: dict[tuple[str, str], Hit] = {}

    def add(hit: Hit):
        key = (hit.kind, hit.name)
        if hit.score > 0 and (key not in hits or hits[key].score < hit.score):
            hits[key] = hit

    for name, metric in catalog.metrics.items():
        score, why = _score(words, [("name", 50, name.replace("_", " ")), ("label", 40, metric.label),
                                    ("tag", 30, " ".join(metric.tags)), ("description", 10, metric.description)])
        if " ".join(words) == name.replace("_", " "):
            score, why = score + 100, "exact name"
        add(Hit("metric", name, metric.label, score, why))
    for model in catalog.models.values():
        for dim in model.dimensions.values():
            score, why = _score(words, [("name", 30, f"{model.name} {dim.name}".replace("_", " ")),
                                        ("label", 25, dim.definition.label), ("description", 5, dim.definition.description)])
            add(Hit("dimension", dim.ref, dim.definition.label, score, why))
    for name, entry in catalog.glossary.items():
        score, why = _score(words, [("term", 60, entry.term), ("synonym", 55, " | ".join(entry.synonyms)),
                                    ("definition", 10, entry.definition)])
        add(Hit("term", name, entry.term, score, why))
        for metric in entry.metrics if score else ():
            add(Hit("metric", metric, catalog.metrics[metric].label, score - 5, f"glossary: {entry.term}"))
    return sorted(hits.values(), key=lambda h: (-h.score, h.kind, h.name))[:limit]
