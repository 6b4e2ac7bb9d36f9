"""Cross-sell, upsell, personalized recommendations and campaign audiences, served in real time.

Every number comes from the governed metrics (cross_sell_score, cross_sell_support, cross_sell_lift,
cross_sell_pair_orders, product_purchase_frequency, ...) through the compiler: `snapshot.py` runs
those metric requests on the warehouse and keeps the answers in memory (an `AffinitySnapshot`,
swapped atomically and persisted under <project>/.canon/), `engine.py` answers from a snapshot in
microseconds, `feedback.py` records feedback durably, `routes.py` is the HTTP API.
"""
