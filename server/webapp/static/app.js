// The router: the hash holds the page and its whole state (#/explore?m=revenue&d=metric_time.month),
// so any view can be shared as a link. Pages render into <main>; a page updates the hash as its
// state changes (replaceState: no re-render) and navigation re-renders.
import { ApiError, token } from "./api.js";
import { h, replace } from "./dom.js";

const PAGES = {
  catalog: () => import("./pages/catalog.js"),
  metric: () => import("./pages/metric.js"),
  explore: () => import("./pages/explore.js"),
  "cross-sell": () => import("./pages/crosssell.js"),
  review: () => import("./pages/review.js"),
};

export function parseHash(hash = location.hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/").map(decodeURIComponent);
  return { page: PAGES[page] ? page : "catalog", arg: rest.join("/"), params: new URLSearchParams(query) };
}

export function link(page, params, arg) {
  const query = new URLSearchParams(params || {}).toString();
  return `#/${page}${arg ? "/" + encodeURIComponent(arg) : ""}${query ? "?" + query : ""}`;
}

export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" },
    h("strong", {}, error instanceof ApiError ? `${error.status} ${error.code || "error"}: ` : "Error: "),
    error.message,
    error.hint ? h("div", { class: "hint" }, error.hint) : null);
  if (error instanceof ApiError && error.status === 401) box.append(tokenForm());
  return box;
}

function tokenForm() {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true });
  return h("form", { class: "token", onsubmit: (e) => { e.preventDefault(); token.set(input.value.trim()); render(); } },
    h("label", { for: "token" }, "API token (kept for this tab only)"), input, h("button", { type: "submit" }, "Use token"));
}

const ctx = {
  // record the page's state in the URL without re-rendering it
  setParams(params, arg) {
    const { page, arg: current } = parseHash();
    history.replaceState(null, "", link(page, params, arg ?? current));
  },
  link,
  errorBox,
};

let generation = 0;
async function render() {
  const { page, arg, params } = parseHash();
  const mine = ++generation;
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page || (page === "metric" && a.dataset.page === "catalog")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const started = performance.now();
  const root = h("div", { class: `page page-${page}` });
  try {
    const module = await PAGES[page]();
    if (mine !== generation) return;
    replace(main, root);
    await module.render(root, params, arg, ctx);
  } catch (error) {
    if (mine !== generation) return;
    console.warn(error);
    replace(main, root);
    root.append(errorBox(error));
  }
  if (mine === generation) {
    document.body.dataset.ready = page;  // the browser test waits for this
    if (!document.body.dataset.firstDrawnMs) document.body.dataset.firstDrawnMs = Math.round(performance.now());
    document.getElementById("status").textContent = `${page} in ${Math.round(performance.now() - started)} ms`;
  }
}

window.addEventListener("hashchange", () => { render(); document.getElementById("main").focus({ preventScroll: true }); });
render();
