WITH q_0 AS (
  SELECT
    "order"."metric_time__month" AS "metric_time__month",
    SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "revenue"
  FROM order_items AS "order_item"
  INNER JOIN (
    SELECT
      "order".order_id AS order_id,
      CAST(DATE_TRUNC('MONTH', "order".ordered_at) AS DATE) AS "metric_time__month"
    FROM orders AS "order"
    WHERE
      "order".status = 'completed'
      AND "order".ordered_at >= CAST('2024-02-01 00:00:00' AS TIMESTAMP)
      AND "order".ordered_at < CAST('2025-01-01 00:00:00' AS TIMESTAMP)
  ) AS "order"
    ON "order_item".order_id = "order".order_id
  GROUP BY
    "order"."metric_time__month"
), q_1 AS (
  SELECT
    "order"."metric_time__month" AS "metric_time__month",
    SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "revenue_1"
  FROM order_items AS "order_item"
  INNER JOIN (
    SELECT
      "order".order_id AS order_id,
      CAST(DATE_TRUNC('MONTH', "order".ordered_at) AS DATE) AS "metric_time__month"
    FROM orders AS "order"
    WHERE
      "order".status = 'completed'
      AND "order".ordered_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
      AND "order".ordered_at < CAST('2025-01-01 00:00:00' AS TIMESTAMP)
  ) AS "order"
    ON "order_item".order_id = "order".order_id
  GROUP BY
    "order"."metric_time__month"
), _canon_groups AS (
  SELECT
    COALESCE(
      "q_0"."metric_time__month",
      CAST(DATE_TRUNC('MONTH', "q_1"."metric_time__month" + INTERVAL 1 MONTH) AS DATE)
    ) AS "metric_time__month",
    "q_0"."revenue" AS "revenue",
    "q_1"."revenue_1" AS "revenue_1"
  FROM q_0
  FULL JOIN q_1
    ON "q_1"."metric_time__month" = CAST(DATE_TRUNC('MONTH', "q_0"."metric_time__month" - INTERVAL 1 MONTH) AS DATE)
)
SELECT
  "_canon_groups"."metric_time__month" AS "metric_time__month",
  (
    "_canon_groups"."revenue"
  ) / NULLIF((
    "_canon_groups"."revenue_1"
  ), 0) - 1 AS "revenue_mom_growth"
FROM _canon_groups
WHERE
  "_canon_groups"."metric_time__month" >= CAST('2024-02-01' AS DATE)
  AND "_canon_groups"."metric_time__month" < CAST('2025-01-01 00:00:00' AS TIMESTAMP)
  AND "_canon_groups"."metric_time__month" <= (
    SELECT
      MAX("metric_time__month")
    FROM q_0
  )
ORDER BY
  "metric_time__month" ASC
