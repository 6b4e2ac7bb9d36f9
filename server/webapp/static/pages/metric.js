// One metric: what it is, who owns it, how it is defined (YAML at file:line), what it can be grouped
// by, its lineage drawn, its data tests and source freshness, and the git commits that changed it.
import { api } from "../api.js";
import { add, badge, h, replace, table } from "../dom.js";
import { legend, lineageGraph } from "../lineage.js";

export async function render(root, _params, name, ctx) {
  const path = `/v1/metrics/${encodeURIComponent(name)}`;
  const metric = await api(path);
  const def = metric.definition || {};
  add(root, 
    h("p", { class: "crumbs" }, h("a", { href: "#/catalog" }, "Catalog"), " / ", metric.name),
    h("h1", {}, metric.label || metric.name, " ", badge(metric.tier)),
    h("p", { class: "meta" }, h("code", {}, metric.name), ` · ${metric.type}`,
      metric.owner ? ` · owner ${metric.owner}` : "", metric.tags.length ? ` · tags ${metric.tags.join(", ")}` : ""),
    metric.tier === "deprecated" ? h("div", { class: "warning", role: "note" }, "Deprecated",
      def.replaced_by ? [": use ", h("a", { href: ctx.link("metric", null, def.replaced_by) }, def.replaced_by)] : "",
      def.sunset ? ` (sunset ${def.sunset})` : "") : null,
    metric.description ? h("p", { class: "lead" }, metric.description) : null,
    h("p", {}, h("a", { class: "button", href: ctx.link("explore", exploreParams(metric)) }, "Explore this metric")));

  const sections = {
    definition: h("section", { "aria-labelledby": "h-def" }, h("h2", { id: "h-def" }, "Definition")),
    lineage: h("section", { "aria-labelledby": "h-lin" }, h("h2", { id: "h-lin" }, "Lineage")),
    dims: h("section", { "aria-labelledby": "h-dims" }, h("h2", { id: "h-dims" }, `Dimensions (${metric.dimensions.length})`)),
    checks: h("section", { "aria-labelledby": "h-checks" }, h("h2", { id: "h-checks" }, "Data tests and freshness")),
    history: h("section", { "aria-labelledby": "h-hist" }, h("h2", { id: "h-hist" }, "History")),
  };
  add(root, h("div", { class: "grid" }, sections.definition, sections.dims), sections.lineage,
    h("div", { class: "grid" }, sections.checks, sections.history));

  add(sections.dims, table(["Dimension", "Type", "Grains"], metric.dimensions.map(d => [
    h("a", { href: ctx.link("explore", { m: metric.name, d: d.grains ? `${d.ref}.${d.grains.includes("month") ? "month" : d.grains[0]}` : d.ref }) }, d.ref),
    d.type, (d.grains || []).join(", ")])));
  const depends = Object.entries(metric.depends_on || {}).filter(([, v]) => Array.isArray(v) && v.length);
  if (depends.length) add(sections.dims, h("h3", {}, "Built from"), h("ul", {}, depends.map(([k, v]) => h("li", {}, `${k}: ${v.join(", ")}`))));

  const load = (section, work) => work().catch(error => section.append(ctx.errorBox(error)));
  await Promise.all([
    load(sections.definition, async () => {
      const src = await api(`${path}/source`);
      add(sections.definition, 
        src.file ? h("p", { class: "meta" }, "in ", h("code", { class: "source" }, `${src.file}:${src.line}`),
          src.end_line ? `–${src.end_line}` : "") : h("p", { class: "muted" }, "no source file"),
        h("pre", { class: "yaml", tabindex: "0", "aria-label": "definition YAML" }, src.yaml || JSON.stringify(def, null, 2)));
      add(sections.history, src.history.length
        ? table(["Date", "Commit", "Author", "Change"], src.history.map(c => [c.date.slice(0, 10), h("code", {}, c.short), c.author, c.subject]))
        : h("p", { class: "muted" }, src.git ? "no commits touch this definition yet" : "the project is not in a git repository"));
      if (src.git && src.history.length > 1) {
        add(sections.history, h("p", {}, h("a", { href: ctx.link("review", { base: src.history[1].sha.slice(0, 12), head: src.history[0].sha.slice(0, 12) }) },
          "Review the last change")));
      }
    }),
    load(sections.lineage, async () => {
      const lineage = await api(`${path}/lineage`);
      const impact = lineage.impact || {};
      add(sections.lineage, 
        h("p", { class: "meta" }, `reads ${lineage.tables.length} table(s), ${lineage.columns.length} column(s); used by `,
          [...(impact.metrics || []), ...(impact.views || []).map(v => `view ${v}`), ...(impact.saved_queries || []).map(q => `saved query ${q}`)].join(", ") || "nothing else"),
        h("div", { class: "scroll", tabindex: "0", "aria-label": "lineage graph, scrollable" },
          lineageGraph(lineage, { onNode: (n) => { location.hash = ctx.link("metric", null, n.name); } })),
        legend(lineage));
    }),
    load(sections.checks, async () => {
      const checks = await api(`${path}/checks`);
      add(sections.checks, checks.tests.length
        ? table(["Model", "Test", "Severity"], checks.tests.map(t => [t.model, t.name, t.severity]))
        : h("p", { class: "muted" }, `no data tests on ${checks.models.join(", ") || "its models"}`));
      const run = h("button", { type: "button" }, "Run the data tests");
      const out = h("div", { "aria-live": "polite" });
      run.addEventListener("click", async () => {
        run.disabled = true;
        try {
          const done = await api(`${path}/checks`, { params: { run: "true" } });
          replace(out, table(["Test", "Status", "Failures"], done.tests.map(t => [t.name, badge(t.status), t.failures])));
        } catch (error) { replace(out, ctx.errorBox(error)); } finally { run.disabled = false; }
      });
      if (checks.tests.length) add(sections.checks, run, out);
      add(sections.checks, h("h3", {}, "Source freshness"), checks.freshness.length
        ? table(["Model", "Newest row", "Age", "State"], checks.freshness.map(f => [f.model, f.max_loaded_at, f.age, badge(f.state)]))
        : h("p", { class: "muted" }, checks.freshness_checked ? "its sources declare no freshness rule" : "not checked yet"));
    }),
  ]);
}

function exploreParams(metric) {
  if (metric.type === "affinity") return { m: metric.name, d: "antecedent.category,consequent.category" };
  const time = metric.dimensions.some(d => d.ref === "metric_time");
  return time ? { m: metric.name, d: "metric_time.month" } : { m: metric.name };
}


