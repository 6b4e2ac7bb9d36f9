"""Every customer of the snapshot, in columns: millions of customers in tens of megabytes.

At `canon demo --scale 200` (2 million customers, 9.9 million order lines) a dict of `Customer`
objects and a dict of frozensets held 3.6 GB; here the ids are one sorted array of 64-bit integers,
each dimension a 32-bit code into its distinct values, and the items bought a compressed sparse row
(offsets into one array of item ids). Lookups bisect the ids; a `Customer` or a frozenset is made
only for the customer asked about. Both tables are read-only `Mapping`s, as the dicts were.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Mapping
from typing import Iterable, Iterator, Sequence

ID, CODE = "q", "l"  # 64-bit ids, 32-bit codes (array typecodes)


class Column:
    """A dimension's values as codes into its distinct values, in arrival order."""

    def __init__(self):
        self.codes = array(CODE)
        self.values: list = []
        self._index: dict | None = {}

    def append(self, value) -> None:
        code = self._index.get(value)
        if code is None:
            code = self._index[value] = len(self.values)
            self.values.append(value)
        self.codes.append(code)

    def done(self, order: Sequence[int]) -> None:
        self.codes = array(CODE, (self.codes[i] for i in order))
        self._index = None  # only the build needs it

    def __getitem__(self, at: int):
        return self.values[self.codes[at]]


def _find(ids: array, key) -> int:
    """The position of `key` in the sorted `ids`, or -1 (ids are ints, as the dict's keys were)."""
    if not isinstance(key, int) or isinstance(key, bool):
        return -1
    at = bisect_left(ids, key)
    return at if at < len(ids) and ids[at] == key else -1


class _ById(Mapping):
    """A mapping over the sorted array `self.ids`: subclasses make the value at a position."""

    ids: array

    def _value(self, at: int):
        raise NotImplementedError

    def __getitem__(self, customer_id):
        at = _find(self.ids, customer_id)
        if at < 0:
            raise KeyError(customer_id)
        return self._value(at)

    def __contains__(self, customer_id) -> bool:
        return _find(self.ids, customer_id) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class CustomerTable(_ById):
    """customer_id -> Customer(customer_id, shown, group, segments)."""

    def __init__(self, shown: Sequence[str], groups: int, segments: int):
        self.ids = array(ID)
        self.shown_names = tuple(shown)
        self._widths = (len(self.shown_names), groups, segments)
        self.columns = [Column() for _ in range(sum(self._widths))]

    def add(self, customer_id: int, shown: Sequence, group: Sequence, segments: Sequence) -> None:
        self.ids.append(customer_id)
        for column, value in zip(self.columns, (*shown, *group, *segments)):
            column.append(value)

    def done(self) -> "CustomerTable":
        """Sorts by id (keeping the last of a repeated id, as a dict would) and drops the build indexes."""
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        order = [i for n, i in enumerate(order) if n + 1 == len(order) or self.ids[order[n + 1]] != self.ids[i]]
        self.ids = array(ID, (self.ids[i] for i in order))
        for column in self.columns:
            column.done(order)
        return self

    def _value(self, at: int):
        from .snapshot import Customer

        shown, groups, _ = self._widths
        values = [column[at] for column in self.columns]
        return Customer(self.ids[at], dict(zip(self.shown_names, values[:shown])),
                        tuple(values[shown:shown + groups]), tuple(values[shown + groups:]))

    def segment_values(self, index: int) -> list:
        """The distinct values of the index-th audience segment dimension."""
        return list(self.columns[sum(self._widths[:2]) + index].values)

    def with_segment(self, index: int, value) -> list[int]:
        """The ids (ascending) of the customers whose index-th audience segment is `value`."""
        column = self.columns[sum(self._widths[:2]) + index]
        try:
            code = column.values.index(value)
        except ValueError:
            return []
        return [self.ids[at] for at, c in enumerate(column.codes) if c == code]


class HistoryTable(_ById):
    """customer_id -> frozenset of the item ids the customer bought, from (customer, item) pairs."""

    def __init__(self, pairs: Iterable[tuple[int, int]]):
        customers, items = array(ID), array(ID)
        ordered = True
        for customer_id, item_id in pairs:
            if customers and (customer_id, item_id) <= (customers[-1], items[-1]):
                ordered = False
            customers.append(customer_id)
            items.append(item_id)
        if not ordered:  # the query asks for them in order; any other source is sorted here
            order = sorted(set(zip(customers, items)))
            customers, items = array(ID, (c for c, _ in order)), array(ID, (i for _, i in order))
        self.ids, self.offsets, self.bought = array(ID), array(ID), items
        for at, customer_id in enumerate(customers):
            if not self.ids or self.ids[-1] != customer_id:
                self.ids.append(customer_id)
                self.offsets.append(at)
        self.offsets.append(len(items))

    def _value(self, at: int) -> frozenset:
        return frozenset(self.bought[self.offsets[at]:self.offsets[at + 1]])
