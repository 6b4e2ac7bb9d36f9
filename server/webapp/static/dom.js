// Building DOM nodes without innerHTML: every value from the API goes in as text, never as markup.
const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

// append children that may be null (skipped), text or nested lists: the DOM's own append would print "null"
export const add = (node, ...children) => build(node, {}, children);

export function replace(node, ...children) {
  node.replaceChildren();
  return build(node, {}, children);
}

// A labelled form control: the label is tied to the control for screen readers and clicks.
let uid = 0;
export function field(labelText, control, hint) {
  const id = control.id || `f${++uid}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control,
    hint ? h("small", { class: "muted" }, hint) : null);
}

export function select(name, options, value, attrs = {}) {
  return h("select", { name, ...attrs }, options.map(o => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h("option", { value: v, selected: v === value }, label);
  }));
}

export function table(columns, rows, { caption, format = String } = {}) {
  return h("div", { class: "table-wrap" }, h("table", {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map(c => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map(r => h("tr", {}, r.map(v => h("td", {
      class: typeof v === "number" ? "num" : null }, v instanceof Node ? v : format(v))))))));
}

export function badge(text, kind) {
  return text ? h("span", { class: `badge ${kind || text}` }, text) : null;
}

export const fmt = (v) => {
  if (v === null || v === undefined) return "∅";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en");
    return Math.abs(v) >= 100 ? v.toLocaleString("en", { maximumFractionDigits: 2 })
      : v.toLocaleString("en", { maximumSignificantDigits: 4 });
  }
  return String(v);
};
