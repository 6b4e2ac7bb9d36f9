"""The only module that parses SQL text.

Two kinds of text arrive here:
- definition expressions written by catalog authors (measure, dimension and entity expressions,
  model SQL), parsed once when the catalog is built;
- filters written by users, parsed per request and checked node by node against an allow-list:
  boolean logic, comparisons, IN over literals, BETWEEN, LIKE, IS NULL, arithmetic, literals,
  dimension references and a few harmless functions. Anything else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from .errors import ConfigError, FilterError, Location
from .metric_filters import MetricRef, recognize  # filters on metrics: metric(order_count, by=customer) >= 3

# Canon's own expression language is the ANSI-ish default dialect; output is rendered per warehouse.
SOURCE_DIALECT = "duckdb"

_FILTER_NODES: tuple[type[exp.Expression], ...] = (
    exp.And, exp.Or, exp.Not, exp.Paren,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg,
    exp.Literal, exp.Boolean, exp.Null, exp.Tuple,
    exp.Column, exp.Identifier,
    exp.Cast, exp.DataType, exp.Interval, exp.Var,
    exp.Lower, exp.Upper, exp.Coalesce, exp.Abs, exp.Length, exp.Trim,
    exp.CurrentDate, exp.CurrentTimestamp,
)
_FILTER_TYPES = {
    exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.INT,
    exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.TIMESTAMPTZ,  # how `TIMESTAMP` may parse
    exp.DataType.Type.BIGINT, exp.DataType.Type.DOUBLE, exp.DataType.Type.DECIMAL,
    exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.BOOLEAN,
}
_FORBIDDEN_IN_DEFINITIONS = (exp.Query, exp.Subquery, exp.DDL, exp.DML, exp.Command, exp.Placeholder)


@dataclass(frozen=True)
class ParsedFilter:
    """A checked filter: its AST and the dimension references it names, in order."""

    condition: exp.Expression
    refs: tuple[str, ...]


def _lean(tree: exp.Expression) -> exp.Expression:
    """Drop token positions and comments: trees are copied on every compile, and copying the
    position metadata sqlglot keeps per node costs more than the rest of the copy."""
    for node in tree.walk():
        node._meta = None
        node.comments = None
    return tree


def column_ref(column: exp.Column) -> str:
    """`order.ordered_at.month` as written, from a parsed Column node."""
    return ".".join(part.name for part in column.parts)


def parse_filter(text: str | exp.Expression, *, field: str = "where") -> ParsedFilter:
    """Parse a user filter and check it against the allow-list. A front end that built the condition
    itself (structured filters, SQL over the wire) hands the tree: it is checked the same way, never
    rendered to text and parsed again."""
    if isinstance(text, exp.Expression):
        return check_filter(text.copy(), field=field, text=text.sql(SOURCE_DIALECT)[:200])
    if not isinstance(text, str) or not text.strip():
        raise FilterError("a filter must be a non-empty boolean expression",
                          location=Location(path=field))
    try:
        tree = sqlglot.parse_one(text, dialect=SOURCE_DIALECT, into=exp.Condition)
    except (ParseError, TokenError) as error:
        raise FilterError(
            f"{text[:200]!r} is not a boolean expression over dimensions",
            location=Location(path=field),
            hint=f"write e.g. \"product.category = 'Coffee' AND customer.country_code IN ('US', 'GB')\" ({_first_line(error)})",
        ) from None
    except RecursionError:  # the parser recurses per nesting level: a bound of its own, not a bug
        raise FilterError(f"the filter nests too deeply to parse ({text_depth(text)} levels)",
                          location=Location(path=field), hint="flatten it: AND/OR chains and IN (...) need no nesting") from None
    if _has_comment(text) or any(node.comments for node in tree.walk()):
        raise FilterError("comments (-- or /* */) are not allowed in a filter",
                          location=Location(path=field),
                          hint="remove the comment; a filter is a single boolean expression")
    return check_filter(tree, field=field, text=text)


def check_filter(tree: exp.Expression, *, field: str = "where", text: str = "") -> ParsedFilter:
    """Walk every node of a filter against the allow-list (the tree is kept and may be changed)."""
    tree = recognize(tree, field)  # metric(order_count, by=customer): a filter on another metric
    refs: list[str] = []
    for node in tree.walk():
        if not isinstance(node, _FILTER_NODES + (MetricRef,)):
            raise FilterError(
                f"{node.sql(SOURCE_DIALECT)[:60]!r} is not allowed in a filter",
                location=Location(path=field),
                hint="filters may use dimensions, literals, comparisons, AND/OR/NOT, IN (...), BETWEEN, "
                     "LIKE, IS NULL, arithmetic and lower/upper/coalesce/abs/length/trim",
            )
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest") or node.args.get("field")):
            raise FilterError("IN takes a list of literal values, not a subquery",
                              location=Location(path=field))
        if isinstance(node, exp.DataType) and node.this not in _FILTER_TYPES:
            raise FilterError(f"cast to {node.sql()} is not allowed",
                              location=Location(path=field),
                              hint="cast only to date, timestamp, integer, bigint, double, decimal, varchar or boolean")
        if isinstance(node, exp.Literal) and node.is_string and "\x00" in node.this:
            # PostgreSQL's protocol ends text at a NUL byte, and no engine stores one in text
            raise FilterError("a text value in a filter contains a NUL character (\\x00)",
                              location=Location(path=field), hint="remove the NUL character from the value")
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise FilterError("'*' is not a dimension", location=Location(path=field))
            refs.append(column_ref(node))
    depth = tree_depth(tree)
    if depth > MAX_DEPTH:
        raise FilterError(f"the filter nests {depth} levels deep, more than {MAX_DEPTH}",
                          location=Location(path=field), hint="flatten it: AND/OR chains and IN (...) need no nesting")
    # a bare column is allowed: a boolean dimension is a filter by itself (order.is_attributed)
    if not isinstance(tree, exp.Condition) or isinstance(tree, exp.Literal):
        raise FilterError(f"{text!r} is not a boolean expression",
                          location=Location(path=field),
                          hint="compare a dimension with a value, e.g. customer.segment = 'enterprise'")
    if isinstance(tree, exp.Connector) and not isinstance(tree, exp.And):
        # `a OR b` is ANDed with other conditions later: keep it one operand
        tree = exp.Paren(this=tree)
    return ParsedFilter(condition=_lean(tree), refs=tuple(refs))


MAX_DEPTH = 100  # a ceiling for any configured limit: deeper trees overflow the parser and the renderer
_PREFIX = (TokenType.NOT, TokenType.DASH)


def text_depth(text: str) -> int:
    """How deeply a filter nests (parentheses, and runs of NOT or unary minus), from its tokens: before
    parsing, which recurses once per level."""
    try:
        tokens = sqlglot.tokenize(text, read=SOURCE_DIALECT)
    except (ParseError, TokenError):
        return 0  # the parser reports what is wrong with it
    depth = deepest = run = 0
    for token in tokens:
        kind = token.token_type
        run = run + 1 if kind in _PREFIX else 0
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        deepest = max(deepest, depth + run)
    return deepest


_NESTING = (exp.Paren, exp.Not, exp.Neg, exp.Func, exp.Tuple, exp.In, exp.Cast)


def tree_depth(tree: exp.Expression) -> int:
    """How deeply a condition tree nests (parentheses, NOT, function calls, IN lists), counted without
    recursion: a chain of AND or OR (a flat list) is one level, as written."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _NESTING) and not isinstance(node, (exp.Connector, exp.Binary)):  # AND/OR are Funcs too
            depth += 1
            deepest = max(deepest, depth)
        stack.extend((child, depth) for child in node.iter_expressions())
    return deepest


def _has_comment(text: str) -> bool:
    try:
        return any(token.comments for token in sqlglot.tokenize(text, read=SOURCE_DIALECT))
    except (ParseError, TokenError):
        return False


def parse_definition_expr(text: str, location: Location, *, what: str) -> exp.Expression:
    """Parse an author's SQL expression (measure, dimension, entity); subqueries are refused."""
    try:
        tree = sqlglot.parse_one(str(text), dialect=SOURCE_DIALECT)
    except (ParseError, TokenError) as error:
        raise ConfigError(f"{what}: cannot parse {text!r}", location=location,
                          hint=f"write a SQL expression over the model's columns ({_first_line(error)})") from None
    bad = tree.find(*_FORBIDDEN_IN_DEFINITIONS)
    if bad is not None or isinstance(tree, _FORBIDDEN_IN_DEFINITIONS):
        raise ConfigError(f"{what}: {text!r} must be a plain expression, not a query or statement",
                          location=location, hint="move the logic into the model's `sql:` instead")
    return _lean(tree)


def parse_model_sql(text: str, location: Location) -> exp.Query:
    try:
        tree = sqlglot.parse_one(text, dialect=SOURCE_DIALECT)
    except (ParseError, TokenError) as error:
        raise ConfigError("model sql: cannot parse the query", location=location,
                          hint=_first_line(error)) from None
    if not isinstance(tree, exp.Query):
        raise ConfigError("model sql: must be a SELECT query", location=location)
    return _lean(tree)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200]
