SELECT
  "_canon_keys"."product__category" AS "product__category",
  SUM("order".shipping_amount) AS "shipping_total"
FROM orders AS "order"
INNER JOIN (
  SELECT DISTINCT
    "order".order_id AS "_canon_key",
    "product".category AS "product__category"
  FROM orders AS "order"
  LEFT JOIN order_items AS "order_item"
    ON "order".order_id = "order_item".order_id
  LEFT JOIN products AS "product"
    ON "order_item".product_id = "product".product_id
  WHERE
    "order".status = 'completed'
) AS "_canon_keys"
  ON "order".order_id = "_canon_keys"."_canon_key"
GROUP BY
  "_canon_keys"."product__category"
ORDER BY
  "product__category" ASC
