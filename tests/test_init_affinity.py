"""`canon init` on a basket warehouse unlike the demo, then cross-sell and recommendations (issue 15).

The warehouse: receipts, their lines, SKUs and shoppers, with other names than the demo, a TIMESTAMP
purchase time, no declared keys and no time spine. `canon init` proposes the models; the user adds
metrics and a `recommendations:` block (nothing in the proposed models is edited): the block validates against
the proposed models, and the affinity numbers equal hand-written SQL, with and without a time zone.
(Recommendation answers on a catalog with other names than the demo's: tests/test_recommend_config.py.)
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from canon.compiler.request import QueryRequest
from canon.server.cli import main
from canon.server.runtime import Runtime

FAMILIES = {"bread": ["rye", "sourdough", "baguette"], "pastry": ["croissant", "danish"], "drink": ["espresso", "tea"]}
# the proposed starter metrics include receipt_line_count: one line per (receipt, SKU) here, so by SKU it
# counts the receipts holding it, which is what `popularity` asks for
METRICS = """metrics:
  - {name: sku_confidence, type: affinity, basket: receipt, item: sku, returns: confidence}
  - {name: sku_support, type: affinity, basket: receipt, item: sku, returns: support}
  - {name: sku_lift, type: affinity, basket: receipt, item: sku, returns: lift}
recommendations:
  affinity: sku_confidence
  popularity: receipt_line_count
  time: receipt.bought_at
  items: {id: sku.sku_id, name: sku.sku_name, show: [sku.family, sku.price_band], levels: [sku.family]}
  customers: {id: shopper.shopper_id, show: [shopper.club], cold_start: [shopper.club]}
  upsell: {group: sku.family, tier: sku.price_band, order: [low, mid, high]}
"""
PAIRS = ("WITH b AS (SELECT DISTINCT l.receipt_id, s.family FROM receipt_lines l JOIN skus s ON s.sku_id = l.sku_id), "
         "n AS (SELECT family, COUNT(*) AS n FROM b GROUP BY 1) "
         "SELECT x.family, y.family, COUNT(*) * 1.0 / MAX(n.n) FROM b x JOIN b y ON x.receipt_id = y.receipt_id "
         "AND x.family <> y.family JOIN n ON n.family = x.family GROUP BY 1, 2")


def _build(path: Path) -> None:
    import duckdb

    rng = random.Random(7)
    skus = [(i + 1, name, family, ["low", "mid", "high"][i % 3], 1.5 + i)
            for i, (family, name) in enumerate((f, n) for f, names in FAMILIES.items() for n in names)]
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE skus (sku_id INTEGER, sku_name VARCHAR, family VARCHAR, price_band VARCHAR, "
                    "unit_price DOUBLE)")
        con.executemany("INSERT INTO skus VALUES (?, ?, ?, ?, ?)", skus)
        con.execute("CREATE TABLE shoppers (shopper_id INTEGER, club VARCHAR)")
        con.executemany("INSERT INTO shoppers VALUES (?, ?)", [(i, rng.choice(["gold", "none"])) for i in range(1, 31)])
        con.execute("CREATE TABLE receipts (receipt_id INTEGER, shopper_id INTEGER, bought_at TIMESTAMP)")
        con.execute("CREATE TABLE receipt_lines (receipt_line_id INTEGER, receipt_id INTEGER, sku_id INTEGER, "
                    "qty INTEGER)")
        receipts, lines = [], []
        for r in range(1, 401):
            at = datetime(2024, 3, 1) + timedelta(hours=rng.randrange(0, 24 * 60))
            receipts.append((r, rng.randint(1, 30), at))
            for sku in rng.sample(range(1, len(skus) + 1), rng.randint(1, 4)):
                lines.append((len(lines) + 1, r, sku, rng.randint(1, 3)))
        con.executemany("INSERT INTO receipts VALUES (?, ?, ?)", receipts)
        con.executemany("INSERT INTO receipt_lines VALUES (?, ?, ?, ?)", lines)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bakery")
    warehouse = root / "bakery.duckdb"
    _build(warehouse)
    target = root / "project"
    result = CliRunner().invoke(main, ["init", str(target), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output + result.stderr
    (target / "metrics" / "baskets.yml").write_text(METRICS)
    return target


def _rows(rows) -> list[tuple]:
    return sorted(tuple(v if isinstance(v, str) or v is None else round(float(v), 9) for v in row) for row in rows)


def test_the_added_definitions_validate(project):
    result = CliRunner().invoke(main, ["validate", "--project", str(project), "--warehouse"])
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.mark.parametrize("zone", [None, "Asia/Tokyo"])
def test_family_pair_confidence_equals_hand_sql(project, zone):
    with Runtime.open(project) as runtime:
        got = runtime.query(QueryRequest(metrics=("sku_confidence",),
                                         dimensions=("antecedent.family", "consequent.family"), timezone=zone)).rows
        _, want = runtime.run_sql(PAIRS)
    assert _rows(got) == _rows(want)
