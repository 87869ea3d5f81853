// A search's charts: every trial's validation curve on one chart (pruned trials dashed, cut short
// where the server stopped them) and, for more than two axes or a sampled space, parallel
// coordinates: one line per trial across its params and the search's score.
import { PALETTE, lineChart, niceTicks } from "./charts.js";
import { h, label, svg } from "./dom.js";

// The searched spec paths, in the body's order.
export const searchPaths = (search) => Object.keys(search.space || search.grid || {});

// A param value, short: numbers to 3 significant digits.
export const param = (v) =>
  (typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(3))) : label(v));

export const trialName = (search, t) =>
  searchPaths(search).map((p) => `${p.split(".").pop()}=${param(t.params[p])}`).join(" ");

const colour = (t, i) => PALETTE[(t.index ?? i) % PALETTE.length];

// Every trial's validation accuracy by epoch; the server's best trial thicker, pruned ones dashed.
export function drawCurves(container, search, metrics) {
  lineChart(container, { xLabel: "epoch", yLabel: "validation accuracy", xMax: search.base.epochs, yCap: 1,
    series: search.trials.map((t, i) => ({
      name: `${trialName(search, t)}${t.status === "pruned" ? " (pruned)" : ""}`,
      color: colour(t, i), width: t.job_id === search.best_job_id ? 4 : 2, dashed: t.status === "pruned",
      points: (metrics.get(t.job_id) || []).map((m) => [m.epoch, m.val_accuracy]),
    })) });
}

// Parallel coordinates are drawn when a heatmap of two axes cannot show the search.
export const wantsParallel = (search) => Boolean(search.space) || searchPaths(search).length > 2;

// One axis: where a value sits on it, from 0 (bottom) to 1 (top), and its tick labels. A choice
// (or anything not a number) is evenly spaced categories; a loguniform axis is logarithmic.
function axisOf(name, values, dist) {
  const numbers = values.filter((v) => typeof v === "number");
  if (dist?.choice || numbers.length !== values.length || !values.length) {
    const cats = [...new Set((dist?.choice || values).map(label))];
    const frac = (k) => (cats.length > 1 ? k / (cats.length - 1) : 0.5);
    return { name, at: (v) => frac(cats.indexOf(label(v))), ticks: cats.map((c, k) => [c, frac(k)]) };
  }
  const log = Boolean(dist?.loguniform || (dist?.int && dist.log));
  const f = log ? Math.log10 : (v) => v;
  const all = [...(dist?.loguniform || dist?.uniform || dist?.int || []), ...numbers]
    .filter((v) => Number.isFinite(v) && (!log || v > 0));
  let [lo, hi] = [f(Math.min(...all)), f(Math.max(...all))];
  if (!(hi > lo)) [lo, hi] = log ? [lo - 1, hi + 1] : [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];
  const at = (v) => (f(v) - lo) / (hi - lo);
  const ticks = niceTicks(lo, hi, 4).filter((t) => t >= lo && t <= hi && (!log || Number.isInteger(t)));
  const shown = (ticks.length >= 2 ? ticks : [lo, hi]).map((t) => (log ? 10 ** t : t));
  return { name: log ? `${name} (log)` : name, at, ticks: shown.map((v) => [param(v), at(v)]) };
}

export function drawParallel(container, search) {
  const paths = searchPaths(search);
  const trials = search.trials;
  const scores = trials.map((t) => t.score).filter(Number.isFinite);
  const axes = [...paths.map((p) => axisOf(p, trials.map((t) => t.params[p]), search.space?.[p])),
    axisOf(search.metric, scores.length ? scores : [0, 1], null)];
  const values = (t) => [...paths.map((p) => t.params[p]), t.score];

  const W = Math.round(Math.min(760, Math.max(300, container.clientWidth || 640)));
  const H = 280, M = { l: 20, r: 20, t: 34, b: 40 };
  const x = (i) => M.l + 30 + (i / Math.max(1, axes.length - 1)) * (W - M.l - M.r - 60);
  const y = (frac) => H - M.b - frac * (H - M.t - M.b);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart parallel", role: "img",
    "aria-label": `${paths.join(", ")} and ${search.metric}, one line per trial` });
  axes.forEach((a, i) => {
    root.append(svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "axis" }));
    const title = svg("text", { x: x(i), y: M.t - 18, class: "axis-label", "text-anchor": "middle" });
    title.textContent = a.name.split(".").pop();
    root.append(title);
    for (const [text, frac] of a.ticks) {
      const tick = svg("text", { x: x(i) + 4, y: y(frac) + 4, class: "tick" });
      tick.textContent = text;
      root.append(tick);
    }
  });
  trials.forEach((t, i) => {
    const pts = values(t).map((v, k) => (v === null || v === undefined ? NaN : axes[k].at(v)))
      .map((frac, k) => [x(k), y(frac)]).filter(([, py]) => Number.isFinite(py));
    const best = t.job_id === search.best_job_id;
    const line = svg("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none",
      stroke: colour(t, i), "stroke-width": best ? 4 : 2, "stroke-dasharray": t.status === "pruned" ? "6 4" : "none",
      class: `trial-line ${t.status}`, "data-job": t.job_id, opacity: t.score === null ? 0.5 : 0.9 });
    const tip = svg("title");
    tip.textContent = `${trialName(search, t)}: ${t.status}, ${search.metric} ${t.score ?? "–"}`;
    line.append(tip);
    root.append(line);
  });
  container.dataset.lines = String(trials.length);
  container.replaceChildren(root, h("p", { class: "muted" },
    `One line per trial; the last axis is ${search.metric}, the thick line the best trial, dashed ones pruned.`));
}
