// #/searches/ID: a search as its event stream tells it: the server's heatmap, its best trial
// and score, the trials table (click a header to sort), every trial's validation curve.
import * as api from "./api.js";
import { PALETTE, lineChart } from "./charts.js";
import {
  badge, button, definitions, describe, ended, errorBox, h, label, pct, score, section, short,
  statusCounts,
} from "./dom.js";
import { leaving } from "./router.js";
import { bestTrial } from "./view-searches.js";

const HEATMAP_EVERY_MS = 2000;

// The server's heatmap PNG in an <img>, fetched with the token; at most one per HEATMAP_EVERY_MS.
function heatmapImage(searchId, signal) {
  const img = h("img", { id: "heatmap-img", class: "heatmap", alt: "validation accuracy over the grid" });
  let last = 0, timer = null, asked = 0;
  async function load(status) {
    const n = ++asked;
    timer = null;
    last = Date.now();
    try {
      const blob = await (await api.request("GET", `/v1/searches/${searchId}/heatmap.png`, { signal })).blob();
      if (n !== asked) return; // a newer picture was asked for meanwhile
      if (img.src) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(blob);
      img.dataset.status = status;
    } catch (err) {
      if (!signal.aborted) img.replaceWith(errorBox(err));
    }
  }
  signal.addEventListener("abort", () => { clearTimeout(timer); if (img.src) URL.revokeObjectURL(img.src); });
  // Ask for a new picture of the search, now if the last one is old enough, else a little later.
  const refresh = (search, now = false) => {
    clearTimeout(timer);
    const wait = now ? 0 : Math.max(0, last + HEATMAP_EVERY_MS - Date.now());
    timer = setTimeout(() => load(search.status), wait);
  };
  return { img, refresh };
}

export default async function searchPage(main, searchId) {
  const signal = leaving();
  let search;
  try {
    search = await api.get(`/v1/searches/${searchId}`, { signal });
  } catch (err) {
    main.append(h("h1", {}, `Search ${short(searchId)}`), errorBox(err));
    return;
  }
  const header = h("div", { class: "toolbar" });
  const summary = h("dl", { class: "summary" });
  const heat = heatmapImage(searchId, signal);
  const table = h("div", { id: "trials" });
  const curves = h("div", { class: "chart-box", id: "trial-curves", "data-chart": "trials" });
  const metrics = new Map(); // job id -> its metrics rows, fetched when the trial changes
  let sortKey = null, sortDir = -1, drawing = null;

  const cancel = button({ class: "danger", id: "cancel-search" }, "Cancel search", async () => {
    search = await api.post(`/v1/searches/${searchId}/cancel`);
    redraw();
  }, header);

  function drawSummary(axes, best) {
    cancel.hidden = ended(search);
    header.replaceChildren(h("h1", {}, "Search ", h("span", { class: "mono" }, short(searchId))),
      badge(search.status), h("span", { class: "spacer" }), cancel);
    summary.replaceChildren(...definitions([
      ["dataset", search.base.dataset], ["base", describe(search.base)],
      ["grid", axes.map((a) => `${a}: ${search.grid[a].map(label).join(", ")}`).join("; ")],
      ["ranked by", `${search.metric} (${search.mode})`],
      ["trials", statusCounts(search.trials)],
      ["best trial", best ? h("a", { href: `#/jobs/${best.job_id}`, id: "best-trial" },
        `${short(best.job_id)} ${JSON.stringify(best.params)}`) : "once every trial has ended"],
      [`its ${search.metric}`, h("span", { id: "best-score" }, best ? score(search.metric, best.score) : "–")],
      ["its test accuracy", pct(search.test_accuracy)],
    ]));
  }

  function drawTable(axes) {
    const epochs = (t) => metrics.get(t.job_id)?.length ?? 0;
    const cols = [...axes.map((a) => [a, (t) => t.params[a], (t) => label(t.params[a])]),
      ["status", (t) => t.status, (t) => badge(t.status)],
      [search.metric.replaceAll("_", " "), (t) => t.score ?? -Infinity, (t) => score(search.metric, t.score)]];
    if (search.metric !== "val_accuracy") {
      cols.push(["val accuracy", (t) => t.val_accuracy ?? -Infinity, (t) => pct(t.val_accuracy)]);
    }
    cols.push(["epochs", epochs, (t) => String(epochs(t))]);
    const rows = [...search.trials];
    if (sortKey !== null) {
      const get = cols[sortKey][1];
      rows.sort((a, b) => (get(a) > get(b) ? 1 : get(a) < get(b) ? -1 : 0) * sortDir);
    }
    const thead = h("tr", {}, h("th", {}, "trial"), cols.map(([name], i) => h("th", {
      class: "sortable", "aria-sort": sortKey === i ? (sortDir > 0 ? "ascending" : "descending") : "none",
      onclick: () => { sortDir = sortKey === i ? -sortDir : -1; sortKey = i; draw(); },
    }, name, sortKey === i ? (sortDir > 0 ? " ▲" : " ▼") : "")));
    table.replaceChildren(h("div", { class: "scroll" }, h("table", { class: "list", id: "trials-table" },
      h("thead", {}, thead),
      h("tbody", {}, rows.map((t) => h("tr", { class: t.job_id === search.best_job_id ? "best" : "", "data-job": t.job_id },
        h("td", {}, h("a", { href: `#/jobs/${t.job_id}`, class: "mono" }, short(t.job_id))),
        cols.map(([, , show], i) => h("td", { class: i === axes.length ? "" : "num" }, show(t)))))))));
  }

  function draw() {
    drawing = null;
    const axes = Object.keys(search.grid);
    const best = bestTrial(search);
    drawSummary(axes, best);
    drawTable(axes);
    // Every trial's validation accuracy on one chart; the server's best trial drawn thicker.
    lineChart(curves, { xLabel: "epoch", yLabel: "validation accuracy", xMax: search.base.epochs, yCap: 1,
      series: search.trials.map((t, i) => ({
        name: axes.map((a) => `${a.split(".").pop()}=${label(t.params[a])}`).join(" "),
        color: PALETTE[i % PALETTE.length], width: t.job_id === search.best_job_id ? 4 : 2,
        points: (metrics.get(t.job_id) || []).map((m) => [m.epoch, m.val_accuracy]),
      })) });
  }
  // Events come in bursts (a reconnect replays every trial): draw once per burst.
  const redraw = () => { drawing ??= setTimeout(draw, 30); };
  signal.addEventListener("abort", () => clearTimeout(drawing));

  async function loadMetrics(trial) {
    if (trial.val_accuracy === null) return; // no epoch has ended: no rows yet
    try {
      metrics.set(trial.job_id, await api.get(`/v1/jobs/${trial.job_id}/metrics`, { signal }));
      redraw();
    } catch {
      // A trial's metrics are best effort; the table still shows its status.
    }
  }

  main.append(header, h("div", { class: "grid2" },
    section("Validation accuracy over the grid", h("div", { id: "heatmap" }, heat.img),
      h("p", { class: "muted" }, "Drawn by the server; ★ marks the best trial.")),
    section("Summary", summary)),
  section("Trials", table), section("Validation curves of every trial", curves));
  draw();
  heat.refresh(search, true);

  api.follow(`/v1/searches/${searchId}/events`, (type, data) => {
    if (type === "status") {
      search = data;
      heat.refresh(search, ended(search));
    } else if (type === "trial") {
      search.trials = search.trials.map((t) => (t.job_id === data.job_id ? data : t));
      loadMetrics(data);
      heat.refresh(search);
    }
    redraw();
  }, signal).catch((err) => header.append(errorBox(err)));
}
