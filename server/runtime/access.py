"""Who is asking. The runtime carries an `Identity` with every query so that access policies (row
filters, denied members: the access-control issue) are applied in one place, on every path.

Until policies are configured, `apply_policies` returns the request unchanged: every caller already
passes through it, so adding policies changes no front end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from canon.compiler.catalog import Catalog
from canon.compiler.request import QueryRequest


@dataclass(frozen=True)
class Identity:
    user: str = "anonymous"
    via: str = "internal"  # cli | http | cube | pgwire | mcp | internal
    claims: dict = field(default_factory=dict, compare=False, hash=False)


ANONYMOUS = Identity()


def apply_policies(catalog: Catalog, request: QueryRequest, identity: Identity) -> QueryRequest:
    """The request this identity may run (the hook access policies fill)."""
    return request
