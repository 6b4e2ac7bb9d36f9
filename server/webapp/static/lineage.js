// A metric's lineage as a layered graph, left to right: what consumes it (views, other metrics) on
// the left, the metric, then what it is built from down to tables. Layers by longest path from the
// nodes nothing consumes; order within a layer by the mean position of the consumers (one sweep
// keeps crossings low for graphs of this size).
import { h, s } from "./dom.js";

const COL = 192, ROW = 30, BOX_W = 170, BOX_H = 22, PAD = 12;
const KIND_CLASS = { metric: "n-metric", view: "n-view", saved_query: "n-view", measure: "n-measure",
  dimension: "n-dimension", model: "n-model", table: "n-table", column: "n-column" };

export function layers(nodes, edges) {
  const consumers = new Map(nodes.map(n => [n.id, []]));
  const deps = new Map(nodes.map(n => [n.id, []]));
  for (const e of edges) {
    if (!consumers.has(e.to) || !deps.has(e.from)) continue;
    consumers.get(e.to).push(e.from);
    deps.get(e.from).push(e.to);
  }
  const layer = new Map();
  const visit = (id, trail = new Set()) => {  // longest path from a node without consumers
    if (layer.has(id)) return layer.get(id);
    if (trail.has(id)) return 0;  // a cycle would be a catalog bug; never loop on it
    trail.add(id);
    const above = consumers.get(id).map(c => visit(c, trail) + 1);
    trail.delete(id);
    const value = above.length ? Math.max(...above) : 0;
    layer.set(id, value);
    return value;
  };
  nodes.forEach(n => visit(n.id));
  const columns = [];
  for (const n of nodes) (columns[layer.get(n.id)] ||= []).push(n);
  const position = new Map();
  columns.forEach((col, i) => {
    const key = n => {
      const ps = consumers.get(n.id).map(c => position.get(c)).filter(v => v !== undefined);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
    };
    if (i) col.sort((a, b) => key(a) - key(b) || a.id.localeCompare(b.id));
    col.forEach((n, j) => position.set(n.id, j));
  });
  return { columns, position, layer };
}

// the colour key drawn under a graph: one chip per kind of node it holds
export function legend(lineage) {
  const kinds = [...new Set([lineage.root, ...lineage.nodes].map(n => n.kind))];
  return h("p", { class: "legend" }, kinds.map(k => h("span", { class: `chip ${KIND_CLASS[k] || ""}` }, k.replace("_", " "))));
}

export function lineageGraph(lineage, { onNode } = {}) {
  const nodes = [lineage.root, ...lineage.nodes.filter(n => n.id !== lineage.root.id)];
  const { columns, position, layer } = layers(nodes, lineage.edges);
  const tallest = Math.max(...columns.map(c => c.length));
  const width = PAD * 2 + (columns.length - 1) * COL + BOX_W, height = PAD * 2 + tallest * ROW;
  const at = (id) => {
    const col = columns[layer.get(id)];
    const offset = (tallest - col.length) * ROW / 2;
    return { x: PAD + layer.get(id) * COL, y: PAD + offset + position.get(id) * ROW };
  };
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "lineage",
    "aria-label": `Lineage of ${lineage.root.name}: ${nodes.length} nodes, ${lineage.edges.length} edges` },
    s("title", {}, `Lineage of ${lineage.root.name}`));
  for (const e of lineage.edges) {
    if (!layer.has(e.from) || !layer.has(e.to)) continue;
    const a = at(e.from), b = at(e.to);
    const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x, y2 = b.y + BOX_H / 2, mid = (x1 + x2) / 2;
    svg.append(s("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: "edge",
      "data-from": e.from, "data-to": e.to }, s("title", {}, `${e.from} → ${e.to} (${e.role})`)));
  }
  for (const n of nodes) {
    const { x, y } = at(n.id);
    const text = n.name.length > 27 ? n.name.slice(0, 26) + "…" : n.name;
    const group = s("g", { class: `node ${KIND_CLASS[n.kind] || ""}${n.id === lineage.root.id ? " root" : ""}`,
      transform: `translate(${x},${y})`, "data-id": n.id, "data-layer": layer.get(n.id) },
    s("title", {}, `${n.kind} ${n.name}${n.detail ? ` (${n.detail})` : ""}`),
    s("rect", { width: BOX_W, height: BOX_H, rx: 4 }),
    s("text", { x: 6, y: 15 }, text));
    if (onNode && n.kind === "metric" && n.id !== lineage.root.id) {
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "link");
      group.setAttribute("aria-label", `metric ${n.name}`);
      group.addEventListener("click", () => onNode(n));
      group.addEventListener("keydown", (e) => { if (e.key === "Enter") onNode(n); });
    }
    svg.append(group);
  }
  return svg;
}
