"""Names -> catalog objects: dimension references, measure references, filter references.

A dimension reference is `<model or entity>.<dimension>[.<grain>]`, `metric_time[.<grain>]`, or
`antecedent.<...>` / `consequent.<...>` (an item-side dimension of an affinity metric).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from . import date_parts
from .catalog import Catalog, DimensionInfo, MeasureInfo
from .date_parts import part_of
from .errors import QueryError, UnknownNameError, did_you_mean
from .roles import split
from .model import GRAINS
from .sqlexpr import ParsedFilter

METRIC_TIME = "metric_time"
SIDES = ("antecedent", "consequent")
DATE_PART = "date_part"  # a DimRef kind: `dimension` is None for a part of metric_time
COHORT = "cohort"  # `cohort.periods_since` of cohort metrics (compiler/cohort.py); `dimension` is None


@dataclass(frozen=True)
class DimRef:
    """A parsed dimension reference; `dimension` is None for metric_time (bound per metric)."""

    ref: str
    kind: str  # dimension | metric_time | antecedent | consequent
    dimension: DimensionInfo | None
    grain: str | None
    part: str | None = None  # kind date_part: dow, month_of_year, ... (compiler/date_parts.py)
    route: tuple[str, ...] = ()  # a named join path: start model, then each step (compiler/roles.py)

    @property
    def alias(self) -> str:
        return self.ref.replace(".", "__")

    @property
    def type(self) -> str:
        if self.part is not None:
            return "number"
        if self.kind == METRIC_TIME:
            return "time"
        if self.kind == COHORT:
            return "number"
        return self.dimension.type


def parse_ref(catalog: Catalog, ref: str, *, item_model: str | None = None, cohort: bool = False) -> DimRef:
    """Resolve a reference by name alone (no join path yet); `cohort`: cohort metrics are asked for."""
    if not isinstance(ref, str) or not ref:
        raise QueryError("a dimension reference must be a non-empty string")
    parts = ref.split(".")
    head = parts[0]
    if head == COHORT and catalog.model_for(head) is None:
        from .cohort import cohort_ref

        return cohort_ref(catalog, ref, cohort)
    if head == METRIC_TIME:
        if len(parts) > 2:
            raise UnknownNameError(f"unknown dimension '{ref}'", hint=f"write metric_time or metric_time.<grain>; grains: {', '.join(GRAINS)}")
        if len(parts) == 2 and part_of(parts[1]):
            return DimRef(ref, DATE_PART, None, None, part_of(parts[1]))
        grain = _grain(ref, parts[1]) if len(parts) == 2 else None
        return DimRef(ref, METRIC_TIME, None, grain)
    if head in SIDES:
        if item_model is None:
            raise QueryError(f"'{ref}' names a side of a product pair; it applies only to affinity metrics",
                             hint="query an affinity metric such as cross_sell_score with it")
        rest = parts[1:]
        if not rest:
            raise UnknownNameError(f"'{ref}' needs a dimension, e.g. {head}.product_name")
        model = catalog.models[item_model]
        if rest[0] in model.dimensions:
            rest = [item_model] + rest
        elif len(rest) == 1:
            raise UnknownNameError(
                f"unknown dimension '{ref}': the items ('{item_model}') have no dimension '{rest[0]}'",
                hint=did_you_mean(ref, [f"{head}.{d}" for d in model.dimensions]))
        dim, grain = _dimension(catalog, ".".join(rest), rest)
        return DimRef(ref, head, dim, grain)
    routed = split(catalog, ref, parts)
    if routed is not None:  # `customer.campaign.channel`: a reference that names its join path
        from dataclasses import replace

        return replace(parse_ref(catalog, ".".join(routed[1]), item_model=item_model), ref=ref, route=routed[0])
    if len(parts) == 3 and part_of(parts[2]):
        dim = _dimension(catalog, ref, parts[:2])[0]
        if dim.type != "time":
            raise QueryError(f"'{ref}': only time dimensions have date parts, and {dim.ref} is {dim.type}",
                             hint=f"write {dim.ref}")
        return DimRef(ref, DATE_PART, dim, None, part_of(parts[2]))
    dim, grain = _dimension(catalog, ref, parts)
    return DimRef(ref, "dimension", dim, grain)


def resolve_dimension(catalog: Catalog, ref: str) -> DimensionInfo:
    return _dimension(catalog, ref, ref.split("."))[0]


def _dimension(catalog: Catalog, ref: str, parts: list[str]) -> tuple[DimensionInfo, str | None]:
    if len(parts) < 2 or len(parts) > 3:
        raise UnknownNameError(f"unknown dimension '{ref}'",
                               hint="write <model>.<dimension>[.<grain>] — " + did_you_mean(ref, catalog.all_dimension_refs()))
    model = catalog.model_for(parts[0])
    if model is None:
        raise UnknownNameError(f"unknown dimension '{ref}': no model or entity '{parts[0]}'",
                               hint=did_you_mean(".".join(parts[:2]), catalog.all_dimension_refs()))
    dim = model.dimensions.get(parts[1]) or catalog.extension_dimension(parts[0], parts[1])
    if dim is None:
        hint = did_you_mean(f"{model.name}.{parts[1]}", [d.ref for d in model.dimensions.values()])
        if hint.startswith("did you mean"):
            hint += f" (dimensions of {model.name}: {', '.join(sorted(model.dimensions))})"
        raise UnknownNameError(
            f"unknown dimension '{ref}': model '{model.name}' has no dimension '{parts[1]}'", hint=hint)
    grain = None
    if len(parts) == 3:
        if dim.type != "time":
            raise QueryError(f"'{ref}': only time dimensions take a grain, and {dim.ref} is {dim.type}",
                             hint=f"write {dim.ref}")
        grain = _grain(ref, parts[2])
    return dim, grain


def _grain(ref: str, grain: str) -> str:
    if grain not in GRAINS:
        choices = list(GRAINS) + date_parts.names()
        close = did_you_mean(grain, choices)
        raise UnknownNameError(f"unknown time grain or date part '{grain}' in '{ref}'",
                               hint=(close + " " if close.startswith("did you mean") else "")
                               + f"grains: {', '.join(GRAINS)}; date parts: {', '.join(date_parts.names())}")
    return grain


def split_measure_ref(catalog: Catalog, ref: str) -> MeasureInfo:
    model_name, _, measure_name = ref.partition(".")
    model = catalog.models.get(model_name)
    if model is None or measure_name not in model.measures:
        all_refs = [ms.ref for mod in catalog.models.values() for ms in mod.measures.values()]
        raise UnknownNameError(f"unknown measure '{ref}'", hint=did_you_mean(ref, all_refs))
    return model.measures[measure_name]


def check_filter_refs(catalog: Catalog, parsed: ParsedFilter, source_model: str) -> bool:
    """Every reference in a definition's filter names a dimension reachable from `source_model`."""
    from .metric_filters import in_definition

    in_definition(parsed)
    for ref in parsed.refs:
        dimref = parse_ref(catalog, ref)
        if dimref.route:
            catalog.path(source_model, dimref.route[0])
        elif dimref.kind == "dimension":
            catalog.path(source_model, dimref.dimension.model)
    return True


def time_expr(dim: DimensionInfo, grain: str | None, time=None) -> exp.Expression:
    """A time dimension truncated to `grain` (as a DATE), or as stored when no grain is given."""
    from .calendar import TimeContext, in_zone, truncate

    time = time or TimeContext()
    local = in_zone(dim.expr.copy(), dim.definition.stored_as, time, dim.ref)
    return truncate(local, grain, time) if grain else local
