WITH q_0 AS (
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
      AND `order`.ordered_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
      AND `order`.ordered_at < CAST('2025-01-01 00:00:00' AS TIMESTAMP)
  ) AS `order`
    ON `order_item`.order_id = `order`.order_id
  GROUP BY
    `order`.`metric_time__month`
), q_1 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', `ad_spend`.spend_date) AS DATE) AS `metric_time__month`,
    SUM(`ad_spend`.spend) AS `ad_spend`
  FROM (
    SELECT
      *
    FROM (
      SELECT
        *,
        ROW_NUMBER() OVER (PARTITION BY campaign_id, spend_date, country_code ORDER BY _etl_loaded_at DESC) AS _canon_rank
      FROM ad_spend
    ) AS _canon_ranked
    WHERE
      _canon_rank = 1
  ) AS `ad_spend`
  WHERE
    `ad_spend`.spend_date >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
    AND `ad_spend`.spend_date < CAST('2025-01-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', `ad_spend`.spend_date) AS DATE)
), _canon_groups AS (
  SELECT
    `metric_time__month`,
    MAX(`revenue`) AS `revenue`,
    MAX(`ad_spend`) AS `ad_spend`
  FROM (
    SELECT
      `metric_time__month`,
      `revenue`,
      NULL AS `ad_spend`
    FROM q_0
    UNION ALL
    SELECT
      `metric_time__month`,
      NULL AS `revenue`,
      `ad_spend`
    FROM q_1
  ) AS `_canon_stacked`
  GROUP BY
    `metric_time__month`
)
SELECT
  `_canon_groups`.`metric_time__month` AS `metric_time__month`,
  `_canon_groups`.`revenue` AS `revenue`,
  `_canon_groups`.`ad_spend` AS `ad_spend`
FROM _canon_groups
ORDER BY
  `metric_time__month` ASC NULLS LAST
