WITH q_0 AS (
  SELECT
    "customer".country_code AS "customer__country_code",
    SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "revenue"
  FROM order_items AS "order_item"
  INNER JOIN orders AS "order"
    ON "order_item".order_id = "order".order_id
  INNER JOIN customers AS "customer"
    ON "order".customer_id = "customer".customer_id
  WHERE
    "order".status = 'completed'
    AND "customer".segment IN ('consumer', 'small_business')
  GROUP BY
    "customer".country_code
), q_1 AS (
  SELECT
    "customer"."customer__country_code" AS "customer__country_code",
    COUNT("order".order_id) AS "order_count"
  FROM orders AS "order"
  INNER JOIN (
    SELECT
      "customer".customer_id AS customer_id,
      "customer".country_code AS "customer__country_code"
    FROM customers AS "customer"
    WHERE
      "customer".segment IN ('consumer', 'small_business')
  ) AS "customer"
    ON "order".customer_id = "customer".customer_id
  WHERE
    "order".status = 'completed'
  GROUP BY
    "customer"."customer__country_code"
), _canon_groups AS (
  SELECT
    "customer__country_code",
    MAX("revenue") AS "revenue",
    MAX("order_count") AS "order_count"
  FROM (
    SELECT
      "customer__country_code",
      "revenue",
      NULL AS "order_count"
    FROM q_0
    UNION ALL
    SELECT
      "customer__country_code",
      NULL AS "revenue",
      "order_count"
    FROM q_1
  ) AS "_canon_stacked"
  GROUP BY
    "customer__country_code"
)
SELECT
  "_canon_groups"."customer__country_code" AS "customer__country_code",
  CAST("_canon_groups"."revenue" AS Nullable(Float64)) / nullIf(COALESCE("_canon_groups"."order_count", 0), 0) AS "aov"
FROM _canon_groups
ORDER BY
  "aov" DESC,
  "customer__country_code" ASC
LIMIT 10
SETTINGS join_use_nulls = 1
