// Cross-sell: what is bought with a product, category or brand (GET /v1/cross-sell: confidence,
// lift, support), the category-pair lift heatmap (cross_sell_lift by antecedent × consequent
// category through POST /v1/query), and a customer's recommendations with the reason for each.
// State: ?level=category&value=Phones&customer=42
import { api } from "../api.js";
import { add, fmt, field, h, replace, select, table } from "../dom.js";
import { heatmap } from "../charts.js";

const HEATMAP = { metrics: ["cross_sell_lift"], dimensions: ["antecedent.category", "consequent.category"] };
const VALUES = { category: "product.category", brand: "product.brand", product: "product.product_name" };

export async function render(root, params, _arg, ctx) {
  const state = { level: params.get("level") || "category", value: params.get("value") || "",
    customer: params.get("customer") || "" };
  const save = () => ctx.setParams(Object.fromEntries(Object.entries(state).filter(([, v]) => v)));
  const level = select("level", [["category", "category"], ["product", "product (id or name)"], ["brand", "brand"]], state.level);
  const value = h("input", { name: "value", value: state.value, list: "cs-values", autocomplete: "off", required: true });
  const values = h("datalist", { id: "cs-values" });
  const pairs = h("section", { id: "pairs", "aria-live": "polite", "aria-label": "Bought with" });
  const customer = h("input", { name: "customer", type: "number", min: 1, value: state.customer, required: true });
  const recs = h("section", { id: "recs", "aria-live": "polite", "aria-label": "Recommendations" });
  const map = h("section", { id: "heatmap", "aria-labelledby": "h-heat" }, h("h2", { id: "h-heat" }, "Category pairs: lift"),
    h("p", { class: "muted" }, "How much more often the column category is bought with the row category than on its own (above 1, blue: bought together more than by chance; below 1, orange: less). Select a cell to see that category's pairs."));

  async function fillValues() {
    try {
      const { values: found } = await api(`/v1/dimensions/${VALUES[level.value]}/values`, { params: { limit: 500 } });
      replace(values, found.map(v => h("option", { value: v })));
    } catch { replace(values); }  // suggestions only: typing still works
  }
  async function showPairs() {
    if (!state.value) return replace(pairs, h("p", { class: "muted" }, "Pick a category, product or brand."));
    try {
      const answer = await api("/v1/cross-sell", { params: { level: state.level, value: state.value, limit: 15 } });
      const key = state.level === "product" ? "product_name" : state.level;
      replace(pairs, h("h2", {}, `Bought with ${state.value}`),
        h("p", { class: "meta" }, `window ${answer.window.start} – ${answer.window.end}; ${fmt(Object.values(answer.antecedent).find(v => typeof v === "number"))} orders hold it`),
        table([state.level, "confidence", "lift", "support", "orders with both"], answer.items.map(i =>
          [i[key] ?? i.product_name ?? i.category, i.cross_sell_score, i.cross_sell_lift, i.cross_sell_support, i.cross_sell_pair_orders]),
        { format: fmt, caption: "confidence = share of its orders that also hold the item" }));
    } catch (error) { replace(pairs, ctx.errorBox(error)); }
  }
  async function showRecs() {
    if (!state.customer) return replace(recs, h("p", { class: "muted" }, "Enter a customer id."));
    try {
      const answer = await api(`/v1/recommendations/${encodeURIComponent(state.customer)}`, { params: { limit: 10 } });
      replace(recs, h("h2", {}, `For customer ${answer.customer_id}`),
        h("p", { class: "meta" }, `${answer.segment || ""} ${answer.country_code || ""} · ${answer.purchased_products} product(s) bought · strategy ${answer.strategy}`),
        table(["product", "category", "score", "why"], answer.items.map(i =>
          [i.product_name, i.category, i.cross_sell_score ?? i.product_purchase_frequency_in_group ?? null, i.reason]), { format: fmt }));
    } catch (error) { replace(recs, ctx.errorBox(error)); }
  }

  level.addEventListener("change", () => { state.level = level.value; save(); fillValues(); });
  add(root, h("h1", {}, "Cross-sell"),
    h("div", { class: "grid" },
      h("div", {}, h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); state.value = value.value.trim(); save(); showPairs(); } },
        field("Level", level), field("Bought with", value), values, h("button", { type: "submit" }, "Show")), pairs),
      h("div", {}, h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); state.customer = customer.value; save(); showRecs(); } },
        field("Customer id", customer), h("button", { type: "submit" }, "Recommend")), recs)),
    map);

  const drawMap = async () => {
    try {
      const answer = await api("/v1/query", { method: "POST", body: HEATMAP });
      map.dataset.question = JSON.stringify(HEATMAP);
      add(map, h("div", { class: "scroll" }, heatmap(answer.rows.map(r => ({ row: r[0], col: r[1], value: r[2] })), {
        label: "cross_sell_lift by antecedent.category and consequent.category", center: 1,
        onCell: (c) => { state.level = "category"; state.value = c.row; level.value = "category"; value.value = c.row; save(); showPairs(); } })));
    } catch (error) { add(map, ctx.errorBox(error)); }
  };
  await Promise.all([fillValues(), showPairs(), showRecs(), drawMap()]);
}
