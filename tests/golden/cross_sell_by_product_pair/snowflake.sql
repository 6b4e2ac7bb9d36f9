WITH _canon_lines AS (
  SELECT DISTINCT
    "order_item".order_id AS "_basket",
    "order_item".product_id AS "_canon_a_key"
  FROM order_items AS "order_item"
  INNER JOIN orders AS "order"
    ON "order_item".order_id = "order".order_id
  WHERE
    "order".status = 'completed'
), _canon_antecedent_n AS (
  SELECT
    "_canon_a_key",
    COUNT(*) AS "_n_a"
  FROM _canon_lines
  GROUP BY
    "_canon_a_key"
), _canon_pairs AS (
  SELECT
    "x"."_canon_a_key",
    "y"."_canon_a_key" AS "_canon_c_key",
    COUNT(*) AS "_n_ac"
  FROM _canon_lines AS "x"
  INNER JOIN _canon_lines AS "y"
    ON "x"."_basket" = "y"."_basket"
    AND NOT (
      "x"."_canon_a_key" IS NOT DISTINCT FROM "y"."_canon_a_key"
    )
  GROUP BY
    "x"."_canon_a_key",
    "y"."_canon_a_key"
)
SELECT
  "_canon_a".product_name AS "antecedent__product_name",
  "_canon_c".product_name AS "consequent__product_name",
  CAST("p"."_n_ac" AS DOUBLE) / NULLIF("na"."_n_a", 0) AS "cross_sell_score"
FROM _canon_pairs AS "p"
INNER JOIN _canon_antecedent_n AS "na"
  ON "p"."_canon_a_key" IS NOT DISTINCT FROM "na"."_canon_a_key"
INNER JOIN products AS "_canon_a"
  ON "_canon_a".product_id = "p"."_canon_a_key"
INNER JOIN products AS "_canon_c"
  ON "_canon_c".product_id = "p"."_canon_c_key"
ORDER BY
  "cross_sell_score" DESC NULLS LAST,
  "antecedent__product_name" ASC,
  "consequent__product_name" ASC
LIMIT 20
