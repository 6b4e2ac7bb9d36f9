WITH q_0_daily AS (
  SELECT
    CAST(DATE_TRUNC('DAY', "order".ordered_at) AS DATE) AS "_canon_day",
    SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "revenue"
  FROM order_items AS "order_item"
  INNER JOIN orders AS "order"
    ON "order_item".order_id = "order".order_id
  WHERE
    "order".status = 'completed'
    AND "order".ordered_at >= CAST('2024-03-01 00:00:00' AS TIMESTAMP)
    AND "order".ordered_at < CAST('2024-05-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('DAY', "order".ordered_at) AS DATE)
), q_0_periods AS (
  SELECT
    CAST(DATE_TRUNC('WEEK', _canon_spine.date_day) AS DATE) AS "metric_time__week",
    MAX(_canon_spine.date_day) AS "_canon_end"
  FROM time_spine AS "_canon_spine"
  WHERE
    _canon_spine.date_day >= CAST('2024-03-01 00:00:00' AS TIMESTAMP)
    AND _canon_spine.date_day < CAST('2024-05-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('WEEK', _canon_spine.date_day) AS DATE)
), q_0 AS (
  SELECT
    "_canon_period" AS "metric_time__week",
    "revenue"
  FROM (
    SELECT
      "_canon_period",
      COUNT("_canon_row") OVER (
        PARTITION BY CAST(DATE_TRUNC('MONTH', "_canon_day") AS DATE)
        ORDER BY CAST(EXTRACT(epoch FROM CAST("_canon_day" AS TIMESTAMP) - CAST(CAST('1970-01-01' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) NULLS FIRST
        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS "_canon_rows",
      SUM("revenue") OVER (
        PARTITION BY CAST(DATE_TRUNC('MONTH', "_canon_day") AS DATE)
        ORDER BY CAST(EXTRACT(epoch FROM CAST("_canon_day" AS TIMESTAMP) - CAST(CAST('1970-01-01' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) NULLS FIRST
        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS "revenue"
    FROM (
      SELECT
        "_canon_day",
        NULL AS "_canon_period",
        1 AS "_canon_row",
        "revenue"
      FROM q_0_daily
      WHERE
        NOT "_canon_day" IS NULL
      UNION ALL
      SELECT
        "_canon_end" AS "_canon_day",
        "metric_time__week" AS "_canon_period",
        NULL AS "_canon_row",
        NULL AS "revenue"
      FROM q_0_periods
    ) AS "_canon_days"
  ) AS "_canon_framed"
  WHERE
    NOT "_canon_period" IS NULL AND "_canon_rows" > 0
)
SELECT
  "q_0"."metric_time__week" AS "metric_time__week",
  "q_0"."revenue" AS "revenue_mtd"
FROM q_0
WHERE
  "q_0"."metric_time__week" >= CAST('2024-02-26' AS DATE)
  AND "q_0"."metric_time__week" < CAST('2024-05-01 00:00:00' AS TIMESTAMP)
ORDER BY
  "metric_time__week" ASC
