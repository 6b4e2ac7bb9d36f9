WITH _canon_lines AS (
  SELECT DISTINCT
    `order_item`.order_id AS `_basket`,
    `order_item`.product_id AS `_item`,
    `product`.product_name AS `antecedent__product_name`,
    `product`.product_name AS `consequent__product_name`
  FROM order_items AS `order_item`
  LEFT JOIN products AS `product`
    ON `order_item`.product_id = `product`.product_id
  LEFT JOIN orders AS `order`
    ON `order_item`.order_id = `order`.order_id
  WHERE
    `order`.status = 'completed'
), _canon_baskets AS (
  SELECT
    COUNT(DISTINCT `_basket`) AS `_n`
  FROM _canon_lines
), _canon_antecedent AS (
  SELECT DISTINCT
    `_basket`,
    `antecedent__product_name`
  FROM _canon_lines
), _canon_consequent AS (
  SELECT DISTINCT
    `_basket`,
    `consequent__product_name`
  FROM _canon_lines
), _canon_antecedent_n AS (
  SELECT
    `antecedent__product_name`,
    COUNT(DISTINCT `_basket`) AS `_n_a`
  FROM _canon_antecedent
  GROUP BY
    `antecedent__product_name`
), _canon_consequent_n AS (
  SELECT
    `consequent__product_name`,
    COUNT(DISTINCT `_basket`) AS `_n_c`
  FROM _canon_consequent
  GROUP BY
    `consequent__product_name`
), _canon_pairs AS (
  SELECT
    `x`.`antecedent__product_name`,
    `y`.`consequent__product_name`,
    COUNT(*) AS `_n_ac`
  FROM _canon_antecedent AS `x`
  INNER JOIN _canon_consequent AS `y`
    ON `x`.`_basket` = `y`.`_basket`
    AND NOT (
      `x`.`antecedent__product_name` IS NOT DISTINCT FROM `y`.`consequent__product_name`
    )
  GROUP BY
    `x`.`antecedent__product_name`,
    `y`.`consequent__product_name`
)
SELECT
  `p`.`antecedent__product_name` AS `antecedent__product_name`,
  `p`.`consequent__product_name` AS `consequent__product_name`,
  CAST(`p`.`_n_ac` AS DOUBLE) / NULLIF(`na`.`_n_a`, 0) AS `cross_sell_score`
FROM _canon_pairs AS `p`
INNER JOIN _canon_antecedent_n AS `na`
  ON `p`.`antecedent__product_name` IS NOT DISTINCT FROM `na`.`antecedent__product_name`
INNER JOIN _canon_consequent_n AS `nc`
  ON `p`.`consequent__product_name` IS NOT DISTINCT FROM `nc`.`consequent__product_name`
CROSS JOIN _canon_baskets AS `b`
ORDER BY
  `cross_sell_score` DESC,
  `antecedent__product_name` ASC NULLS LAST,
  `consequent__product_name` ASC NULLS LAST
LIMIT 20
