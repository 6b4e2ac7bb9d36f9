// Small SVG charts: a line over time, bars by category, a heatmap. Each drawn mark carries its data
// (data-x, data-y, data-series; data-row, data-col, data-value) so tests and screen readers can read
// exactly what is drawn; a <title> on each mark is its tooltip.
import { fmt, s } from "./dom.js";

const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#4d7c0f"];
const M = { top: 16, right: 16, bottom: 56, left: 72 };

function frame(width, height, label) {
  return s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label,
    class: "chart", preserveAspectRatio: "xMinYMin meet" }, s("title", {}, label));
}

function niceTicks(min, max, count = 5) {
  if (min === max) { max = min + 1; }
  const step0 = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(v => v >= step0);
  const ticks = [];
  for (let v = Math.floor(min / step) * step; ; v += step) {  // up to the first tick at or above max
    ticks.push(+v.toPrecision(12));
    if (v >= max - step * 1e-9) break;
  }
  return ticks;
}

function yAxis(svg, ticks, y, width) {
  for (const t of ticks) {
    svg.append(s("line", { x1: M.left, x2: width - M.right, y1: y(t), y2: y(t), class: "grid" }),
      s("text", { x: M.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, fmt(t)));
  }
}

function xLabels(svg, labels, x, height) {
  const every = Math.max(1, Math.ceil(labels.length / 12));
  labels.forEach((label, i) => {
    if (i % every) return;
    const px = x(i);
    svg.append(s("text", { x: px, y: height - M.bottom + 14, "text-anchor": "end", class: "tick",
      transform: `rotate(-35 ${px} ${height - M.bottom + 14})` }, String(label).slice(0, 18)));
  });
}

function legend(svg, names, width) {
  if (names.length < 2) return;
  names.forEach((name, i) => {
    const x = M.left + (i % 4) * ((width - M.left) / 4), y = 10;
    svg.append(s("rect", { x, y: y - 8, width: 10, height: 10, fill: PALETTE[i % PALETTE.length] }),
      s("text", { x: x + 14, y: y + 1, class: "tick" }, name));
  });
}

// series: [{name, points: [{x, y}]}]; x values are ordered labels (dates as text), shared by the series
export function lineChart(series, { width = 760, height = 320, label = "Line chart" } = {}) {
  const svg = frame(width, height, label);
  const xs = [...new Set(series.flatMap(sr => sr.points.map(p => p.x)))].sort();
  const ys = series.flatMap(sr => sr.points.map(p => p.y)).filter(v => typeof v === "number");
  const ticks = niceTicks(Math.min(0, ...ys), Math.max(0, ...ys));
  const [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const x = i => M.left + (xs.length < 2 ? 0.5 : i / (xs.length - 1)) * (width - M.left - M.right);
  const y = v => height - M.bottom - (v - lo) / (hi - lo || 1) * (height - M.top - M.bottom);
  yAxis(svg, ticks, y, width);
  xLabels(svg, xs, x, height);
  series.forEach((sr, k) => {
    const color = PALETTE[k % PALETTE.length];
    const pts = sr.points.filter(p => typeof p.y === "number");
    svg.append(s("polyline", { fill: "none", stroke: color, "stroke-width": 2,
      points: pts.map(p => `${x(xs.indexOf(p.x))},${y(p.y)}`).join(" ") }));
    for (const p of pts) {
      svg.append(s("circle", { cx: x(xs.indexOf(p.x)), cy: y(p.y), r: 3.5, fill: color, class: "point",
        "data-series": sr.name, "data-x": p.x, "data-y": p.y }, s("title", {}, `${sr.name} ${p.x}: ${fmt(p.y)}`)));
    }
  });
  legend(svg, series.map(sr => sr.name), width);
  return svg;
}

// categories: labels; series: [{name, values: [number per category]}] → grouped bars
export function barChart(categories, series, { width = 760, height = 320, label = "Bar chart" } = {}) {
  const svg = frame(width, height, label);
  const ys = series.flatMap(sr => sr.values).filter(v => typeof v === "number");
  const ticks = niceTicks(Math.min(0, ...ys), Math.max(0, ...ys));
  const [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const band = (width - M.left - M.right) / Math.max(1, categories.length);
  const barW = Math.max(1, (band * 0.8) / Math.max(1, series.length));
  const y = v => height - M.bottom - (v - lo) / (hi - lo || 1) * (height - M.top - M.bottom);
  yAxis(svg, ticks, y, width);
  xLabels(svg, categories, i => M.left + band * (i + 0.5), height);
  series.forEach((sr, k) => {
    sr.values.forEach((v, i) => {
      if (typeof v !== "number") return;
      const top = Math.min(y(v), y(0));
      svg.append(s("rect", { x: M.left + band * i + band * 0.1 + k * barW, y: top, width: barW,
        height: Math.max(0.5, Math.abs(y(v) - y(0))), fill: PALETTE[k % PALETTE.length], class: "bar",
        "data-series": sr.name, "data-x": categories[i], "data-y": v },
        s("title", {}, `${sr.name} ${categories[i]}: ${fmt(v)}`)));
    });
  });
  legend(svg, series.map(sr => sr.name), width);
  return svg;
}

// cells: [{row, col, value}]; `center` (e.g. 1 for lift) makes the scale diverge around it
export function heatmap(cells, { label = "Heatmap", center = null, onCell } = {}) {
  const rows = [...new Set(cells.map(c => c.row))].sort();
  const cols = [...new Set(cells.map(c => c.col))].sort();
  const size = Math.max(18, Math.min(44, 620 / Math.max(rows.length, cols.length, 1)));
  const left = 150, top = 120;
  const width = left + cols.length * size + 20, height = top + rows.length * size + 10;
  const svg = frame(width, height, label);
  svg.setAttribute("width", Math.min(width, 900));
  const values = cells.map(c => c.value).filter(v => typeof v === "number");
  const lo = Math.min(...values), hi = Math.max(...values);
  const color = (v) => {
    if (typeof v !== "number") return "#eee";
    if (center !== null) {
      const t = v >= center ? (v - center) / ((hi - center) || 1) : -(center - v) / ((center - lo) || 1);
      return t >= 0 ? `rgb(${Math.round(255 - 200 * t)},${Math.round(255 - 120 * t)},255)`
        : `rgb(255,${Math.round(255 + 130 * t)},${Math.round(255 + 200 * t)})`;
    }
    const t = (v - lo) / ((hi - lo) || 1);
    return `rgb(${Math.round(240 - 200 * t)},${Math.round(245 - 150 * t)},255)`;
  };
  rows.forEach((r, i) => svg.append(s("text", { x: left - 6, y: top + i * size + size / 2 + 4, "text-anchor": "end", class: "tick" }, r)));
  cols.forEach((c, j) => {
    const x = left + j * size + size / 2, y = top - 6;
    svg.append(s("text", { x, y, class: "tick", transform: `rotate(-50 ${x} ${y})` }, c));
  });
  for (const c of cells) {
    const rect = s("rect", { x: left + cols.indexOf(c.col) * size, y: top + rows.indexOf(c.row) * size,
      width: size - 1, height: size - 1, fill: color(c.value), class: "cell",
      "data-row": c.row, "data-col": c.col, "data-value": c.value },
      s("title", {}, `${c.row} → ${c.col}: ${fmt(c.value)}`));
    if (onCell) {
      rect.setAttribute("tabindex", "0");
      rect.setAttribute("role", "button");
      rect.setAttribute("aria-label", `${c.row} → ${c.col}: ${fmt(c.value)}`);
      rect.addEventListener("click", () => onCell(c));
      rect.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onCell(c); } });
    }
    svg.append(rect);
  }
  return svg;
}

export { PALETTE };
