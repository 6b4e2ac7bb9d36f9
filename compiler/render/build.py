"""Direct constructors for sqlglot nodes.

sqlglot's fluent builders (`select().join(...)`) re-parse their string arguments and deep-copy
the tree at each step; building nodes directly keeps a compile well under a millisecond.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlglot import exp

from ..catalog import alias_id


def ident(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=alias_id(table) if table else None)


def alias(expr: exp.Expression, name: str) -> exp.Alias:
    return exp.Alias(this=expr, alias=ident(name))


def table(name: str, as_: str | None = None) -> exp.Table:
    return exp.Table(this=exp.Identifier(this=name), alias=exp.TableAlias(this=ident(as_)) if as_ else None)


def subquery(query: exp.Expression, as_: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=ident(as_)))


def join(source: exp.Expression, on: exp.Expression | None = None, side: str = "LEFT") -> exp.Join:
    if on is None:
        return exp.Join(this=source, kind="CROSS")
    if side == "INNER":
        return exp.Join(this=source, kind="INNER", on=on)
    return exp.Join(this=source, side=side, on=on)


def _operand(condition: exp.Expression) -> exp.Expression:
    """AND binds tighter than OR: an OR operand needs its brackets, or it escapes the conjunction."""
    return exp.Paren(this=condition) if isinstance(condition, (exp.Or, exp.Xor)) else condition


def and_all(conditions: Sequence[exp.Expression]) -> exp.Expression | None:
    if not conditions:
        return None
    result = _operand(conditions[0]) if len(conditions) > 1 else conditions[0]
    for condition in conditions[1:]:
        result = exp.And(this=result, expression=_operand(condition))
    return result


def select(
    expressions: Iterable[exp.Expression],
    from_: exp.Expression,
    *,
    joins: Sequence[exp.Join] = (),
    where: Sequence[exp.Expression] = (),
    group: Sequence[exp.Expression] = (),
    order: Sequence[exp.Ordered] = (),
    limit: int | None = None,
    offset: int | None = None,
    distinct: bool = False,
    ctes: Sequence[tuple[str, exp.Expression]] = (),
) -> exp.Select:
    node = exp.Select(expressions=list(expressions), from_=exp.From(this=from_))
    if joins:
        node.set("joins", list(joins))
    condition = and_all(list(where))
    if condition is not None:
        node.set("where", exp.Where(this=condition))
    if group:
        node.set("group", exp.Group(expressions=list(group)))
    if order:
        node.set("order", exp.Order(expressions=list(order)))
    if limit is not None:
        node.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
    if offset:
        node.set("offset", exp.Offset(expression=exp.Literal.number(offset)))
    if distinct:
        node.set("distinct", exp.Distinct())
    if ctes:
        node.set("with_", exp.With(expressions=[
            exp.CTE(this=query, alias=exp.TableAlias(this=exp.Identifier(this=name))) for name, query in ctes]))
    return node


def null_safe_equal(left: Sequence[exp.Expression], right: Sequence[exp.Expression]) -> exp.Expression | None:
    return and_all([exp.NullSafeEQ(this=l, expression=r) for l, r in zip(left, right)])
