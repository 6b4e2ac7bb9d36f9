"""Data tests declared next to the semantic models, run on the warehouse by `canon test`.

    tests:
      - {type: not_null, column: campaign_id}
      - {type: unique, columns: [campaign_id, spend_date, country_code]}
      - {type: accepted_values, column: status, values: [completed, cancelled, returned]}
      - {type: relationships, column: customer_id, to: customer}          # to.field defaults to its primary key
      - {type: expression, expr: spend >= 0}                              # must hold on every row
      - {type: funnel, group_by: [campaign_id, CAST(created_at AS DATE) AS created_on], steps: [leads, meetings]}
      - {type: sequence, before: customer.signup_at, after: ordered_at}   # joined along the entity graph

Each test becomes one sqlglot query selecting the failing rows of the model's source (after
`deduplicate`); the runner counts them and keeps a few as samples. No SQL is built from text: the
columns and expressions are parsed once by `compiler.sqlexpr` and placed into expression trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from canon.compiler import model as m
from canon.compiler.catalog import Catalog, ModelInfo, alias_id
from canon.compiler.errors import CanonError, ConfigError, did_you_mean
from canon.compiler.sqlexpr import parse_definition_expr

TARGET_ALIAS = "_canon_to"


@dataclass(frozen=True)
class TestCase:
    model: str
    name: str
    type: str
    severity: str
    query: exp.Select  # the failing rows


@dataclass
class TestResult:
    model: str
    name: str
    type: str
    severity: str
    status: str  # pass | fail | error
    failures: int = 0
    columns: list[str] = field(default_factory=list)
    sample: list[list] = field(default_factory=list)
    sql: str = ""
    message: str | None = None

    def to_dict(self) -> dict:
        from canon.server.results import json_value

        return {"model": self.model, "name": self.name, "type": self.type, "severity": self.severity,
                "status": self.status, "failures": self.failures, "columns": self.columns,
                "sample": [[json_value(v) for v in row] for row in self.sample], "sql": self.sql,
                "message": self.message}


# --- building --------------------------------------------------------------------------------


def test_name(test) -> str:
    if test.name:
        return test.name
    part = {"not_null": lambda t: t.column, "unique": lambda t: "_".join(t.columns),
            "accepted_values": lambda t: t.column, "relationships": lambda t: f"{t.column}_to_{t.to}",
            "expression": lambda t: t.expr, "funnel": lambda t: "_ge_".join(t.steps),
            "sequence": lambda t: f"{t.before}_before_{t.after}"}[test.type](test)
    return f"{test.type}({part})"


def _expr(model: ModelInfo, text: str, what: str, alias: str | None = None) -> exp.Expression:
    tree = parse_definition_expr(text, None, what=f"test on {model.name}: {what}")
    table = alias_id(alias or model.name)
    return tree.transform(lambda n: exp.column(n.this.copy(), table=table.copy())
                          if isinstance(n, exp.Column) and not n.table else n)


def _source(model: ModelInfo, alias: str | None = None) -> exp.Expression:
    source = model.source.copy()
    if alias:
        source.set("alias", exp.TableAlias(this=alias_id(alias)))
    return source


def _all_columns(model: ModelInfo) -> exp.Column:
    return exp.Column(this=exp.Star(), table=alias_id(model.name))


def build_tests(catalog: Catalog, model_name: str | None = None) -> list[TestCase]:
    """Every declared test as a query for its failing rows; bad declarations raise ConfigError."""
    cases = []
    for model in catalog.models.values():
        if model_name and model.name != model_name:
            continue
        for test in model.definition.tests:
            query = _BUILDERS[test.type](catalog, model, test)
            cases.append(TestCase(model.name, test_name(test), test.type, test.severity, query))
    return cases


def check_tests(catalog: Catalog) -> list[CanonError]:
    """Problems in test and freshness declarations, for `canon validate` (no warehouse needed)."""
    from .freshness import freshness_query

    problems = []
    for model in catalog.models.values():
        where = model.definition.location_of("name")
        for test in model.definition.tests:
            try:
                _BUILDERS[test.type](catalog, model, test)
            except CanonError as error:
                problems.append(ConfigError(f"{model.name} test {test_name(test)}: {error.message}",
                                            location=where, hint=error.hint))
        if model.definition.freshness:
            try:
                freshness_query(model)
            except CanonError as error:
                problems.append(ConfigError(f"{model.name} freshness: {error.message}", location=where,
                                            hint=error.hint))
    return problems


def _base(model: ModelInfo) -> exp.Select:
    return exp.select(_all_columns(model)).from_(_source(model))


def _not_null(catalog, model, test: m.NotNullTest) -> exp.Select:
    return _base(model).where(exp.Is(this=_expr(model, test.column, "column"), expression=exp.Null()))


def _unique(catalog, model, test: m.UniqueTest) -> exp.Select:
    cols = [_expr(model, c, "column") for c in test.columns]
    names = [c.name if isinstance(c, exp.Column) else f"key_{i}" for i, c in enumerate(cols)]
    count = exp.Count(this=exp.Star())
    query = exp.select(*(exp.alias_(c.copy(), n) for c, n in zip(cols, names)),
                       exp.alias_(count, "row_count")).from_(_source(model))
    for c in cols:
        query = query.where(exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())))
    query = query.group_by(*(c.copy() for c in cols))
    return query.having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)))


def _accepted_values(catalog, model, test: m.AcceptedValuesTest) -> exp.Select:
    column = _expr(model, test.column, "column")
    allowed = exp.In(this=column, expressions=[exp.convert(v) for v in test.values])
    return _base(model).where(exp.Not(this=allowed))


def _relationships(catalog, model, test: m.RelationshipsTest) -> exp.Select:
    target = catalog.model_for(test.to)
    if target is None:
        raise ConfigError(f"relationships: unknown model or entity '{test.to}'",
                          hint=did_you_mean(test.to, catalog.qualifiers()))
    if test.field:
        key = _expr(target, test.field, "field", TARGET_ALIAS)
    else:
        primary = target.primary
        if primary is None:
            raise ConfigError(f"relationships: model '{target.name}' has no primary entity",
                              hint="name the column with `field:`")
        key = primary.expr.transform(lambda n: exp.column(n.this.copy(), table=alias_id(TARGET_ALIAS))
                                     if isinstance(n, exp.Column) else n)
    column = _expr(model, test.column, "column")
    return (_base(model)
            .join(_source(target, TARGET_ALIAS), on=exp.EQ(this=column.copy(), expression=key.copy()), join_type="left")
            .where(exp.and_(exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())),
                            exp.Is(this=key.copy(), expression=exp.Null()))))


def _expression(catalog, model, test: m.ExpressionTest) -> exp.Select:
    return _base(model).where(exp.Not(this=exp.Paren(this=_expr(model, test.expr, "expr"))))


_AGGREGATES = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}


def _aggregate(model: ModelInfo, step: str) -> exp.Expression:
    measure = model.measures.get(step)
    if measure is None:
        raise ConfigError(f"funnel: '{step}' is not a measure of model '{model.name}'",
                          hint=did_you_mean(step, model.measures))
    arg = measure.expr.copy() if measure.expr is not None else exp.Star()
    if measure.agg == "count":
        return exp.Count(this=arg)
    if measure.agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[arg]))
    if measure.agg in _AGGREGATES:
        return _AGGREGATES[measure.agg](this=arg)
    raise ConfigError(f"funnel: measure '{step}' aggregates with {measure.agg}; steps must be counts or sums")


def _funnel(catalog, model, test: m.FunnelTest) -> exp.Select:
    groups, names = [], []
    for i, text in enumerate(test.group_by):
        tree = _expr(model, text, "group_by")
        if isinstance(tree, exp.Alias):
            names.append(tree.alias)
            tree = tree.this
        else:
            names.append(tree.name if isinstance(tree, exp.Column) else f"group_{i}")
        groups.append(tree)
    steps = [_aggregate(model, s) for s in test.steps]
    query = exp.select(*(exp.alias_(g.copy(), n) for g, n in zip(groups, names)),
                       *(exp.alias_(s.copy(), n) for s, n in zip(steps, test.steps))).from_(_source(model))
    query = query.group_by(*(g.copy() for g in groups))
    broken = [exp.LT(this=a.copy(), expression=b.copy()) for a, b in zip(steps, steps[1:])]
    return query.having(exp.or_(*broken) if len(broken) > 1 else broken[0])


def _sequence(catalog, model, test: m.SequenceTest) -> exp.Select:
    from canon.compiler.refs import resolve_dimension

    joins: dict[str, exp.Expression] = {}

    def side(text: str, role: str) -> exp.Expression:
        if "." not in text:
            return model.dimensions[text].expr.copy() if text in model.dimensions else _expr(model, text, role)
        dim = resolve_dimension(catalog, text)
        if dim.model != model.name:
            path = catalog.path(model.name, dim.model)
            if any(step.fanout for step in path):
                raise ConfigError(f"sequence: '{text}' is on the many side of {model.name}",
                                  hint="compare with a model that has one row per row of this one")
            for step in path:
                if step.target not in joins:
                    left = catalog.models[step.source].entities[step.entity].expr.copy()
                    right = catalog.models[step.target].entities[step.entity].expr.copy()
                    joins[step.target] = exp.EQ(this=left, expression=right)
        return dim.expr.copy()

    before, after = side(test.before, "before"), side(test.after, "after")
    query = exp.select(_all_columns(model), exp.alias_(before.copy(), "before_value"),
                       exp.alias_(after.copy(), "after_value")).from_(_source(model))
    for target, on in joins.items():
        query = query.join(_source(catalog.models[target]), on=on, join_type="left")
    return query.where(exp.LT(this=after, expression=before))


_BUILDERS = {"not_null": _not_null, "unique": _unique, "accepted_values": _accepted_values,
             "relationships": _relationships, "expression": _expression, "funnel": _funnel,
             "sequence": _sequence}


# --- running ---------------------------------------------------------------------------------


def run_case(case: TestCase, warehouse, *, sample_size: int = 5) -> TestResult:
    dialect = warehouse.dialect
    failing = case.query
    count = exp.select(exp.alias_(exp.Count(this=exp.Star()), "failures")).from_(failing.subquery("_canon_failing"))
    sample = failing.copy().limit(sample_size)
    result = TestResult(case.model, case.name, case.type, case.severity, "pass", sql=failing.sql(dialect=dialect))
    try:
        _, rows = warehouse.execute(count.sql(dialect=dialect))
        result.failures = int(rows[0][0])
        if result.failures:
            result.status = "fail"
            result.columns, result.sample = warehouse.execute(sample.sql(dialect=dialect))
            result.sample = [list(r) for r in result.sample]
    except CanonError as error:
        result.status, result.message = "error", error.message
    return result


def run_data_tests(catalog: Catalog, warehouse, *, model: str | None = None, sample_size: int = 5) -> list[TestResult]:
    if model and catalog.model_for(model) is None:
        from canon.compiler.errors import UnknownNameError

        raise UnknownNameError(f"unknown semantic model '{model}'", hint=did_you_mean(model, catalog.models))
    name = catalog.model_for(model).name if model else None
    return [run_case(case, warehouse, sample_size=sample_size) for case in build_tests(catalog, name)]
