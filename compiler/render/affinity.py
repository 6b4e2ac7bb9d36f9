"""AffinityNode -> association-rule metrics per item pair (A, B), A ≠ B.

    support(A→B)    = n(A∧B) / N
    confidence(A→B) = n(A∧B) / n(A)
    lift(A→B)       = confidence(A→B) / (n(B) / N)

N counts the baskets in scope (after filters, per basket-level group), n(X) the baskets holding X.
CTEs: the basket lines in scope; basket, antecedent, consequent and pair counts; joined per pair.
When both sides use the same dimensions (product × product, category × category) a pair needs two
different values; otherwise (product × category) two different items.
"""

from __future__ import annotations

from sqlglot import exp

from ..catalog import Catalog
from ..plan import AffinityNode
from .aggregate import joins_for
from .build import alias, col, join, null_safe_equal, select, table

LINES, BASKETS, ANTE, CONS, ANTE_N, CONS_N, PAIRS = (
    "_canon_lines", "_canon_baskets", "_canon_antecedent", "_canon_consequent",
    "_canon_antecedent_n", "_canon_consequent_n", "_canon_pairs")
BASKET, ITEM, N, N_A, N_C, N_AC, A_OK, C_OK = (
    "_basket", "_item", "_n", "_n_a", "_n_c", "_n_ac", "_a_ok", "_c_ok")


def _ratio(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    return exp.Div(this=exp.cast(numerator, exp.DataType.Type.DOUBLE),
                   expression=exp.Nullif(this=denominator, expression=exp.Literal.number(0)))


def _count_baskets(table_alias: str | None = None) -> exp.Expression:
    return exp.Count(this=exp.Distinct(expressions=[col(BASKET, table_alias)]))


def render_affinity(catalog: Catalog, node: AffinityNode, resolved, **finish) -> exp.Select:
    g = [a for a, _ in node.groups]
    a = [a for a, _ in node.antecedent]
    c = [a for a, _ in node.consequent]
    by_item = not node.same_level
    definition = node.info.definition

    line_values = [alias(node.bridge.entities[definition.basket].expr.copy(), BASKET),
                   alias(node.bridge.entities[definition.item].expr.copy(), ITEM)]
    line_values += [alias(e.copy(), name) for name, e in node.groups + node.antecedent + node.consequent]
    for flag, condition in ((A_OK, node.antecedent_condition), (C_OK, node.consequent_condition)):
        if condition is not None:
            line_values.append(alias(condition.copy(), flag))
    lines = select(line_values, node.bridge.source.copy(), joins=joins_for(catalog, node.joins),
                   where=[x.copy() for x in node.conditions], distinct=True)

    def side(cols: list[str], flag: str, condition) -> exp.Select:
        keep = [BASKET] + g + ([ITEM] if by_item else []) + cols
        return select([col(k) for k in keep], table(LINES), distinct=True,
                      where=[col(flag)] if condition is not None else [])

    def count(source: str, cols: list[str], name: str) -> exp.Select:
        keys = g + cols
        return select([col(k) for k in keys] + [alias(_count_baskets(), name)], table(source),
                      group=[col(k) for k in keys])

    if by_item:
        differ = exp.NEQ(this=col(ITEM, "x"), expression=col(ITEM, "y"))
        pair_count = _count_baskets("x")
    else:
        differ = exp.Not(this=exp.Paren(this=null_safe_equal([col(k, "x") for k in a], [col(k, "y") for k in c])))
        pair_count = exp.Count(this=exp.Star())  # sides are distinct per basket: one row per pair
    pair_keys = [col(k, "x") for k in g + a] + [col(k, "y") for k in c]
    pairs = select(
        [k.copy() for k in pair_keys] + [alias(pair_count, N_AC)], table(ANTE, "x"),
        joins=[join(table(CONS, "y"), exp.And(this=exp.EQ(this=col(BASKET, "x"), expression=col(BASKET, "y")),
                                              expression=differ), side="INNER")],
        group=pair_keys)

    n, n_a, n_c, n_ac = col(N, "b"), col(N_A, "na"), col(N_C, "nc"), col(N_AC, "p")
    values = {
        "support": lambda: _ratio(n_ac.copy(), n.copy()),
        "confidence": lambda: _ratio(n_ac.copy(), n_a.copy()),
        "lift": lambda: _ratio(exp.Mul(this=n_ac.copy(), expression=n.copy()),
                               exp.Mul(this=n_a.copy(), expression=n_c.copy())),
        "pair_count": n_ac.copy, "antecedent_count": n_a.copy, "consequent_count": n_c.copy, "basket_count": n.copy,
    }
    joins = [join(table(ANTE_N, "na"), null_safe_equal([col(k, "p") for k in g + a], [col(k, "na") for k in g + a]),
                  side="INNER"),
             join(table(CONS_N, "nc"), null_safe_equal([col(k, "p") for k in g + c], [col(k, "nc") for k in g + c]),
                  side="INNER"),
             join(table(BASKETS, "b"), null_safe_equal([col(k, "p") for k in g], [col(k, "b") for k in g]),
                  side="INNER")]
    outputs = [alias(col(d.alias, "p"), d.alias) for d in resolved.dims]
    outputs += [alias(values[catalog.affinities[name].definition.returns](), name) for name, _ in resolved.outputs]
    ctes = [(LINES, lines), (BASKETS, count(LINES, [], N)),
            (ANTE, side(a, A_OK, node.antecedent_condition)), (CONS, side(c, C_OK, node.consequent_condition)),
            (ANTE_N, count(ANTE, a, N_A)), (CONS_N, count(CONS, c, N_C)), (PAIRS, pairs)]
    return select(outputs, table(PAIRS, "p"), joins=joins, ctes=ctes, **finish)
