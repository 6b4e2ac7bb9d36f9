WITH q_0_daily AS (
  SELECT
    CAST(DATE_TRUNC('DAY', "order".ordered_at) AS DATE) AS "_canon_day",
    SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "revenue"
  FROM order_items AS "order_item"
  INNER JOIN orders AS "order"
    ON "order_item".order_id = "order".order_id
  WHERE
    "order".status = 'completed'
    AND "order".ordered_at >= CAST('2024-02-02 00:00:00' AS TIMESTAMP)
    AND "order".ordered_at < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('DAY', "order".ordered_at) AS DATE)
), q_0_periods AS (
  SELECT
    CAST(DATE_TRUNC('DAY', _canon_spine.date_day) AS DATE) AS "metric_time__day",
    MAX(_canon_spine.date_day) AS "_canon_end"
  FROM time_spine AS "_canon_spine"
  WHERE
    _canon_spine.date_day >= CAST('2024-03-01 00:00:00' AS TIMESTAMP)
    AND _canon_spine.date_day < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('DAY', _canon_spine.date_day) AS DATE)
), q_0 AS (
  SELECT
    "b"."metric_time__day" AS "metric_time__day",
    SUM("d"."revenue") AS "revenue"
  FROM q_0_periods AS "b"
  INNER JOIN q_0_daily AS "d"
    ON "d"."_canon_day" <= "b"."_canon_end"
    AND "d"."_canon_day" > (
      "b"."_canon_end" - INTERVAL '28 DAY'
    )
  GROUP BY
    "b"."metric_time__day"
), _canon_groups AS (
  SELECT
    "metric_time__day",
    MAX("revenue") AS "revenue"
  FROM (
    SELECT
      "metric_time__day",
      "revenue"
    FROM q_0
  ) AS "_canon_stacked"
  GROUP BY
    "metric_time__day"
)
SELECT
  "_canon_groups"."metric_time__day" AS "metric_time__day",
  "_canon_groups"."revenue" AS "revenue_rolling_28d"
FROM _canon_groups
WHERE
  "_canon_groups"."metric_time__day" >= CAST('2024-03-01' AS DATE)
  AND "_canon_groups"."metric_time__day" < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
ORDER BY
  "metric_time__day" ASC
