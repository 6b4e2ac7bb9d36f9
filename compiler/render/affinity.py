"""AffinityNode -> association-rule metrics per item pair (A, B), A ≠ B.

    support(A→B)    = n(A∧B) / N
    confidence(A→B) = n(A∧B) / n(A)
    lift(A→B)       = confidence(A→B) / (n(B) / N)

N counts the baskets in scope (after filters, per basket-level group), n(X) the baskets holding X.
CTEs: the distinct basket lines in scope; the antecedent and consequent rows (the lines themselves
when both sides use the same dimensions and no side filter); the pair counts, joined to only the
counts the requested values read. When both sides use the same dimensions (product × product,
category × category) a pair needs two different values; otherwise (product × category) two
different items, so only then do the lines keep the item.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from ..catalog import Catalog
from ..plan import AffinityNode
from .joins import joins_for
from .labels import aliased, label_join, requalify
from .build import alias, col, join, null_safe_equal, select, table

LINES, BASKETS, ANTE, CONS, ANTE_N, CONS_N, PAIRS = (
    "_canon_lines", "_canon_baskets", "_canon_antecedent", "_canon_consequent",
    "_canon_antecedent_n", "_canon_consequent_n", "_canon_pairs")
BASKET, ITEM, N, N_A, N_C, N_AC, A_OK, C_OK = (
    "_basket", "_item", "_n", "_n_a", "_n_c", "_n_ac", "_a_ok", "_c_ok")
A_KEY, C_KEY, A_LABELS, C_LABELS = "_canon_a_key", "_canon_c_key", "_canon_a", "_canon_c"


def _ratio(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    return exp.Div(this=exp.cast(numerator, exp.DataType.Type.DOUBLE),
                   expression=exp.Nullif(this=denominator, expression=exp.Literal.number(0)))


def _count_baskets(table_alias: str | None = None) -> exp.Expression:
    return exp.Count(this=exp.Distinct(expressions=[col(BASKET, table_alias)]))


# the counts each returned value reads (n_ac is always there: a row is a pair seen together)
NEEDS = {"support": {N}, "confidence": {N_A}, "lift": {N, N_A, N_C}, "pair_count": set(),
         "antecedent_count": {N_A}, "consequent_count": {N_C}, "basket_count": {N}}


def render_affinity(catalog: Catalog, node: AffinityNode, resolved, **finish) -> exp.Select:
    labelled = None
    if node.same_level and node.antecedent_condition is None and node.consequent_condition is None:
        labelled = label_join(catalog, node.bridge, node.joins, node.antecedent, list(node.conditions)
                              + [e for _, e in node.groups])
    if labelled is None:
        return _render(catalog, node, resolved, [alias(col(d.alias, "p"), d.alias) for d in resolved.dims], [], finish)
    # pairs of item keys (ids), their labels attached to the pairs: see render/labels.py
    target = labelled.edge.target
    keyed = replace(node, antecedent=((A_KEY, labelled.key),), consequent=((C_KEY, labelled.key),),
                    joins=tuple(e for e in node.joins if e is not labelled.edge))
    sides = {**{a: (e, A_LABELS) for a, e in node.antecedent}, **{a: (e, C_LABELS) for a, e in node.consequent}}
    dims = [alias(requalify(sides[d.alias][0], target, sides[d.alias][1]) if d.alias in sides else col(d.alias, "p"),
                  d.alias) for d in resolved.dims]
    source, key = catalog.models[target].source, catalog.models[target].entities[labelled.edge.entity].expr
    labels = [join(aliased(source, name), exp.EQ(this=requalify(key, target, name), expression=col(side_key, "p")),
                   side="INNER") for name, side_key in ((A_LABELS, A_KEY), (C_LABELS, C_KEY))]
    return _render(catalog, keyed, resolved, dims, labels, finish)


def _render(catalog: Catalog, node: AffinityNode, resolved, dims: list[exp.Expression], label_joins: list[exp.Join],
            finish: dict) -> exp.Select:
    g = [a for a, _ in node.groups]
    a = [a for a, _ in node.antecedent]
    c = [a for a, _ in node.consequent]
    by_item = not node.same_level
    definition = node.info.definition
    returns = [catalog.affinities[name].definition.returns for name, _ in resolved.outputs]
    needs = set().union(*(NEEDS[r] for r in returns))
    # same dimensions on both sides: the lines carry them once, and without side filters the
    # antecedent and consequent rows are the lines themselves (one DISTINCT step for both)
    shared = node.same_level and node.antecedent_condition is None and node.consequent_condition is None
    c_in_lines = a if node.same_level else c  # the lines' columns the consequent reads

    line_values = [alias(node.bridge.entities[definition.basket].expr.copy(), BASKET)]
    if by_item:  # pairs of different items; at the same level pairs of different values suffice
        line_values.append(alias(node.bridge.entities[definition.item].expr.copy(), ITEM))
    line_values += [alias(e.copy(), name) for name, e in node.groups + node.antecedent]
    if not node.same_level:
        line_values += [alias(e.copy(), name) for name, e in node.consequent]
    for flag, condition in ((A_OK, node.antecedent_condition), (C_OK, node.consequent_condition)):
        if condition is not None:
            line_values.append(alias(condition.copy(), flag))
    lines = select(line_values, node.bridge.source.copy(), joins=joins_for(catalog, node.joins, node.conditions),
                   where=[x.copy() for x in node.conditions], distinct=True)

    def side(cols: list[str], flag: str, condition) -> exp.Select:
        keep = [BASKET] + g + ([ITEM] if by_item else []) + cols
        return select([col(k) for k in keep], table(LINES), distinct=True,
                      where=[col(flag)] if condition is not None else [])

    def count(source: str, cols: list[str], name: str) -> exp.Select:
        keys = g + cols
        # a side holds each (basket, value) once: at the same level COUNT(*) counts the baskets
        value = exp.Count(this=exp.Star()) if node.same_level and cols else _count_baskets()
        return select([col(k) for k in keys] + [alias(value, name)], table(source), group=[col(k) for k in keys])

    ante_source, cons_source = (LINES, LINES) if shared else (ANTE, CONS)
    if by_item:
        differ = exp.NEQ(this=col(ITEM, "x"), expression=col(ITEM, "y"))
        pair_count = _count_baskets("x")
    else:
        differ = exp.Not(this=exp.Paren(this=null_safe_equal([col(k, "x") for k in a],
                                                             [col(k, "y") for k in c_in_lines])))
        pair_count = exp.Count(this=exp.Star())  # sides are distinct per basket: one row per pair
    pair_keys = [col(k, "x") for k in g + a] + [col(k, "y") for k in c_in_lines]
    pairs = select(
        [k.copy() for k in pair_keys[:len(g + a)]]
        + [alias(k.copy(), name) for k, name in zip(pair_keys[len(g + a):], c)] + [alias(pair_count, N_AC)],
        table(ante_source, "x"),
        joins=[join(table(cons_source, "y"), exp.And(this=exp.EQ(this=col(BASKET, "x"), expression=col(BASKET, "y")),
                                                     expression=differ), side="INNER")],
        group=pair_keys)

    n, n_a, n_c, n_ac = col(N, "b"), col(N_A, "na"), col(N_C, "nc"), col(N_AC, "p")
    ctes = [(LINES, lines)]
    if not shared:
        ctes += [(ANTE, side(a, A_OK, node.antecedent_condition)),
                 (CONS, side(c_in_lines, C_OK, node.consequent_condition))]
    joins = []
    # every pair's antecedent (consequent, group) has a count: these INNER joins keep every pair
    if N_A in needs:
        ctes.append((ANTE_N, count(ante_source, a, N_A)))
        joins.append(join(table(ANTE_N, "na"), null_safe_equal([col(k, "p") for k in g + a],
                                                               [col(k, "na") for k in g + a]), side="INNER"))
    if N_C in needs:
        if shared:  # the consequents' counts are the antecedents' counts, read under the other name
            if N_A not in needs:
                ctes.append((ANTE_N, count(ante_source, a, N_A)))
            nc_table, nc_keys, nc_value = ANTE_N, a, N_A
        else:
            ctes.append((CONS_N, count(cons_source, c_in_lines, N_C)))
            nc_table, nc_keys, nc_value = CONS_N, c_in_lines, N_C
        joins.append(join(table(nc_table, "nc"), null_safe_equal([col(k, "p") for k in g + c],
                                                                 [col(k, "nc") for k in g + nc_keys]), side="INNER"))
        n_c = col(nc_value, "nc")
    if N in needs:
        ctes.append((BASKETS, count(LINES, [], N)))
        joins.append(join(table(BASKETS, "b"), null_safe_equal([col(k, "p") for k in g], [col(k, "b") for k in g]),
                          side="INNER"))
    ctes.append((PAIRS, pairs))
    values = {
        "support": lambda: _ratio(n_ac.copy(), n.copy()),
        "confidence": lambda: _ratio(n_ac.copy(), n_a.copy()),
        "lift": lambda: _ratio(exp.Mul(this=n_ac.copy(), expression=n.copy()),
                               exp.Mul(this=n_a.copy(), expression=n_c.copy())),
        "pair_count": n_ac.copy, "antecedent_count": n_a.copy, "consequent_count": n_c.copy, "basket_count": n.copy,
    }
    outputs = dims + [alias(values[r](), name) for r, (name, _) in zip(returns, resolved.outputs)]
    return select(outputs, table(PAIRS, "p"), joins=joins + label_joins, ctes=ctes, **finish)
