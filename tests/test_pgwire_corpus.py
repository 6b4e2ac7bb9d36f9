"""The conformance corpus (tests/fixtures/pgwire_corpus/queries.yml): catalog and data queries that BI tools
and drivers send, over the wire, each with its expected answer; no query may break the connection."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from tests.test_pgwire_bi_tools import _n, conn, oracle, port, runtime  # noqa: F401 - shared fixtures


CORPUS = yaml.safe_load((Path(__file__).parent / "fixtures" / "pgwire_corpus" / "queries.yml").read_text())
CASES = [pytest.param(kind, case, id=case["id"]) for kind in ("catalog", "data") for case in CORPUS[kind]]


def test_every_entry_names_its_source():
    assert all(case.get("source") and case.get("expect") for kind in ("catalog", "data") for case in CORPUS[kind])


@pytest.mark.parametrize("kind, case", CASES)
def test_corpus(conn, runtime, kind, case):  # noqa: F811 - fixtures
    expect = case["expect"]
    if "refused" in expect:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(case["sql"]).fetchall()
        assert info.value.sqlstate == expect["refused"], info.value
        hint = info.value.diag.message_hint or ""
        assert hint and expect.get("hint", "") in hint, hint
    else:
        got = [list(row) for row in conn.execute(case["sql"]).fetchall()]
        _check(got, expect, runtime)
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection survives every entry


def _check(got, expect, runtime):
    if "rows" in expect:
        assert len(got) == expect["rows"], got
    if "min_rows" in expect:
        assert len(got) >= expect["min_rows"], got
    for row in expect.get("contains", []):
        assert [_n(v) for v in row] in [[_n(v) for v in r] for r in got], got
    if "same_as" in expect:
        request = expect["same_as"]
        want = [list(r) for r in oracle(runtime, **request)]
        mine = [[_n(v) for v in r] for r in got]
        if "year_column" in expect:
            at = expect["year_column"]
            mine = [[str(int(r[at])) if i == at else v for i, v in enumerate(r)] for r in mine]
            want = [[str(v)[:4] if i == at else v for i, v in enumerate(r)] for r in want]
        if not request.get("order"):
            mine, want = sorted(mine, key=repr), sorted(want, key=repr)
        assert mine == want
    if "row_count_of" in expect:
        assert [[_n(v) for v in r] for r in got] == [[float(len(oracle(runtime, **expect["row_count_of"])))]]
    if "top_series" in expect:
        spec = dict(expect["top_series"])
        series, limit = spec.pop("series"), spec.pop("limit")
        top = oracle(runtime, metrics=spec["metrics"], dimensions=[series], order=["-" + spec["metrics"][0]],
                     limit=limit)
        names = ", ".join("'" + r[0] + "'" for r in top)
        want = oracle(runtime, **spec, where=[f"{series} IN ({names})"], order=spec["dimensions"])
        assert [[_n(v) for v in r] for r in got] == [list(r) for r in want] and want
    if "computed" in expect:
        spec = dict(expect["computed"])
        spec.pop("formula")
        base = oracle(runtime, **spec)
        want = [[c, round(round(r / n, 2), 4) if n else None, "ok" if r >= 0 else "neg"] for c, r, n in base]
        assert [[_n(v) for v in r] for r in got] == want
