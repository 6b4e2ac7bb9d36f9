WITH q_0 AS (
  SELECT
    `campaign`.channel AS `campaign__channel`,
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
  INNER JOIN campaigns AS `campaign`
    ON `ad_spend`.campaign_id = `campaign`.campaign_id
  GROUP BY
    `campaign`.channel
), q_1 AS (
  SELECT
    `campaign`.channel AS `campaign__channel`,
    COUNT(`acquisition`.customer_id) AS `new_customers`
  FROM (
    SELECT
      f.customer_id,
      c.first_campaign_id,
      f.first_order_at
    FROM (
      SELECT
        customer_id,
        MIN(ordered_at) AS first_order_at
      FROM orders
      WHERE
        status = 'completed'
      GROUP BY
        customer_id
    ) AS f
    JOIN customers AS c
      ON c.customer_id = f.customer_id
  ) AS `acquisition`
  LEFT JOIN campaigns AS `campaign`
    ON `acquisition`.first_campaign_id = `campaign`.campaign_id
  GROUP BY
    `campaign`.channel
), _canon_groups AS (
  SELECT
    `campaign__channel`,
    MAX(`ad_spend`) AS `ad_spend`,
    MAX(`new_customers`) AS `new_customers`
  FROM (
    SELECT
      `campaign__channel`,
      `ad_spend`,
      NULL AS `new_customers`
    FROM q_0
    UNION ALL
    SELECT
      `campaign__channel`,
      NULL AS `ad_spend`,
      `new_customers`
    FROM q_1
  ) AS `_canon_stacked`
  GROUP BY
    `campaign__channel`
)
SELECT
  `_canon_groups`.`campaign__channel` AS `campaign__channel`,
  CAST(`_canon_groups`.`ad_spend` AS FLOAT64) / NULLIF(`_canon_groups`.`new_customers`, 0) AS `cac`
FROM _canon_groups
ORDER BY
  `campaign__channel` ASC NULLS LAST
