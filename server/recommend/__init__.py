"""Cross-sell, upsell, personalized recommendations and campaign audiences, served in real time.

What they are built from is the catalog's `recommendations:` block (compiler/recommendations.py;
docs/recommendations.md): the affinity metric (cross_sell_score on the demo) and its rule numbers,
the popularity metric, the item and customer dimensions and the upsell tiers. A catalog without the
block has no recommendations. Every number comes from governed metrics through the compiler:
`snapshot.py` runs those metric requests on the warehouse and keeps the answers in memory (an
`AffinitySnapshot`, swapped atomically and persisted under <project>/.canon/), `engine.py` answers
from a snapshot in microseconds, `feedback.py` records feedback durably, `routes.py` is the HTTP API.
"""
