// Small SVG and HTML charts for the dashboard: line charts, probability bars and a confusion
// matrix. No dependencies; every chart scales to its container's width. (A search's heatmap is
// the server's PNG.)
import { h as html, svg } from "./dom.js";

export const PALETTE = [
  "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
  "#0891b2", "#be185d", "#4d7c0f", "#7c3aed", "#b45309",
];

// Round tick values covering [lo, hi], about `count` of them.
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function fmt(v) {
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return Number(v.toPrecision(3)).toString();
}

// A line chart. series: [{name, color, points: [[x, y], ...], width?, dashed?}].
// The container gets data-points = the number of points drawn (for tests and screen readers).
// yCap: a bound no value can pass (an accuracy's 1), so no tick is drawn above it.
export function lineChart(container, { series, xLabel = "", yLabel = "", xMin, xMax, yMin, yMax, yCap }) {
  // Drawn at the container's own width, so text keeps its size on a phone.
  const W = Math.round(Math.min(760, Math.max(300, container.clientWidth || 640)));
  const H = W < 500 ? 230 : 300, M = { l: 52, r: 14, t: 14, b: 42 };
  const all = series.flatMap((s) => s.points);
  container.replaceChildren();
  container.dataset.points = String(all.length);
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]).filter(Number.isFinite);
  const x0 = xMin ?? Math.min(1, ...xs), x1 = Math.max(xMax ?? 1, ...xs, x0 + 1);
  const yTicks = niceTicks(yMin ?? Math.min(...(ys.length ? ys : [0])),
    yMax ?? Math.max(...(ys.length ? ys : [1])));
  if (yCap !== undefined && yTicks[yTicks.length - 1] > yCap) {
    while (yTicks.length > 2 && yTicks[yTicks.length - 1] > yCap) yTicks.pop();
    if (yTicks[yTicks.length - 1] < yCap) yTicks.push(yCap);
  }
  const y0 = yTicks[0], y1 = yTicks[yTicks.length - 1];
  const sx = (x) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const sy = (y) => H - M.b - ((y - y0) / (y1 - y0 || 1)) * (H - M.t - M.b);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `${yLabel} by ${xLabel}` });

  for (const t of yTicks) {
    root.append(svg("line", { x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t), class: "grid" }));
    const label = svg("text", { x: M.l - 6, y: sy(t) + 4, class: "tick", "text-anchor": "end" });
    label.textContent = fmt(t);
    root.append(label);
  }
  const xStep = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let t = Math.ceil(x0); t <= x1; t += xStep) {
    const label = svg("text", { x: sx(t), y: H - M.b + 16, class: "tick", "text-anchor": "middle" });
    label.textContent = String(t);
    root.append(label);
  }
  root.append(svg("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: "axis" }));
  root.append(svg("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: "axis" }));
  const xl = svg("text", { x: (M.l + W - M.r) / 2, y: H - 6, class: "axis-label",
    "text-anchor": "middle" });
  xl.textContent = xLabel;
  const yl = svg("text", { x: 14, y: (M.t + H - M.b) / 2, class: "axis-label",
    "text-anchor": "middle", transform: `rotate(-90 14 ${(M.t + H - M.b) / 2})` });
  yl.textContent = yLabel;
  root.append(xl, yl);

  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length > 1) {
      root.append(svg("polyline", {
        points: pts.map((p) => `${sx(p[0])},${sy(p[1])}`).join(" "),
        fill: "none", stroke: s.color, "stroke-width": s.width || 2,
        "stroke-dasharray": s.dashed ? "6 4" : "none", class: "series",
      }));
    }
    for (const p of pts) {
      const dot = svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: s.width > 2 ? 4 : 3,
        fill: s.color, class: "point" });
      const tip = svg("title");
      tip.textContent = `${s.name}: epoch ${p[0]}, ${fmt(p[1])}`;
      dot.append(tip);
      root.append(dot);
    }
  }
  const legend = html("div", { class: "legend" });
  for (const s of series) {
    legend.append(html("span", { class: "key" },
      html("i", { style: `background:${s.color}` }), s.name));
  }
  if (!all.length) {
    const empty = svg("text", { x: W / 2, y: H / 2, class: "empty", "text-anchor": "middle" });
    empty.textContent = "no finished epoch yet";
    root.append(empty);
  }
  container.append(root, legend);
}

// Probability bars, one per class; the largest is highlighted.
export function bars(container, { labels, values }) {
  const best = values.indexOf(Math.max(...values));
  const list = html("ol", { class: "bars" });
  values.forEach((v, i) => {
    list.append(html("li", { class: i === best ? "top" : "" },
      html("span", { class: "name" }, labels[i] ?? String(i)),
      html("span", { class: "bar" }, html("span", { style: `width:${(100 * v).toFixed(1)}%` })),
      html("span", { class: "pct" }, `${(100 * v).toFixed(1)}%`)));
  });
  container.replaceChildren(list);
}

// A confusion matrix: rows are true classes, columns predicted; shaded by row share.
export function confusion(container, { labels, matrix }) {
  const table = html("table", { class: "confusion" });
  const head = html("tr", {}, html("th", { class: "corner" }, "true ╲ predicted"));
  labels.forEach((l) => head.append(html("th", { scope: "col", title: l }, l)));
  table.append(head);
  matrix.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const tr = html("tr", {}, html("th", { scope: "row", title: labels[r] }, labels[r]));
    row.forEach((n, c) => {
      const share = n / total;
      const td = html("td", { title: `${labels[r]} → ${labels[c]}: ${n}` }, n ? String(n) : "");
      const hue = r === c ? "37, 99, 235" : "220, 38, 38";
      td.style.background = `rgba(${hue}, ${Math.min(1, share * 1.2).toFixed(3)})`;
      if (share > 0.5) td.style.color = "#fff";
      tr.append(td);
    });
    table.append(tr);
  });
  container.replaceChildren(html("div", { class: "scroll" }, table));
}
