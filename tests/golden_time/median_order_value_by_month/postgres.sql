SELECT
  "metric_time__month" AS "metric_time__month",
  PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY
    CAST("_v_median_order_value" AS DOUBLE PRECISION)) AS "median_order_value"
FROM (
  SELECT
    CAST(DATE_TRUNC('MONTH', "order".ordered_at) AS DATE) AS "metric_time__month",
    "order_item".order_id AS "_canon_entity",
    SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "_v_median_order_value"
  FROM order_items AS "order_item"
  INNER JOIN orders AS "order"
    ON "order_item".order_id = "order".order_id
  WHERE
    "order".status = 'completed'
  GROUP BY
    CAST(DATE_TRUNC('MONTH', "order".ordered_at) AS DATE),
    "order_item".order_id
) AS "_canon_per_entity"
GROUP BY
  "metric_time__month"
ORDER BY
  "metric_time__month" ASC
