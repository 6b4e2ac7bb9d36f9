// Cross-sell: what is bought with an item or a value of one of its levels (GET /v1/cross-sell: confidence,
// lift, support), the pair heatmap of the first level (the catalog's lift metric, else its affinity metric,
// by antecedent × consequent through POST /v1/query), and a customer's recommendations with the reason
// for each. Every name comes from GET /v1/recommendations/config (the catalog's `recommendations:` block
// and the answers' keys), read once: no demo name is assumed. Without the block the page says so.
// State: ?level=<level>&value=<value>&customer=<id>
import { ApiError, api, cached } from "../api.js";
import { add, fmt, field, h, replace, select, table } from "../dom.js";
import { heatmap } from "../charts.js";

const entity = (ref) => ref.split(".")[0];  // sku.sku_id -> sku: what an item or customer is called
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const either = (words) => words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;

// The level picker's choices: the first level (the default), the items themselves, the other levels
// (as the demo had them). Each: its name in `level=`, the dimension its values come from, the word the page
// uses for it.
export function levelChoices(config) {
  const item = { name: config.item_level, ref: config.items.name, noun: entity(config.items.id) };
  const levels = config.items.levels.map(l => ({ name: l.name, ref: l.ref, noun: l.name }));
  return levels.length ? [levels[0], item, ...levels.slice(1)] : [item];
}

// The heatmap's question: the first level's pairs by the lift metric (or the affinity metric); null without levels.
export function heatmapQuestion(config) {
  const first = config.items.levels[0];
  if (!first) return null;
  return { metrics: [config.lift || config.affinity], dimensions: [`antecedent.${first.name}`, `consequent.${first.name}`] };
}

function notConfigured(root, error) {
  add(root, h("h1", {}, "Cross-sell"),
    h("section", { id: "not-configured", class: "warning", role: "status" },
      h("p", {}, h("strong", {}, "Recommendations are not configured for this catalog. ")), h("p", {}, error.message),
      error.hint ? h("p", { class: "hint" }, error.hint) : null));
}

export async function render(root, params, _arg, ctx) {
  let config;
  try {
    config = await cached("/v1/recommendations/config");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return notConfigured(root, error);
    return add(root, h("h1", {}, "Cross-sell"), ctx.errorBox(error));
  }
  const keys = config.answer_keys;
  const choices = levelChoices(config);
  const byName = Object.fromEntries(choices.map(c => [c.name, c]));
  const first = choices[0];
  const itemNoun = entity(config.items.id);
  const customerNoun = entity(config.customers.id);
  const baskets = `${config.basket}s`;
  const shown = config.items.show[0];  // the recommendations table's one descriptive column
  const question = heatmapQuestion(config);

  const state = { level: params.get("level") || first.name, value: params.get("value") || "",
    customer: params.get("customer") || "" };
  const save = () => ctx.setParams(Object.fromEntries(Object.entries(state).filter(([, v]) => v)));
  const level = select("level", choices.map(c => [c.name, c.name === config.item_level ? `${c.noun} (id or name)` : c.noun]), state.level);
  const value = h("input", { name: "value", value: state.value, list: "cs-values", autocomplete: "off", required: true });
  const values = h("datalist", { id: "cs-values" });
  const pairs = h("section", { id: "pairs", "aria-live": "polite", "aria-label": "Bought with" });
  const customerInput = h("input", { name: "customer", type: "number", min: 1, value: state.customer, required: true });
  const recs = h("section", { id: "recs", "aria-live": "polite", "aria-label": "Recommendations" });
  const map = h("section", { id: "heatmap", "aria-labelledby": "h-heat" });
  if (question) {
    const noun = question.dimensions[0].split(".")[1];
    add(map, h("h2", { id: "h-heat" }, `${capital(noun)} pairs: ${config.lift ? "lift" : "confidence"}`),
      h("p", { class: "muted" }, config.lift
        ? `How much more often the column ${noun} is bought with the row ${noun} than on its own (above 1, blue: bought together more than by chance; below 1, orange: less). Select a cell to see that ${noun}'s pairs.`
        : `Of the ${baskets} that hold the row ${noun}, the share that also hold the column ${noun} (darker: more often). Select a cell to see that ${noun}'s pairs.`));
  } else {
    add(map, h("h2", { id: "h-heat" }, "Pairs"),
      h("p", { class: "muted" }, "The catalog's recommendations block names no items.levels: no pair heatmap."));
  }

  async function fillValues() {
    const choice = byName[level.value];
    if (!choice) return replace(values);
    try {
      const { values: found } = await api(`/v1/dimensions/${choice.ref}/values`, { params: { limit: 500 } });
      replace(values, found.map(v => h("option", { value: v })));
    } catch { replace(values); }  // suggestions only: typing still works
  }
  async function showPairs() {
    if (!state.value) return replace(pairs, h("p", { class: "muted" }, `Pick a ${either(choices.map(c => c.noun))}.`));
    try {
      const answer = await api("/v1/cross-sell", { params: { level: state.level, value: state.value, limit: 15 } });
      const key = state.level === config.item_level ? keys.item_name : state.level;
      replace(pairs, h("h2", {}, `Bought with ${state.value}`),
        h("p", { class: "meta" }, `window ${answer.window.start} – ${answer.window.end}; ${fmt(answer.antecedent[keys.popularity])} ${baskets} hold it`),
        table([byName[state.level]?.noun || state.level, "confidence", "lift", "support", `${baskets} with both`], answer.items.map(i =>
          [i[key] ?? i[keys.item_name], i[keys.confidence], i[keys.lift], i[keys.support], i[keys.pair_count]]),
        { format: fmt, caption: `confidence = share of its ${baskets} that also hold the item` }));
    } catch (error) { replace(pairs, ctx.errorBox(error)); }
  }
  async function showRecs() {
    if (!state.customer) return replace(recs, h("p", { class: "muted" }, `Enter a ${customerNoun} id.`));
    try {
      const answer = await api(`/v1/recommendations/${encodeURIComponent(state.customer)}`, { params: { limit: 10 } });
      const about = config.customers.show.map(d => answer[d.name]).filter(v => v !== null && v !== undefined && v !== "");
      replace(recs, h("h2", {}, `For ${customerNoun} ${answer.customer_id}`),
        h("p", { class: "meta" }, `${about.join(" ")} · ${answer.purchased_products} ${itemNoun}(s) bought · strategy ${answer.strategy}`),
        table([itemNoun, ...(shown ? [shown.name] : []), "score", "why"], answer.items.map(i =>
          [i[keys.item_name], ...(shown ? [i[shown.name]] : []), i[keys.confidence] ?? i[keys.popularity_in_group] ?? null, i.reason]),
        { format: fmt }));
    } catch (error) { replace(recs, ctx.errorBox(error)); }
  }

  level.addEventListener("change", () => { state.level = level.value; save(); fillValues(); });
  add(root, h("h1", {}, "Cross-sell"),
    h("div", { class: "grid" },
      h("div", {}, h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); state.value = value.value.trim(); save(); showPairs(); } },
        field("Level", level), field("Bought with", value), values, h("button", { type: "submit" }, "Show")), pairs),
      h("div", {}, h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); state.customer = customerInput.value; save(); showRecs(); } },
        field(`${capital(customerNoun)} id`, customerInput), h("button", { type: "submit" }, "Recommend")), recs)),
    map);

  const drawMap = async () => {
    if (!question) return;
    try {
      const answer = await api("/v1/query", { method: "POST", body: question });
      map.dataset.question = JSON.stringify(question);
      add(map, h("div", { class: "scroll" }, heatmap(answer.rows.map(r => ({ row: r[0], col: r[1], value: r[2] })), {
        label: `${question.metrics[0]} by ${question.dimensions.join(" and ")}`, center: config.lift ? 1 : null,
        onCell: (c) => { state.level = first.name; state.value = c.row; level.value = first.name; value.value = c.row; save(); showPairs(); } })));
    } catch (error) { add(map, ctx.errorBox(error)); }
  };
  await Promise.all([fillValues(), showPairs(), showRecs(), drawMap()]);
}
