"""Project rules: governance checks a project opts into in `canon.yml`, run by `canon validate`.

Pure: (Catalog, Rules) -> problems. The rules read the metadata every governed object carries
(owner, description, tier, replaced_by, sunset) and the lineage between objects:

    # canon.yml
    rules:
      require:                      # fields a tier needs
        certified: [owner, description]
        deprecated: [replaced_by]
      certified_may_not_depend_on: [draft]   # tiers a certified object may not be built from
      owners: [sales-analytics, marketing-analytics]   # optional allow-list of owners

Without a `rules:` key the defaults below apply; `rules: {}` switches them off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .catalog import Catalog
from .errors import ConfigError, Location, describe, did_you_mean
from .model import Tier

GOVERNED_FIELDS = ("owner", "description", "label", "replaced_by", "sunset", "tags")
_KINDS = (("metric", "metrics"), ("semantic model", "model"), ("view", "views"), ("saved query", "saved_queries"))


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    require: dict[Tier, tuple[Literal["owner", "description", "label", "replaced_by", "sunset", "tags"], ...]] = {}  # fields each tier must fill, e.g. certified: [owner, description]
    certified_may_not_depend_on: tuple[Tier, ...] = ()  # tiers a certified metric may not be built on
    owners: tuple[str, ...] | None = None  # the allowed owners; absent: any
    severity: Literal["error", "warning"] = "error"  # error fails `canon validate`; warning only reports


DEFAULT_RULES = Rules(
    require={"certified": ("owner", "description"), "deprecated": ("replaced_by",)},
    certified_may_not_depend_on=("draft",),
)


@dataclass(frozen=True)
class RuleProblem:
    rule: str
    severity: str  # error | warning
    subject: str  # e.g. "metric:cac"
    message: str
    location: Location | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return describe(self.message, self.location, self.hint)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "subject": self.subject, "message": self.message,
                "location": str(self.location) if self.location else None, "hint": self.hint}


def rules_from_config(config: dict) -> Rules:
    """The `rules:` section of canon.yml; absent means the defaults."""
    if "rules" not in config:
        return DEFAULT_RULES
    raw = config.get("rules") or {}
    try:
        return Rules.model_validate(raw)
    except ValidationError as error:
        err = error.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        hint = did_you_mean(str(err["loc"][-1]), Rules.model_fields) if err["type"] == "extra_forbidden" else None
        raise ConfigError(f"canon.yml: rules.{where}: {err['msg']}", location=Location(file="canon.yml"),
                          hint=hint) from None


def check_rules(catalog: Catalog, rules: Rules = DEFAULT_RULES) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    objects = list(_governed(catalog))
    for kind, name, obj, location in objects:
        subject = f"{kind} '{name}'"
        for field in rules.require.get(obj.tier, ()):
            if not getattr(obj, field, None):
                problems.append(RuleProblem(
                    f"require.{obj.tier}", rules.severity, _id(kind, name),
                    f"{subject} is {obj.tier} but has no {field}", location,
                    f"add `{field}:` or lower its tier"))
        if rules.owners is not None and obj.owner and obj.owner not in rules.owners:
            problems.append(RuleProblem("owners", rules.severity, _id(kind, name),
                                        f"{subject} has owner '{obj.owner}', who is not a known owner", location,
                                        did_you_mean(obj.owner, rules.owners)))
        problems += _deprecation(catalog, kind, name, obj, location)
    if rules.certified_may_not_depend_on:
        problems += _tier_dependencies(catalog, rules, objects)
    return problems


def _id(kind: str, name: str) -> str:
    return {"metric": "metric", "semantic model": "model", "view": "view", "saved query": "saved_query"}[kind] + ":" + name


def _governed(catalog: Catalog):
    for name, metric in catalog.metrics.items():
        yield "metric", name, metric, metric.location
    for name, model in catalog.models.items():
        yield "semantic model", name, model.definition, model.definition.location_of("name")
    for name, view in catalog.views.items():
        yield "view", name, view, view.location
    for name, sq in catalog.saved_queries.items():
        yield "saved query", name, sq, sq.location


def _deprecation(catalog: Catalog, kind, name, obj, location) -> list[RuleProblem]:
    """Always on: replaced_by names something that exists; sunset is an ISO date."""
    found = []
    pool = {"metric": catalog.metrics, "semantic model": catalog.models, "view": catalog.views,
            "saved query": catalog.saved_queries}[kind]
    if obj.replaced_by and obj.replaced_by not in pool:
        found.append(RuleProblem("replaced_by", "error", _id(kind, name),
                                 f"{kind} '{name}' is replaced_by unknown {kind} '{obj.replaced_by}'", location,
                                 did_you_mean(obj.replaced_by, pool)))
    if obj.replaced_by == name:
        found.append(RuleProblem("replaced_by", "error", _id(kind, name), f"{kind} '{name}' replaces itself",
                                 location, "point replaced_by at its successor"))
    if obj.sunset:
        try:
            dt.date.fromisoformat(str(obj.sunset))
        except ValueError:
            found.append(RuleProblem("sunset", "error", _id(kind, name),
                                     f"{kind} '{name}': sunset {obj.sunset!r} is not a date", location,
                                     "write sunset: YYYY-MM-DD"))
    return found


def _tier_dependencies(catalog: Catalog, rules: Rules, objects) -> list[RuleProblem]:
    from .lineage import build_lineage

    graph = build_lineage(catalog)
    banned = set(rules.certified_may_not_depend_on)
    found = []
    for kind, name, obj, location in objects:
        if obj.tier != "certified":
            continue
        node_id = _id(kind, name)
        if node_id not in graph.nodes:
            continue
        bad = [graph.nodes[n] for n in graph.closure(node_id, "down")
               if graph.nodes[n].tier in banned and graph.nodes[n].kind in ("metric", "model")]
        for dep in bad:
            found.append(RuleProblem(
                "certified_may_not_depend_on", rules.severity, node_id,
                f"certified {kind} '{name}' depends on {dep.tier} {dep.kind} '{dep.name}'", location,
                f"certify '{dep.name}' first, or lower '{name}' to verified"))
    return found
