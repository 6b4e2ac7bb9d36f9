SELECT
  CAST(DATE_TRUNC('MONTH', "order".ordered_at) AS DATE) AS "metric_time__month",
  SUM("order_item".quantity * "order_item".unit_price - "order_item".discount_amount) AS "revenue"
FROM order_items AS "order_item"
LEFT JOIN orders AS "order"
  ON "order_item".order_id = "order".order_id
WHERE
  "order".status = 'completed'
GROUP BY
  CAST(DATE_TRUNC('MONTH', "order".ordered_at) AS DATE)
ORDER BY
  "metric_time__month" ASC
