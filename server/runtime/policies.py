"""Access policies from canon.yml, parsed and checked once, evaluated per identity.

    access:
      default: deny                  # a user no policy matches sees nothing (`allow`: an open catalog)
      policies:
        - name: country_managers
          when: "user.role = 'country_manager'"
          row_filter: "customer.country_code = {{ user.country }}"
          deny: [ad_spend, cac, "customer.*"]        # metrics or dimensions; shell-style globs

`when` is a small boolean language over the user's claims (`user.<claim>`): `=`, `<>`/`!=`, `<`, `<=`,
`>`, `>=`, `IN (...)`, `IS [NOT] NULL`, `AND`, `OR`, `NOT`, parentheses, string/number/boolean
literals. A comparison with a list claim holds when it holds for one element (`user.groups = 'x'`).
A missing claim makes the comparison false: the policy does not match (fail closed).

`row_filter` is a filter over dimensions, as in `--where`, whose `{{ user.<claim> }}` placeholders
become literals when a query runs (a list claim makes `=` an `IN`; a missing or nested claim refuses
the query). The template is parsed once; claim values are never pasted into SQL text.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from sqlglot import exp, parse_one
from sqlglot.errors import SqlglotError

from canon.compiler.errors import AccessDeniedError, ConfigError

PLACEHOLDER_TABLE = "__canon_user__"
MAX_LIST_CLAIM = 1000  # elements of a list claim that may become an IN list
_MISSING = object()


@dataclass(frozen=True)
class Policy:
    name: str
    when: exp.Expression | None  # None: every user
    row_filter: exp.Expression | None  # with PLACEHOLDER_TABLE columns for claims
    row_filter_text: str | None
    deny: tuple[str, ...]

    def matches(self, claims: dict) -> bool:
        if self.when is None:
            return True
        try:
            return _truth(_evaluate(self.when, claims)) is True
        except _Unknown:
            return False

    def bound_filter(self, claims: dict) -> exp.Expression | None:
        """The row filter with this user's claims as literals."""
        if self.row_filter is None:
            return None
        return _bind_claims(self.row_filter.copy(), claims, self.name)


@dataclass(frozen=True)
class AccessConfig:
    default: str = "allow"
    policies: tuple[Policy, ...] = ()
    configured: bool = False

    @classmethod
    def from_config(cls, config: dict) -> "AccessConfig":
        section = config.get("access")
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError("canon.yml: `access` must be a mapping", hint="access: {default: deny, policies: [...]}")
        unknown = sorted(set(section) - {"default", "policies"})
        if unknown:
            raise ConfigError(f"canon.yml: access.{unknown[0]} is not a known setting", hint="valid: default, policies")
        default = section.get("default", "deny")
        if default not in ("allow", "deny"):
            raise ConfigError(f"canon.yml: access.default is {default!r}", hint="valid choices: allow, deny")
        raw = section.get("policies") or []
        if not isinstance(raw, list):
            raise ConfigError("canon.yml: access.policies must be a list of policies")
        policies, names = [], set()
        for i, spec in enumerate(raw):
            policy = _policy(spec, f"access.policies[{i}]")
            if policy.name in names:
                raise ConfigError(f"canon.yml: access.policies[{i}]: the name {policy.name!r} is used twice")
            names.add(policy.name)
            policies.append(policy)
        return cls(default, tuple(policies), True)

    def matching(self, claims: dict) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if p.matches(claims))


def _policy(spec, where: str) -> Policy:
    if not isinstance(spec, dict):
        raise ConfigError(f"canon.yml: {where} must be a mapping", hint="name, when, row_filter, deny")
    unknown = sorted(set(spec) - {"name", "when", "row_filter", "deny", "description"})
    if unknown:
        raise ConfigError(f"canon.yml: {where}.{unknown[0]} is not a known setting",
                          hint="valid: name, when, row_filter, deny, description")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"canon.yml: {where} needs a `name`")
    where = f"access policy {name!r}"
    when = _parse_when(spec["when"], where) if spec.get("when") not in (None, True) else None
    template = spec.get("row_filter")
    row_filter = _parse_template(str(template), where) if template else None
    deny = spec.get("deny") or []
    if isinstance(deny, str):
        deny = [deny]
    if not isinstance(deny, list) or not all(isinstance(d, str) and d for d in deny):
        raise ConfigError(f"canon.yml: {where}: `deny` must be a list of metric or dimension names (globs allowed)")
    return Policy(name, when, row_filter, str(template) if template else None, tuple(deny))


# --- when: a boolean over claims -----------------------------------------------------------------------

_WHEN_NODES = (exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In,
               exp.Is, exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Tuple, exp.Neg)


def _parse_when(text, where: str) -> exp.Expression:
    try:
        tree = parse_one(str(text), dialect="postgres")
    except SqlglotError as error:
        raise ConfigError(f"canon.yml: {where}: `when` does not parse: {str(error).splitlines()[0]}") from None
    for node in tree.walk():
        if not isinstance(node, _WHEN_NODES):
            raise ConfigError(f"canon.yml: {where}: `when` may not use {node.key.upper()}",
                              hint="write comparisons of user.<claim> with literals, joined by AND / OR / NOT")
        if isinstance(node, exp.Column) and node.table != "user":
            raise ConfigError(f"canon.yml: {where}: `when` names {node.sql()!r}; it can only read user.<claim>")
    return tree


class _Unknown(Exception):
    """A claim the token does not have: the condition is not true."""


def _evaluate(node: exp.Expression, claims: dict):
    if isinstance(node, exp.Paren):
        return _evaluate(node.this, claims)
    if isinstance(node, exp.And):
        return _truth(_evaluate(node.this, claims)) and _truth(_evaluate(node.expression, claims))
    if isinstance(node, exp.Or):
        return _truth(_evaluate(node.this, claims)) or _truth(_evaluate(node.expression, claims))
    if isinstance(node, exp.Not):
        return not _truth(_evaluate(node.this, claims))
    if isinstance(node, exp.Column):
        value = claims.get(node.name, _MISSING)
        if value is _MISSING:
            raise _Unknown(node.name)
        return value
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else float(node.this)
    if isinstance(node, exp.Neg):
        return -float(_evaluate(node.this, claims))
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Is):
        value = claims.get(node.this.name, None) if isinstance(node.this, exp.Column) else _evaluate(node.this, claims)
        return value is None
    if isinstance(node, exp.In):
        left = _evaluate(node.this, claims)
        options = [_evaluate(e, claims) for e in node.expressions]
        return any(_equal(left, o) for o in options)
    if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        left, right = _evaluate(node.this, claims), _evaluate(node.expression, claims)
        return _compare(type(node), left, right)
    raise _Unknown(node.key)


def _truth(value) -> bool:
    return value is True


def _scalar(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    raise _Unknown("not a scalar")


def _equal(left, right) -> bool:
    if isinstance(left, list):
        return any(_equal(item, right) for item in left)
    if isinstance(right, list):
        return any(_equal(left, item) for item in right)
    return _scalar(left) == _scalar(right)


def _compare(kind, left, right) -> bool:
    if kind is exp.EQ:
        return _equal(left, right)
    if kind is exp.NEQ:
        return not _equal(left, right)
    if isinstance(left, list) or isinstance(right, list):
        return any(_compare(kind, l, right) for l in left) if isinstance(left, list) else \
            any(_compare(kind, left, r) for r in right)
    a, b = _scalar(left), _scalar(right)
    if a is None or b is None or type(a) is not type(b) or isinstance(a, bool):
        return False
    return {exp.GT: a > b, exp.GTE: a >= b, exp.LT: a < b, exp.LTE: a <= b}[kind]


# --- row filters: templates with claim placeholders ----------------------------------------------------------


def _parse_template(text: str, where: str) -> exp.Expression:
    """`customer.country_code = {{ user.country }}` → a tree whose placeholders are columns of
    PLACEHOLDER_TABLE. The template comes from canon.yml (reviewed config), never from a request."""
    from canon.compiler.errors import CanonError
    from canon.compiler.sqlexpr import parse_filter

    pieces, rest = [], text
    while "{{" in rest:
        before, _, after = rest.partition("{{")
        inner, closed, rest = after.partition("}}")
        claim = inner.strip()
        if not closed or not claim.startswith("user.") or not claim[5:].isidentifier():
            raise ConfigError(f"canon.yml: {where}: row_filter placeholder {{{{{inner}}}}} must read {{{{ user.<claim> }}}}")
        pieces += [before, f"{PLACEHOLDER_TABLE}.{claim[5:]}"]
    pieces.append(rest)
    try:
        tree = parse_filter("".join(pieces), field="row_filter").condition
    except CanonError as error:
        raise ConfigError(f"canon.yml: {where}: row_filter {text!r}: {error.message}", hint=error.hint) from None
    return tree


def row_filter_refs(tree: exp.Expression) -> list[str]:
    """The dimension references of a row filter (placeholders excluded)."""
    from canon.compiler.sqlexpr import column_ref

    return [column_ref(c) for c in tree.find_all(exp.Column) if c.table != PLACEHOLDER_TABLE]


def _bind_claims(tree: exp.Expression, claims: dict, policy: str) -> exp.Expression:
    def swap(node):
        if not (isinstance(node, exp.Column) and node.table == PLACEHOLDER_TABLE):
            return node
        value = claims.get(node.name, _MISSING)
        if value is _MISSING or value is None:
            raise AccessDeniedError(f"access policy {policy!r} needs the claim user.{node.name}, which this user lacks",
                                    hint="the token (or the user in canon.yml) must carry it; without it nothing is shown")
        return _literal(value, node.name, policy)

    bound = tree.transform(swap)
    # `dim = (list)` → `dim IN (...)`; an empty list matches nothing
    def lists(node):
        if isinstance(node, (exp.EQ, exp.NEQ)) and isinstance(node.expression, exp.Tuple):
            items = node.expression.expressions
            if not items:
                return exp.false() if isinstance(node, exp.EQ) else exp.true()
            inside = exp.In(this=node.this, expressions=items)
            return inside if isinstance(node, exp.EQ) else exp.Not(this=inside)
        return node

    return bound.transform(lists)


def _literal(value, claim: str, policy: str) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, list) and len(value) <= MAX_LIST_CLAIM and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return exp.Tuple(expressions=[_literal(v, claim, policy) for v in value])
    raise AccessDeniedError(f"access policy {policy!r}: the claim user.{claim} is not a value or a list of values",
                            hint=f"use a string, a number, or a list of at most {MAX_LIST_CLAIM} of them")


def glob_matches(patterns, names) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)
