// Catalog: one search over metrics, dimensions, glossary terms and synonyms (GET /v1/search), and
// the metric list filtered by owner, tier and tag (GET /v1/metrics). State: ?q=&owner=&tier=&tag=
import { api, cached } from "../api.js";
import { add, badge, field, h, replace, select } from "../dom.js";

const TIERS = ["certified", "verified", "draft", "deprecated"];

export async function render(root, params, _arg, ctx) {
  const [{ metrics }, { terms }] = await Promise.all([cached("/v1/metrics"), cached("/v1/glossary")]);
  const state = { q: params.get("q") || "", owner: params.get("owner") || "", tier: params.get("tier") || "",
    tag: params.get("tag") || "" };
  const owners = [...new Set(metrics.map(m => m.owner).filter(Boolean))].sort();
  const tags = [...new Set(metrics.flatMap(m => m.tags))].sort();
  const byName = new Map(metrics.map(m => [m.name, m]));
  const termByName = new Map(terms.map(t => [t.name, t]));

  const search = h("input", { type: "search", name: "q", value: state.q, placeholder: "revenue, basket, churn…",
    autocomplete: "off" });
  const any = (label) => [["", label]];
  const controls = {
    owner: select("owner", [...any("any owner"), ...owners], state.owner),
    tier: select("tier", [...any("any tier"), ...TIERS], state.tier),
    tag: select("tag", [...any("any tag"), ...tags], state.tag),
  };
  const results = h("section", { "aria-label": "Results", id: "results" });
  add(root, h("h1", {}, "Catalog"),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      field("Search metrics, dimensions and glossary", search),
      field("Owner", controls.owner), field("Tier", controls.tier), field("Tag", controls.tag)),
    results);

  const keep = (m) => (!state.owner || m.owner === state.owner) && (!state.tier || m.tier === state.tier)
    && (!state.tag || m.tags.includes(state.tag));

  async function update() {
    ctx.setParams(Object.fromEntries(Object.entries(state).filter(([, v]) => v)));
    let items;
    if (state.q.trim()) {
      const { results: hits } = await api("/v1/search", { params: { q: state.q.trim(), limit: 50 } });
      items = hits.filter(hit => hit.kind !== "metric" ? !(state.owner || state.tier || state.tag)
        : byName.has(hit.name) && keep(byName.get(hit.name)));
    } else {
      items = metrics.filter(keep).map(m => ({ kind: "metric", name: m.name, label: m.label }));
      if (!(state.owner || state.tier || state.tag)) items.push(...terms.map(t => ({ kind: "term", name: t.name, label: t.term })));
    }
    replace(results, h("p", { class: "muted", role: "status" }, `${items.length} result${items.length === 1 ? "" : "s"}`),
      h("ul", { class: "results" }, items.map(hit => item(hit, byName, termByName, ctx))));
  }

  let timer;
  search.addEventListener("input", () => { state.q = search.value; clearTimeout(timer); timer = setTimeout(() => update().catch(show), 200); });
  for (const [key, control] of Object.entries(controls)) {
    control.addEventListener("change", () => { state[key] = control.value; update().catch(show); });
  }
  const show = (error) => replace(results, ctx.errorBox(error));
  await update();
}

function item(hit, byName, termByName, ctx) {
  const why = hit.why ? h("span", { class: "why" }, `matched: ${hit.why}`) : null;
  if (hit.kind === "metric") {
    const m = byName.get(hit.name);
    return h("li", { class: "result metric", "data-name": hit.name },
      h("a", { href: ctx.link("metric", null, hit.name) }, m?.label || hit.label || hit.name),
      " ", h("code", {}, hit.name), " ", badge(m?.tier), " ", why,
      h("div", { class: "meta" }, m?.owner ? `owner ${m.owner}` : "", m?.tags?.length ? ` · ${m.tags.join(", ")}` : ""),
      m?.description ? h("p", {}, m.description) : null);
  }
  if (hit.kind === "term") {
    const t = termByName.get(hit.name);
    return h("li", { class: "result term", "data-name": hit.name },
      badge("glossary", "kind"), " ", h("strong", {}, t?.term || hit.label || hit.name), " ", why,
      t?.definition ? h("p", {}, t.definition) : null,
      t?.synonyms?.length ? h("div", { class: "meta" }, `also: ${t.synonyms.join(", ")}`) : null,
      t?.metrics?.length ? h("div", { class: "meta" }, "metrics: ",
        t.metrics.flatMap((name, i) => [i ? ", " : "", h("a", { href: ctx.link("metric", null, name) }, name)])) : null);
  }
  return h("li", { class: "result dimension", "data-name": hit.name },
    badge(hit.kind, "kind"), " ", h("code", {}, hit.name), hit.label ? ` ${hit.label}` : "", " ", why);
}
