// Change review: `canon diff` between two git refs (GET /v1/diff), for a reviewer to approve from a
// link: each change classified, why, what depends on it, the SQL diff, and the sample numbers before
// and after drawn side by side. State: ?base=HEAD~1&head=HEAD (no head: the served catalog).
import { api } from "../api.js";
import { add, badge, field, fmt, h, replace, table } from "../dom.js";
import { barChart, lineChart } from "../charts.js";

const TITLES = { breaking: "Breaking", value_changing: "Value-changing", metadata_only: "Metadata only", additive: "Additions" };

export async function render(root, params, _arg, ctx) {
  const base = h("input", { name: "base", value: params.get("base") || "HEAD", list: "refs", required: true, autocomplete: "off" });
  const head = h("input", { name: "head", value: params.get("head") || "", list: "refs", placeholder: "the served catalog", autocomplete: "off" });
  const refs = h("datalist", { id: "refs" });
  const out = h("section", { id: "review", "aria-live": "polite", "aria-label": "Changes" });
  add(root, h("h1", {}, "Change review"),
    h("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      location.hash = ctx.link("review", Object.fromEntries(Object.entries({ base: base.value.trim(), head: head.value.trim() }).filter(([, v]) => v)));
    } }, field("Before (base ref)", base), field("After (head ref)", head, "empty: the catalog this server serves now"), refs,
    h("button", { type: "submit" }, "Compare")), out);

  const listing = api("/v1/diff/refs").then(found => {
    replace(refs, [...found.refs.map(r => h("option", { value: r.ref })),
      ...found.commits.map(c => h("option", { value: c.short }, `${c.short} ${c.subject}`))]);
  }).catch(() => {});  // suggestions only; the diff below reports the real error
  add(out, h("p", { class: "muted" }, "Comparing… (compiles both catalogs and runs the sample queries)"));
  try {
    const report = await api("/v1/diff", { params: { base: base.value.trim(), head: head.value.trim() } });
    replace(out, summary(report), ...changes(report));
  } catch (error) {
    replace(out, ctx.errorBox(error));
  }
  await listing;
}

function summary(report) {
  return h("div", { class: "summary" },
    h("p", {}, `${report.base}${report.base_sha ? ` (${report.base_sha.slice(0, 10)})` : ""} → ${report.head}${report.head_sha ? ` (${report.head_sha.slice(0, 10)})` : ""}`),
    h("p", {}, Object.entries(report.summary).map(([k, n]) => [badge(`${n} ${TITLES[k].toLowerCase()}`, n ? k : "none"), " "])),
    report.breaking ? h("div", { class: "error", role: "alert" }, "Breaking changes: clients that use the removed or renamed names will fail.") : null,
    report.changes.length ? null : h("p", {}, "No changes between these refs."),
    report.notes.map(n => h("p", { class: "muted" }, n)));
}

function changes(report) {
  return Object.keys(TITLES).filter(k => report.changes.some(c => c.severity === k)).map(severity =>
    h("section", { class: `severity ${severity}` }, h("h2", {}, TITLES[severity]),
      report.changes.filter(c => c.severity === severity).sort((a, b) => !!a.cause - !!b.cause).map(change)));
}

// a change made directly is open; one that only moved through another (c.cause) starts folded
function change(c) {
  return h("article", { class: "change", "data-kind": c.kind, "data-name": c.name, "data-severity": c.severity },
    h("details", { open: !c.cause }, h("summary", {}, h("h3", {}, `${c.kind.replace("_", " ")} `, h("code", {}, c.name), ` ${c.change}`,
      c.recertify ? [" ", badge("re-certify", "warn")] : "", c.cause ? h("span", { class: "why" }, ` through ${c.cause}`) : "")),
    c.details.length ? h("ul", {}, c.details.map(d => h("li", {}, d))) : null,
    c.cause ? h("p", { class: "meta" }, `moved by ${c.cause}`) : null,
    c.dependents.length ? h("p", { class: "meta" }, `depends on it: ${c.dependents.join(", ")}`) : null,
    c.sample ? sample(c) : null));
}

function sample(c) {
  const s = c.sample;
  const parts = [h("h4", {}, "SQL diff"), sqlDiff(s.sql_diff)];
  if (s.numbers_error) parts.push(h("div", { class: "error", role: "alert" }, s.numbers_error));
  if (s.numbers && s.numbers.length) {
    const keys = s.numbers.map(r => r.key.join(" · ") || "total");
    const timeKey = (s.request.dimensions[0] || "").startsWith("metric_time.") && s.numbers.length > 3;  // a few years read better as bars
    const series = [{ name: "before", values: s.numbers.map(r => r.before) }, { name: "after", values: s.numbers.map(r => r.after) }];
    const label = `${c.name} before and after${s.request.dimensions.length ? " by " + s.request.dimensions.join(", ") : ""}`;
    const chart = timeKey
      ? lineChart(series.map(sr => ({ name: sr.name, points: sr.values.map((y, i) => ({ x: keys[i], y })) })), { label })
      : barChart(keys, series, { label });
    chart.classList.add("numbers-chart");
    const moved = s.numbers.filter(r => r.before !== r.after).length;
    parts.push(h("h4", {}, `Numbers before and after (${moved} of ${s.numbers.length} moved)`),
      h("figure", { class: "chart-wrap" }, chart, h("figcaption", {}, label)),
      h("details", {}, h("summary", {}, "Table"), table([...(s.columns || []).slice(0, -1), "before", "after", "change", "change %"],
        s.numbers.map(r => [...r.key, r.before, r.after, r.delta, r.delta_pct]), { format: fmt })));
  }
  return h("div", { class: "sample" }, parts);
}

function sqlDiff(text) {
  return h("pre", { class: "diff", tabindex: "0", "aria-label": "SQL diff" }, (text || "(no SQL change)").split("\n").map(line =>
    h("span", { class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : null }, line + "\n")));
}
