"""Source freshness: how old is the newest row of each model that declares `freshness:`.

    freshness: {loaded_at: _etl_loaded_at, warn_after: 12h, error_after: 24h}

A source is `fresh` while its age is at most `warn_after`, `warn` once the age is over it, and
`error` once it is over `error_after` (dbt's convention: exactly 12 h old is still fresh). A source
with no rows is `error`. `now` is injectable everywhere; warehouse timestamps are naive UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from canon.compiler.catalog import Catalog, ModelInfo
from canon.compiler.errors import CanonError
from canon.compiler.model import duration_seconds
from canon.compiler.sqlexpr import parse_definition_expr

STATES = ("fresh", "warn", "error")


@dataclass(frozen=True)
class SourceFreshness:
    model: str
    loaded_at: str
    max_loaded_at: dt.datetime | None
    age_seconds: float | None
    state: str  # fresh | warn | error
    warn_after: str | None
    error_after: str | None
    message: str | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "loaded_at": self.loaded_at,
                "max_loaded_at": self.max_loaded_at.isoformat() if self.max_loaded_at else None,
                "age_seconds": self.age_seconds, "age": format_age(self.age_seconds), "state": self.state,
                "warn_after": self.warn_after, "error_after": self.error_after, "message": self.message}


def classify(age_seconds: float | None, warn_after: str | None, error_after: str | None) -> str:
    if age_seconds is None:
        return "error"
    if error_after is not None and age_seconds > duration_seconds(error_after):
        return "error"
    if warn_after is not None and age_seconds > duration_seconds(warn_after):
        return "warn"
    return "fresh"


def format_age(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = ([f"{days}d"] if days else []) + ([f"{hours}h"] if hours or days else []) + [f"{minutes}m"]
    return sign + " ".join(parts)


def monitored_models(catalog: Catalog) -> list[ModelInfo]:
    return [m for m in catalog.models.values() if m.definition.freshness is not None]


def freshness_query(model: ModelInfo) -> exp.Select:
    """SELECT MAX(<loaded_at>) FROM <the model's source>."""
    spec = model.definition.freshness
    loaded = parse_definition_expr(spec.loaded_at, None, what=f"freshness.loaded_at of {model.name}")
    loaded = loaded.transform(lambda n: exp.column(n.name, table=exp.to_identifier(model.name, quoted=True))
                              if isinstance(n, exp.Column) and not n.table else n)
    return exp.select(exp.alias_(exp.Max(this=loaded), "max_loaded_at")).from_(model.source.copy())


def _as_utc_naive(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime.fromisoformat(str(value))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def evaluate(model: ModelInfo, max_loaded_at, now: dt.datetime) -> SourceFreshness:
    """Pure: the state of one source given its newest load time."""
    spec = model.definition.freshness
    newest = _as_utc_naive(max_loaded_at)
    now = _as_utc_naive(now)
    age = (now - newest).total_seconds() if newest is not None else None
    state = classify(age, spec.warn_after, spec.error_after)
    message = "no rows" if newest is None else None
    return SourceFreshness(model.name, spec.loaded_at, newest, age, state, spec.warn_after, spec.error_after, message)


def freshness_report(catalog: Catalog, warehouse, now: dt.datetime | None = None) -> list[SourceFreshness]:
    """Each monitored source's newest load, age and state (what `/v1/status` reports)."""
    now = now or utc_now()
    report = []
    for model in monitored_models(catalog):
        try:
            _, rows = warehouse.execute(freshness_query(model).sql(dialect=warehouse.dialect))
            report.append(evaluate(model, rows[0][0] if rows else None, now))
        except CanonError as error:
            spec = model.definition.freshness
            report.append(SourceFreshness(model.name, spec.loaded_at, None, None, "error", spec.warn_after,
                                          spec.error_after, error.message))
    return report


def freshness_warnings(catalog: Catalog, report: list[SourceFreshness], metrics) -> list[str]:
    """Warnings for a query: each stale (warn or error) source that one of `metrics` reads."""
    stale = {s.model: s for s in report if s.state != "fresh"}
    if not stale:
        return []
    warnings = []
    for name in dict.fromkeys(metrics):
        facts = catalog.facts.get(name)
        if facts is None:
            continue
        for model in facts.models:
            if model in stale:
                s = stale[model]
                text = (f"metric '{name}' reads source '{s.model}', last loaded {format_age(s.age_seconds)} ago "
                        f"({s.state}: warn after {s.warn_after}, error after {s.error_after})"
                        if s.age_seconds is not None else f"metric '{name}' reads source '{s.model}', which has no rows")
                if text not in warnings:
                    warnings.append(text)
    return warnings
