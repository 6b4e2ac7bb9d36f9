"""The snapshot's customer tables (server/recommend/compact.py) answer as the dicts they replace."""

from __future__ import annotations

import pickle
import random

import pytest

from canon.server.recommend.compact import CustomerTable, HistoryTable
from canon.server.recommend.snapshot import Customer

pytestmark = pytest.mark.fast


def _customers(rows):
    table = CustomerTable(["segment", "country"], groups=1, segments=2)
    for cid, segment, country, group, rfm, account in rows:
        table.add(cid, [segment, country], [group], [rfm, account])
    return table.done()


def test_customers_equal_the_dict_they_replace():
    rng = random.Random(3)
    rows = [(rng.randrange(1, 10**12), rng.choice(["smb", "enterprise", None]), rng.choice(["DE", "FR"]),
             rng.choice(["a", "b"]), rng.choice(["champions", "lost", None]), rng.choice(["x", "y"]))
            for _ in range(500)]
    rows.append((rows[0][0], "smb", "FR", "b", "lost", "y"))  # a repeated id: the last one counts
    want = {cid: Customer(cid, {"segment": s, "country": c}, (g,), (r, a)) for cid, s, c, g, r, a in rows}
    table = pickle.loads(pickle.dumps(_customers(rows)))  # and as persisted
    assert len(table) == len(want) and list(table) == sorted(want)
    assert dict(table.items()) == want
    first = next(iter(table))
    assert 0 not in table and "x" not in table and None not in table and str(first) not in table
    assert first + 0.5 not in table and first in table
    with pytest.raises(KeyError):
        table[-1]
    assert set(table.segment_values(0)) == {r[4] for r in rows[1:]} | {rows[-1][4]}
    assert table.with_segment(0, "lost") == sorted(c for c, v in want.items() if v.segments[0] == "lost")
    assert table.with_segment(1, "nobody") == []


@pytest.mark.parametrize("ordered", [True, False])
def test_history_equals_sets_of_bought_items(ordered):
    rng = random.Random(5)
    pairs = {(rng.randrange(1, 300), rng.randrange(1, 40)) for _ in range(2000)}
    want: dict[int, set] = {}
    for cid, pid in pairs:
        want.setdefault(cid, set()).add(pid)
    arriving = sorted(pairs) if ordered else rng.sample(sorted(pairs), len(pairs))
    table = pickle.loads(pickle.dumps(HistoryTable(arriving)))
    assert len(table) == len(want) and list(table) == sorted(want)
    assert {c: set(h) for c, h in table.items()} == want
    assert table.get(10**9, frozenset()) == frozenset() and 10**9 not in table
    assert HistoryTable([]).get(1) is None and len(HistoryTable([])) == 0
