SELECT
  `order`.`metric_time__month` AS `metric_time__month`,
  SUM(`order_item`.quantity * `order_item`.unit_price - `order_item`.discount_amount) AS `revenue`
FROM order_items AS `order_item`
INNER JOIN (
  SELECT
    `order`.order_id AS order_id,
    CAST(DATE_TRUNC('MONTH', `order`.ordered_at) AS DATE) AS `metric_time__month`
  FROM orders AS `order`
  WHERE
    `order`.status = 'completed'
) AS `order`
  ON `order_item`.order_id = `order`.order_id
GROUP BY
  `order`.`metric_time__month`
ORDER BY
  `metric_time__month` ASC NULLS LAST
