"""`canon init` on a basket warehouse unlike the demo, then cross-sell and recommendations (issue 15).

The warehouse: receipts, their lines, SKUs and shoppers, with other names than the demo, a TIMESTAMP
purchase time, no declared keys and no time spine. `canon init` proposes the models (the lines, without a
time of their own, take their receipt's: a marked guess); the user adds metrics and a `recommendations:`
block (nothing in the proposed models is edited). Then:
- the block validates against the proposed models, and the affinity numbers equal hand-written SQL, with
  and without a time zone;
- recommendations, cross-sell (by SKU and by family), upsell (price_band low → mid → high within a
  family) and the cold-start fallback, over HTTP (the FastAPI app) and the CLI, equal an oracle written
  from the ranking rules of server/recommend/engine.py over hand SQL on the raw tables, in the default
  window and in a 7-day one whose edges have purchases minutes either side of midnight;
- the same with the block's `timezone: Asia/Tokyo` (a second project): the window's days are Tokyo's,
  computed by the oracle from the raw UTC times with zoneinfo. The purchase at 23:50 UTC on the last day
  is on the next day in Tokyo (a day later last day), the one 5 minutes into the UTC window's first day
  falls before the Tokyo window: the zoned answers differ from the unzoned ones, and the test says so.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import duckdb
import pytest
from click.testing import CliRunner

from canon.compiler.compile import load_catalog
from canon.compiler.recommendations import snapshot_requests
from canon.compiler.request import QueryRequest
from canon.server.cli import main
from canon.server.runtime import Runtime
from tests.test_recommend_config import _canon, _client

BANDS = ("low", "mid", "high")
FAMILIES = {"bread": [("rye", "low"), ("sourdough", "mid"), ("baguette", "high"), ("brioche", "high")],
            "pastry": [("croissant", "low"), ("danish", "mid"), ("eclair", "high")],
            "drink": [("tea", "low"), ("espresso", "mid"), ("latte", "high")],
            "deli": [("ham", "low"), ("cheese", "mid"), ("salmon", "high")]}
SKUS = [(i + 1, name, family, band) for i, (family, name, band) in
        enumerate((f, n, b) for f, items in FAMILIES.items() for n, b in items)]
CLUBS = ("gold", "silver", "none")
COLD = {41: "gold", 42: "platinum"}  # shoppers without a receipt: popular in their club, else overall
LAST = date(2024, 4, 29)  # the last day with a receipt
ZONE = "Asia/Tokyo"  # UTC+9: the last receipt (23:50 UTC) is on the next day there
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
    """Shoppers 1-40 buy mostly from two favourite families (so their histories leave room to recommend and
    to upsell); some receipts have no shopper; shoppers 41 and 42 never bought. The 7-day window
    [LAST - 6, LAST] has receipts minutes inside and outside each of its edges, in UTC and in Tokyo (whose
    last day is LAST + 1)."""
    rng = random.Random(7)
    family_skus = defaultdict(list)
    for sku_id, _, family, _ in SKUS:
        family_skus[family].append(sku_id)
    shoppers = [(i, rng.choice(CLUBS)) for i in range(1, 41)] + sorted(COLD.items())
    favourites = {i: rng.sample(sorted(FAMILIES), 2) for i in range(1, 41)}
    receipts, lines = [], []

    def receipt(shopper, at):
        receipts.append((len(receipts) + 1, shopper, at))
        pool = [s for f in favourites[shopper] for s in family_skus[f]] if shopper else [s for s, *_ in SKUS]
        chosen = set(rng.sample(pool, rng.randint(1, 3)))
        if rng.random() < 0.15:  # now and then something from anywhere
            chosen.add(rng.choice(SKUS)[0])
        lines.extend((len(receipts), sku) for sku in sorted(chosen))  # one line per (receipt, SKU)

    start = LAST - timedelta(days=6)
    tokyo_start = datetime.combine(start + timedelta(days=1), datetime.min.time(), ZoneInfo(ZONE))
    tokyo_start = tokyo_start.astimezone(timezone.utc).replace(tzinfo=None)  # stored as UTC
    for _ in range(360):
        day = LAST - timedelta(days=rng.randrange(1, 60))
        receipt(rng.choice([None, *range(1, 41)]), datetime(day.year, day.month, day.day, rng.randrange(24),
                                                              rng.randrange(60)))
    for shopper, at in [(3, datetime.combine(start, datetime.min.time()) - timedelta(minutes=5)),
                        (5, datetime.combine(start, datetime.min.time()) + timedelta(minutes=5)),
                        (8, datetime.combine(LAST, datetime.min.time()) + timedelta(hours=23, minutes=50)),
                        (4, tokyo_start - timedelta(minutes=5)), (6, tokyo_start + timedelta(minutes=5))]:
        receipt(shopper, at)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE skus (sku_id INTEGER, sku_name VARCHAR, family VARCHAR, price_band VARCHAR, "
                    "unit_price DOUBLE)")
        _insert(con, "skus", [(*s, 1.5 + s[0]) for s in SKUS])
        con.execute("CREATE TABLE shoppers (shopper_id INTEGER, club VARCHAR)")
        _insert(con, "shoppers", shoppers)
        con.execute("CREATE TABLE receipts (receipt_id INTEGER, shopper_id INTEGER, bought_at TIMESTAMP)")
        con.execute("CREATE TABLE receipt_lines (receipt_line_id INTEGER, receipt_id INTEGER, sku_id INTEGER, "
                    "qty INTEGER)")
        _insert(con, "receipts", receipts)
        _insert(con, "receipt_lines", [(i + 1, r, s, rng.randint(1, 3)) for i, (r, s) in enumerate(lines)])


def _insert(con, table: str, rows: list[tuple]) -> None:
    """One INSERT for all the rows (executemany runs one statement per row: seconds, not milliseconds)."""
    marks = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(f"INSERT INTO {table} VALUES " + ", ".join([marks] * len(rows)), [v for row in rows for v in row])


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


def _zoned(zone: str) -> str:
    return METRICS.replace("  time: receipt.bought_at\n", f"  time: receipt.bought_at\n  timezone: {zone}\n")


def _copy(project: Path, target: Path, metrics: str) -> Path:
    """The project (its proposed models, the same warehouse) with another baskets.yml."""
    shutil.copytree(project, target, ignore=shutil.ignore_patterns(".canon"))
    (target / "metrics" / "baskets.yml").write_text(metrics)
    return target


@pytest.fixture(scope="module")
def zoned_project(project, tmp_path_factory) -> Path:
    """A second project: the block counts Tokyo's days."""
    return _copy(project, tmp_path_factory.mktemp("bakery_tokyo") / "project", _zoned(ZONE))


def _rows(rows) -> list[tuple]:
    return sorted(tuple(v if isinstance(v, str) or v is None else round(float(v), 9) for v in row) for row in rows)


def test_the_added_definitions_validate(project):
    lines = (project / "semantic_models" / "receipt_line.yml").read_text()
    assert re.search(r"^  default_time: receipt\.bought_at  # REVIEW: ", lines, re.M), lines
    result = CliRunner().invoke(main, ["validate", "--project", str(project), "--warehouse"])
    assert result.exit_code == 0, result.stdout + result.stderr


def test_lines_without_a_time_fail_validate_not_the_server(project, tmp_path):
    """Without the borrowed time, the snapshot's windowed requests cannot compile: `canon validate` says so
    (it used to pass, and the server's snapshot build then failed)."""
    import shutil

    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    path = copy / "semantic_models" / "receipt_line.yml"
    path.write_text(re.sub(r"^  default_time: .*\n", "", path.read_text(), flags=re.M))
    result = CliRunner().invoke(main, ["validate", "--project", str(copy)])
    assert result.exit_code != 0
    assert "recommendations: " in result.output and "no default_time" in result.output, result.output


def test_the_block_zone_reaches_every_windowed_request(project, zoned_project):
    """The last day's request and every windowed one (rules, popularity, group popularity) carry the zone;
    the all-time ones (items, customers, histories) none. UTC is no zone (the stored days)."""
    block = load_catalog(zoned_project).recommendations
    assert block is not None and block.timezone == ZONE
    requests = snapshot_requests(block)
    windowed = [r for r in requests if r.start or any(d.endswith(".day") for d in r.dimensions)]
    assert len(windowed) == 6  # last day, group popularity, rules and popularity at 2 levels
    assert all(r.timezone == ZONE for r in windowed)
    assert all(r.timezone is None for r in requests if r not in windowed)
    for unzoned in (load_catalog(project).recommendations, block.model_copy(update={"timezone": "UTC"})):
        assert all(r.timezone is None for r in snapshot_requests(unzoned))


def test_an_unknown_zone_fails_validate_naming_it(project, tmp_path):
    copy = _copy(project, tmp_path / "project", _zoned("Asia/Tokio"))
    result = CliRunner().invoke(main, ["validate", "--project", str(copy)])
    assert result.exit_code != 0
    assert re.search(r"metrics/baskets\.yml:\d+: recommendations\.timezone: unknown time zone 'Asia/Tokio'",
                     result.output), result.output
    assert "Asia/Tokyo" in result.output, result.output  # did you mean


def test_the_snapshot_key_holds_the_zone(project, zoned_project):
    """A persisted snapshot built for other days is not served: the key names the zone (and the block's
    text is in the catalog version too)."""
    from canon.server.recommend.snapshot import SnapshotStore

    warehouse = SimpleNamespace(url=str(project.parent / "bakery.duckdb"))
    keys = [SnapshotStore(p, lambda c=load_catalog(p): c, lambda: warehouse).key() for p in (project, zoned_project)]
    assert keys[0][-1] is None and keys[1][-1] == ZONE
    assert keys[0][1] != keys[1][1] and keys[0][2] == keys[1][2]


def test_the_refresh_command_says_whose_days_the_window_counts(project, zoned_project, tmp_path):
    """`canon recommendations refresh` names the block's zone beside the window (a window of Tokyo's days
    is not the stored time's days), and says nothing of a zone where there is none."""
    import shutil

    for source, zoned in ((project, False), (zoned_project, True)):
        copy = tmp_path / ("zoned" if zoned else "plain")
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".canon"))
        result = CliRunner().invoke(main, ["recommendations", "refresh", "--project", str(copy)])
        assert result.exit_code == 0, result.output
        line = result.output.strip().splitlines()[-1]
        assert re.search(r"window \d{4}-\d\d-\d\d \.\. \d{4}-\d\d-\d\d", line), line
        assert (f"({ZONE} days)" in line) is zoned, line


@pytest.mark.parametrize("zone", [None, ZONE])
def test_family_pair_confidence_equals_hand_sql(project, zone):
    with Runtime.open(project) as runtime:
        got = runtime.query(QueryRequest(metrics=("sku_confidence",),
                                         dimensions=("antecedent.family", "consequent.family"), timezone=zone)).rows
        _, want = runtime.run_sql(PAIRS)
    assert _rows(got) == _rows(want)


# --- the oracle: the engine's ranking rules, over hand SQL on the raw tables ----------------------


class Oracle:
    """Recommendation answers by hand. Baskets are receipts; a window is the days [end - days + 1, end] of
    bought_at (stored in UTC) in `zone` (None: the stored days), end being the last such day with a receipt
    line. Rules A → B count the window's receipts; popularity is the window's lines per SKU (or family);
    histories are all time."""

    def __init__(self, path: Path, zone: str | None = None):
        con = duckdb.connect(str(path), read_only=True)
        try:
            lines = con.execute("SELECT r.receipt_id, r.bought_at, r.shopper_id, l.sku_id "
                                "FROM receipts r JOIN receipt_lines l ON l.receipt_id = r.receipt_id").fetchall()
            self.skus = {i: (n, f, b) for i, n, f, b in
                         con.execute("SELECT sku_id, sku_name, family, price_band FROM skus").fetchall()}
            self.clubs = dict(con.execute("SELECT shopper_id, club FROM shoppers").fetchall())
        finally:
            con.close()
        self.zone = zone
        local = (lambda at: at.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone)).date()) if zone else \
            (lambda at: at.date())
        self.lines = [(receipt, local(at), shopper, sku) for receipt, at, shopper, sku in lines]
        self.times = {receipt: at for receipt, at, _, _ in lines}  # as stored (UTC)
        self.end = max(day for _, day, _, _ in self.lines)

    def window(self, days: int) -> dict:
        zone = {"timezone": self.zone} if self.zone else {}
        return {"days": days, "start": (self.end - timedelta(days=days - 1)).isoformat(), "end": self.end.isoformat(),
                **zone}

    def _in(self, days: int):
        start = self.end - timedelta(days=days - 1)
        return [x for x in self.lines if start <= x[1] <= self.end]

    def _key(self, sku: int, level: str):
        return sku if level == "product" else self.skus[sku][1]

    def counts(self, days: int, level: str = "product") -> tuple[int, dict, dict]:
        """The window's baskets, the baskets holding A, the baskets holding A and B (A ≠ B)."""
        baskets = defaultdict(set)
        for receipt, _, _, sku in self._in(days):
            baskets[receipt].add(self._key(sku, level))
        count, pairs = defaultdict(int), defaultdict(int)
        for items in baskets.values():
            for a in items:
                count[a] += 1
                for b in items - {a}:
                    pairs[a, b] += 1
        return len(baskets), count, pairs

    def rules(self, days: int, level: str = "product") -> dict:
        """{(A, B): (confidence, lift)} as exact fractions, for every pair bought together in the window."""
        n, count, pairs = self.counts(days, level)
        return {(a, b): (Fraction(ab, count[a]), Fraction(ab, count[a]) / Fraction(count[b], n))
                for (a, b), ab in pairs.items()}

    def popularity(self, days: int, level: str = "product", club: str | None = None) -> dict:
        """Lines in the window per SKU (or family); with `club`, only those of its shoppers."""
        pop = defaultdict(int)
        for _, _, shopper, sku in self._in(days):
            if club is None or self.clubs.get(shopper) == club:
                pop[self._key(sku, level)] += 1
        return pop

    def history(self, shopper: int) -> set:
        return {sku for _, _, s, sku in self.lines if s == shopper}

    def shoppers(self) -> list[int]:
        return sorted({s for _, _, s, _ in self.lines if s is not None})

    def ranked(self, rules: dict, antecedents, exclude, pop: dict, limit: int) -> list[tuple]:
        """[(B, A, confidence)]: each B by its best (confidence, lift) over `antecedents`, ties to the lowest
        A; then by confidence, lift, popularity, the lowest B."""
        best = {}
        for (a, b), (conf, lift) in sorted(rules.items(), key=lambda kv: kv[0][0]):  # one type per level
            if a in antecedents and b not in exclude and (b not in best or (conf, lift) > best[b][1:]):
                best[b] = (a, conf, lift)
        order = sorted(best, key=lambda b: (-best[b][1], -best[b][2], -pop.get(b, 0), b))
        return [(b, best[b][0], best[b][1]) for b in order[:limit]]

    def recommend(self, shopper: int, days: int, limit: int) -> list[tuple]:
        bought = self.history(shopper)
        return self.ranked(self.rules(days), bought, bought, self.popularity(days), limit)

    def cold_start(self, club: str, days: int, limit: int) -> list[int]:
        in_club = self.popularity(days, club=club)
        picks = sorted(in_club, key=lambda s: (-in_club[s], s))[:limit]
        overall = self.popularity(days)
        return picks + [s for s in sorted(overall, key=lambda s: (-overall[s], s)) if s not in picks][:limit - len(picks)]

    def upsell(self, shopper: int, days: int, limit: int) -> list[tuple]:
        """[(family, highest band bought, [candidate SKUs])] for each family the shopper bought in."""
        bought, pop = self.history(shopper), self.popularity(days)
        out = []
        for family in sorted({self.skus[s][1] for s in bought}):
            top = max(BANDS.index(self.skus[s][2]) for s in bought if self.skus[s][1] == family)
            up = [s for s, (_, f, band) in self.skus.items() if f == family and BANDS.index(band) > top
                  and s not in bought]
            out.append((family, BANDS[top], sorted(up, key=lambda s: (-pop.get(s, 0), s))[:limit]))
        return out


@pytest.fixture(scope="module")
def oracle(project) -> Oracle:
    return Oracle(project.parent / "bakery.duckdb")


@pytest.fixture(scope="module")
def zoned_oracle(project) -> Oracle:
    return Oracle(project.parent / "bakery.duckdb", ZONE)


def _app(project):
    with _client(project) as client:
        assert client.post("/v1/recommendations/refresh").status_code == 200  # the snapshot, before any timing
        yield client


@pytest.fixture(scope="module")
def http(project):
    yield from _app(project)


@pytest.fixture(scope="module")
def zoned_http(zoned_project):
    yield from _app(zoned_project)


@pytest.fixture(params=[None, ZONE], ids=["stored_days", "tokyo_days"])
def case(request) -> SimpleNamespace:
    """The project, its app and its oracle: without the block's zone, then with it."""
    zoned = "zoned_" if request.param else ""
    return SimpleNamespace(**{name: request.getfixturevalue(zoned + name) for name in ("project", "http", "oracle")})


def _http_json(http, path, **params):
    response = http.get(path, params=params)
    assert response.status_code == 200, (path, params, response.text)
    return response.json()


def _cli_json(*args):
    result = _canon(*args, "--format", "json")
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.output)


def _both(http, project, path: str, cli: tuple | None, **params):
    """The request over HTTP and, given its `cli` arguments, through the CLI too: the two answers must agree
    (the CLI builds a non-default window anew each time: a few requests go through it, not all)."""
    body = _http_json(http, path, **params)
    if cli is None:
        return body
    flags = [x for k, v in params.items() if k in ("days", "limit") for x in (f"--{k}", str(v))]
    assert {k: v for k, v in _cli_json(*cli, *flags, "--project", str(project)).items() if k != "snapshot_built_at"} \
        == {k: v for k, v in body.items() if k != "snapshot_built_at"}, (path, params)
    return body


def _same(got: list[dict], want: list[tuple]) -> None:
    """Items (product_id, antecedent, score) in the oracle's order, with the oracle's scores."""
    assert [(i["product_id"], i["antecedent"]["product_id"]) for i in got] == [(b, a) for b, a, _ in want]
    assert all(math.isclose(i["cross_sell_score"], float(c), rel_tol=1e-12) for i, (_, _, c) in zip(got, want))


@pytest.mark.slow  # the app and the CLI on a project of their own
@pytest.mark.parametrize("days", [None, 7])
def test_recommendations_equal_the_oracle(case, days):
    project, http, oracle = case.project, case.http, case.oracle
    window = oracle.window(days or 365)
    checked = 0
    for n, shopper in enumerate(oracle.shoppers()[:12]):
        params = {"limit": 4, **({"days": days} if days else {})}
        body = _both(http, project, f"/v1/recommendations/{shopper}",
                     ("recommend", "--customer", str(shopper)) if n < 2 else None, **params)
        assert body["window"] == window and body["strategy"] == "affinity"
        assert body["purchased_products"] == len(oracle.history(shopper))
        assert body["club"] == oracle.clubs[shopper]
        want = oracle.recommend(shopper, days or 365, 4)
        _same(body["items"], want)
        checked += len(want)
        for item in body["items"]:  # the reason in this catalog's words: its baskets and its metric
            assert " receipts with " in item["reason"] and "(sku_confidence " in item["reason"], item["reason"]
            assert "order" not in item["reason"] and "cross_sell_score" not in item["reason"]
    assert checked > 12  # most shoppers get recommendations


@pytest.mark.slow  # the app and the CLI on a project of their own
@pytest.mark.parametrize("days", [None, 7])
def test_cross_sell_by_sku_and_by_family_equals_the_oracle(case, days):
    project, http, oracle = case.project, case.http, case.oracle
    span = days or 365
    rules, pop = oracle.rules(span), oracle.popularity(span)
    extra = {"days": days} if days else {}
    for sku in (1, 6, 9, 13):
        body = _both(http, project, "/v1/cross-sell", ("cross-sell", "--product", str(sku)) if sku == 6 else None,
                     product_id=sku, limit=5, **extra)
        assert body["window"] == oracle.window(span)
        want = oracle.ranked(rules, {sku}, {sku}, pop, 5)
        assert [i["product_id"] for i in body["items"]] == [b for b, _, _ in want]
        assert all(math.isclose(i["cross_sell_score"], float(c), rel_tol=1e-12) for i, (_, _, c) in zip(body["items"], want))
        assert body["antecedent"]["product_purchase_frequency"] == pop.get(sku, 0)
        n, count, pairs = oracle.counts(span)  # the counts behind each rule: one basket in or out shows
        assert [(i["baskets"], i["antecedent_orders"], i["consequent_orders"], i["cross_sell_pair_orders"],
                 i["product_purchase_frequency"]) for i in body["items"]] == \
            [(n, count[sku], count[b], pairs[sku, b], pop.get(b, 0)) for b, _, _ in want]
    rules, pop = oracle.rules(span, "family"), oracle.popularity(span, "family")
    body = _both(http, project, "/v1/cross-sell", ("cross-sell", "--level", "family", "bread"), level="family",
                 value="bread", **extra)
    want = oracle.ranked(rules, {"bread"}, {"bread"}, pop, 10)
    assert [(i["family"], i["product_purchase_frequency"]) for i in body["items"]] == [(b, pop[b]) for b, _, _ in want]
    assert all(math.isclose(i["cross_sell_score"], float(c), rel_tol=1e-12) for i, (_, _, c) in zip(body["items"], want))


@pytest.mark.slow  # the app and the CLI on a project of their own
@pytest.mark.parametrize("days", [None, 7])
def test_upsell_climbs_the_price_bands_as_the_oracle(case, days):
    project, http, oracle = case.project, case.http, case.oracle
    checked = 0
    for n, shopper in enumerate(oracle.shoppers()[:12]):
        params = {"limit": 2, **({"days": days} if days else {})}
        body = _both(http, project, f"/v1/upsell/{shopper}", ("upsell", "--customer", str(shopper)) if n < 2 else None,
                     **params)
        got = [(g["family"], g["highest_tier_bought"], [i["product_id"] for i in g["items"]])
               for g in body["categories"]]
        assert got == oracle.upsell(shopper, days or 365, 2), shopper
        for group in body["categories"]:
            for item in group["items"]:
                assert BANDS.index(item["price_band"]) > BANDS.index(group["highest_tier_bought"])
                assert item["reason"].endswith(" receipts in the window"), item["reason"]  # this catalog's words
                checked += 1
    assert checked


@pytest.mark.slow  # the app and the CLI on a project of their own
@pytest.mark.parametrize("days", [None, 7])
def test_cold_start_is_popular_in_the_club_then_overall(case, days):
    project, http, oracle = case.project, case.http, case.oracle
    span = days or 365
    for shopper, club in COLD.items():
        body = _both(http, project, f"/v1/recommendations/{shopper}", ("recommend", "--customer", str(shopper)),
                     limit=6, **({"days": days} if days else {}))
        assert body["strategy"] == "popular_in_segment" and body["purchased_products"] == 0
        assert body["window"] == oracle.window(span)
        assert [i["product_id"] for i in body["items"]] == oracle.cold_start(club, span, 6), club
        assert all(i["reason"].startswith("no completed receipts yet") and " receipts in the window" in i["reason"]
                   for i in body["items"])  # in this catalog's words
        in_club = oracle.popularity(span, club=club)
        assert [i["product_purchase_frequency_in_group"] for i in body["items"]] == \
            [in_club.get(i["product_id"], 0) for i in body["items"]]
    assert not oracle.popularity(span, club="platinum")  # nobody in it bought: all of it from everyone


@pytest.mark.slow  # the apps of both projects
def test_the_zone_changes_the_window_and_the_answers(http, zoned_http, oracle, zoned_oracle):
    """Tokyo's days move the window: the last day is a day later (the 23:50 UTC receipt), the receipt 5
    minutes into the UTC window's first day falls before Tokyo's; so some 7-day answers differ."""
    assert (oracle.end, zoned_oracle.end) == (LAST, LAST + timedelta(days=1))
    edge = datetime.combine(LAST - timedelta(days=6), datetime.min.time()) + timedelta(minutes=5)
    left = {r for r, *_ in oracle._in(7)} - {r for r, *_ in zoned_oracle._in(7)}
    assert edge in {oracle.times[r] for r in left}
    snapshots = [_http_json(c, "/v1/recommendations/snapshot")["snapshot"] for c in (http, zoned_http)]
    assert [s["last_order_date"] for s in snapshots] == [str(LAST), str(LAST + timedelta(days=1))]
    assert [s["window"] for s in snapshots] == [oracle.window(365), zoned_oracle.window(365)]
    assert snapshots[1]["window"]["timezone"] == ZONE and "timezone" not in snapshots[0]["window"]
    answers = [[_http_json(c, "/v1/cross-sell", product_id=sku, days=7)["items"] for sku, *_ in SKUS]
               for c in (http, zoned_http)]
    assert answers[0] != answers[1]
    assert zoned_oracle.rules(7) != oracle.rules(7)  # the oracles differ as the answers do


@pytest.mark.slow  # the app and the CLI on a project of their own
def test_an_unknown_shopper_is_a_404_naming_it(project, http):
    response = http.get("/v1/recommendations/999")
    assert response.status_code == 404 and "unknown customer 999" in response.json()["message"]
    result = _canon("recommend", "--customer", "999", "--project", str(project))
    assert result.exit_code != 0 and "unknown customer 999" in result.output


@pytest.mark.slow  # an app of its own
def test_a_failed_snapshot_build_answers_at_once(project, tmp_path):
    """A warehouse without baskets yet: the snapshot build fails at once, and so does the request waiting
    for it (503 naming why), instead of waiting out FIRST_SNAPSHOT_WAIT_S for a build that had ended."""
    import shutil
    import time

    from canon.server.recommend.routes import FIRST_SNAPSHOT_WAIT_S

    empty = tmp_path / "empty.duckdb"
    shutil.copy(project.parent / "bakery.duckdb", empty)
    with duckdb.connect(str(empty)) as con:
        con.execute("DELETE FROM receipt_lines")
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".canon"))
    (copy / "canon.yml").write_text(f"warehouse: {json.dumps(str(empty))}\n")
    with _client(copy) as client:
        started = time.monotonic()
        response = client.get("/v1/recommendations/1")
        took = time.monotonic() - started
    assert response.status_code == 503 and "has no baskets" in response.json()["message"], response.text
    assert took < FIRST_SNAPSHOT_WAIT_S / 3, took
