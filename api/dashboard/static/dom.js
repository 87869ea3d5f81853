// The one DOM helper (HTML and SVG elements) and the small formatters every view shares.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class" && !(el instanceof SVGElement)) el.className = v;
    else if (k === "style") el.style.cssText = v;
    else if (k in el && typeof v !== "string" && !(el instanceof SVGElement)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c);
  }
  return el;
}

// h("a", { href, class, onclick }, ...children): an HTML element.
export const h = (tag, attrs = {}, ...children) => fill(document.createElement(tag), attrs, children);
// The same for SVG (attributes only, no properties).
export const svg = (tag, attrs = {}, ...children) =>
  fill(document.createElementNS(SVG_NS, tag), attrs, children);

export const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(2)}%`);
export const short = (id) => id.slice(0, 8);
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
export const label = (v) => (typeof v === "object" ? JSON.stringify(v) : String(v));
export const badge = (status) => h("span", { class: `badge ${status}`, "data-status": status }, status);
export const errorBox = (err) => h("p", { class: "error", role: "alert" }, err.message || String(err));
export const section = (title, ...children) =>
  h("section", { class: "card" }, h("h2", {}, title), ...children);

// A button that runs `action`; what it throws is shown at the end of `errors`.
export const button = (attrs, text, action, errors) => h("button", { ...attrs, onclick: () =>
  Promise.resolve().then(action).catch((err) => errors.append(errorBox(err))) }, text);

// A <dl>'s rows from [[term, value], ...].
export const definitions = (rows) => rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);

// The server sets `finished_at` when a job or a search ends: the one sign of "ended" used here.
export const ended = (resource) => Boolean(resource && resource.finished_at);

// A search's metric value: accuracies as percentages, losses to 4 significant digits.
export const score = (metric, v) =>
  v === null || v === undefined ? "–" : metric.endsWith("accuracy") ? pct(v) : v.toPrecision(4);

// A search's pruner: "asha (min epochs 1, reduction factor 3)", or "none".
export const prunerText = (p) => (p ? `${p.name}${Object.keys(p).length > 1 ? ` (${Object.entries(p)
  .filter(([k]) => k !== "name").map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`).join(", ")})` : ""}` : "none");

// "2 succeeded · 1 running": how many trials are in each status, in the server's words.
export function statusCounts(trials) {
  const counts = new Map();
  for (const t of trials) counts.set(t.status, (counts.get(t.status) || 0) + 1);
  return [...counts].map(([status, n]) => `${n} ${status}`).join(" · ");
}

export function progress(job) {
  const n = job.spec.epochs || 0;
  const k = job.epoch || 0;
  return h("span", { class: "progress", title: `epoch ${k} of ${n}` },
    h("span", { class: "track" }, h("span", { style: `width:${n ? (100 * k) / n : 0}%` })),
    h("span", { class: "label" }, `epoch ${k} of ${n}`));
}

// One line for a spec as the server stored it (defaults filled in).
export function describe(spec) {
  const o = spec.optimizer || {};
  const m = spec.model || {};
  return `${m.arch} [${(m.channels || []).join(", ")}], ${o.name} lr ${o.lr}` +
    `${o.momentum ? ` m ${o.momentum}` : ""}, batch ${spec.batch_size}`;
}
