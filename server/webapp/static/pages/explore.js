// Explorer: metrics × dimensions with filters, a time range and grain → POST /v1/query; a chart
// (line over time, bars by category, heatmap for two categories), the table, the SQL, the elapsed
// time, CSV. The URL holds the whole question: ?m=revenue&d=metric_time.month&w=...&start=&end=
import { api, cached } from "../api.js";
import { add, h, fmt, field, replace, select, table } from "../dom.js";
import { barChart, heatmap, lineChart } from "../charts.js";

const GRAINS = ["", "day", "week", "month", "quarter", "year"];
const list = (v) => (v || "").split(",").map(x => x.trim()).filter(Boolean);

export function questionOf(params) {
  const dims = list(params.get("d"));
  const body = { metrics: list(params.get("m")), dimensions: dims };
  const where = params.getAll("w").filter(Boolean);
  if (where.length) body.where = where;
  for (const key of ["start", "end", "time_range"]) if (params.get(key)) body[key] = params.get(key);
  body.limit = Number(params.get("limit") || 500);
  const time = dims.find(d => d.startsWith("metric_time."));
  if (time) body.order = [time];
  return body;
}

export async function render(root, params, _arg, ctx) {
  const { metrics } = await cached("/v1/metrics");
  const question = questionOf(params);
  const grain = (question.dimensions.find(d => d.startsWith("metric_time.")) || "").split(".")[1] || "";
  const otherDims = question.dimensions.filter(d => !d.startsWith("metric_time."));

  const metricSelect = h("select", { name: "m", multiple: true, size: 8 }, metrics.map(m =>
    h("option", { value: m.name, selected: question.metrics.includes(m.name) }, `${m.label || m.name} (${m.name})${m.tier === "deprecated" ? " — deprecated" : ""}`)));
  const dimSelect = h("select", { name: "d", multiple: true, size: 8 });
  const grainSelect = select("grain", GRAINS.map(g => [g, g || "none"]), grain);
  const start = h("input", { type: "date", name: "start", value: question.start || "" });
  const end = h("input", { type: "date", name: "end", value: question.end || "" });
  const range = h("input", { name: "time_range", value: question.time_range || "", placeholder: "last 90 days", autocomplete: "off" });
  const where = h("textarea", { name: "w", rows: 2, placeholder: "product.category = 'Phones'" }, (question.where || []).join("\n"));
  const out = h("section", { id: "answer", "aria-label": "Answer", "aria-live": "polite" });

  async function loadDimensions() {
    const chosen = [...metricSelect.selectedOptions].map(o => o.value);
    if (!chosen.length) return replace(dimSelect);
    try {
      const { dimensions } = await api("/v1/dimensions", { params: { metrics: chosen.join(",") } });
      replace(dimSelect, dimensions.filter(d => d.ref !== "metric_time").map(d =>
        h("option", { value: d.ref, selected: otherDims.includes(d.ref) }, `${d.ref} (${d.type})`)));
    } catch (error) { replace(dimSelect); out.replaceChildren(ctx.errorBox(error)); }
  }
  metricSelect.addEventListener("change", loadDimensions);

  const form = h("form", { class: "explorer", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    next.set("m", [...metricSelect.selectedOptions].map(o => o.value).join(","));
    const dims = [...(grainSelect.value ? [`metric_time.${grainSelect.value}`] : []), ...[...dimSelect.selectedOptions].map(o => o.value)];
    if (dims.length) next.set("d", dims.join(","));
    for (const line of where.value.split("\n").map(x => x.trim()).filter(Boolean)) next.append("w", line);
    if (start.value) next.set("start", start.value);
    if (end.value) next.set("end", end.value);
    if (range.value.trim()) next.set("time_range", range.value.trim());
    location.hash = ctx.link("explore", next);  // navigation: the shared link and Back both work
  } },
  h("div", { class: "cols" }, field("Metrics", metricSelect, "Ctrl/⌘-click for more than one"),
    field("Group by", dimSelect), h("div", {}, field("Time grain", grainSelect), field("From", start), field("To", end), field("Or a relative range", range))),
  field("Filters (one per line)", where, "dimension conditions, checked by the server's allow-list"),
  h("button", { type: "submit" }, "Run"));

  add(root, h("h1", {}, "Explorer"), form, out);
  await loadDimensions();
  if (question.metrics.length) await ask(question, out, ctx);
  else add(out, h("p", { class: "muted" }, "Choose one or more metrics and press Run."));
}

async function ask(question, out, ctx) {
  const started = performance.now();
  let answer;
  try {
    answer = await api("/v1/query", { method: "POST", body: question });
  } catch (error) {
    add(out, ctx.errorBox(error));
    return;
  }
  const roundTrip = performance.now() - started;
  out.dataset.question = JSON.stringify(question);  // what was asked, exactly (tests replay it)
  const names = answer.columns.map(c => c.name);
  add(out, 
    (answer.warnings || []).map(w => h("div", { class: "warning", role: "note" }, w)),
    h("p", { class: "meta", id: "elapsed" }, `${answer.rows.length} row(s)${answer.truncated ? " (truncated)" : ""} · `,
      `${fmt(answer.elapsed_ms)} ms in the warehouse · ${Math.round(roundTrip)} ms round trip${answer.cached ? " · from cache" : ""}`),
    chartFor(answer, question),
    h("p", {}, h("button", { type: "button", onclick: () => download(answer) }, "Download CSV")),
    table(names, answer.rows.map(r => r.map(v => typeof v === "number" ? fmt(v) : v ?? "∅")), { caption: "Result" }),
    h("details", {}, h("summary", {}, "SQL"), h("pre", { class: "sql", tabindex: "0" }, answer.sql || "")));
}

export function chartFor(answer, question) {
  const cols = answer.columns;
  const dimIdx = cols.map((c, i) => i).filter(i => question.dimensions.includes(cols[i].name));
  const metIdx = cols.map((c, i) => i).filter(i => question.metrics.includes(cols[i].name));
  const timeIdx = dimIdx.find(i => cols[i].name.startsWith("metric_time.") || cols[i].type === "time");
  const label = `${question.metrics.join(", ")}${question.dimensions.length ? " by " + question.dimensions.join(", ") : ""}`;
  const wrap = (svg) => h("figure", { class: "chart-wrap" }, svg, h("figcaption", {}, label));
  if (!answer.rows.length || !metIdx.length) return null;
  if (timeIdx !== undefined) {
    const others = dimIdx.filter(i => i !== timeIdx);
    const series = new Map();
    for (const row of answer.rows) {
      for (const m of metIdx) {
        const name = [cols[m].name, ...others.map(i => row[i])].join(" · ");
        if (!series.has(name)) series.set(name, []);
        series.get(name).push({ x: String(row[timeIdx]), y: row[m] });
      }
    }
    return wrap(lineChart([...series].slice(0, 8).map(([name, points]) => ({ name, points })), { label }));
  }
  if (dimIdx.length === 2 && metIdx.length === 1) {
    const m = metIdx[0];
    const lift = /lift/.test(cols[m].name);
    return wrap(heatmap(answer.rows.map(r => ({ row: r[dimIdx[0]], col: r[dimIdx[1]], value: r[m] })), { label, center: lift ? 1 : null }));
  }
  if (dimIdx.length >= 1) {
    const rows = answer.rows.slice(0, 40);
    const cats = rows.map(r => dimIdx.map(i => r[i] ?? "∅").join(" · "));
    return wrap(barChart(cats, metIdx.map(m => ({ name: cols[m].name, values: rows.map(r => r[m]) })), { label }));
  }
  return h("div", { class: "big-numbers" }, metIdx.map(m => h("div", {}, h("span", { class: "muted" }, cols[m].name), h("strong", {}, fmt(answer.rows[0][m])))));
}

function csvCell(v) {
  const text = v === null || v === undefined ? "" : String(v);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function download(answer) {
  const lines = [answer.columns.map(c => csvCell(c.name)).join(","), ...answer.rows.map(r => r.map(csvCell).join(","))];
  const url = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
  const a = h("a", { href: url, download: "canon-query.csv" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
