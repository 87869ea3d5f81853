// #/searches/ID: a search as its event stream tells it: pause / resume / retry / cancel, the
// server's heatmap (a grid) or parallel coordinates (more axes, a sampled space), its best trial
// and score as the server names them, the trials table and every trial's validation curve.
import * as api from "./api.js";
import {
  badge, button, definitions, describe, ended, errorBox, h, label, pct, prunerText, score, section,
  short, statusCounts,
} from "./dom.js";
import { leaving } from "./router.js";
import {
  drawCurves, drawParallel, param, searchPaths, trialName, wantsParallel,
} from "./view-search-charts.js";
import { trialsTable } from "./view-search-table.js";
import { bestTrial } from "./view-searches.js";
import { compareHref } from "./view-compare.js";

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

// "optimizer.lr: loguniform 0.001–0.3; batch_size: choice 128, 256", or a grid's values.
function searched(search) {
  if (!search.space) {
    return Object.entries(search.grid).map(([p, v]) => `${p}: ${v.map(label).join(", ")}`).join("; ");
  }
  return Object.entries(search.space).map(([p, d]) => {
    const [name] = Object.keys(d).filter((k) => k !== "log");
    const values = name === "choice" ? d.choice.map(label).join(", ") : d[name].map(param).join("–");
    return `${p}: ${name}${d.log ? " (log)" : ""} ${values}`;
  }).join("; ");
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
  const problems = h("div", { id: "search-errors" }); // what an action or the stream answered
  const summary = h("dl", { class: "summary" });
  // A grid of one or two axes is the server's heatmap; anything more, parallel coordinates.
  const heat = !search.space && searchPaths(search).length <= 2 ? heatmapImage(searchId, signal) : null;
  const table = trialsTable(h("div", { id: "trials" }));
  const curves = h("div", { class: "chart-box", id: "trial-curves", "data-chart": "trials" });
  const parallel = h("div", { class: "chart-box", id: "parallel", "data-chart": "parallel" });
  const metrics = new Map(); // job id -> its metrics rows, fetched when the trial has a new epoch
  const asking = new Set(); // job ids whose metrics are being fetched
  let drawing = null, following = false;

  // POST /v1/searches/ID/<verb>; the answer is the search as it now is.
  const act = (verb) => async () => {
    problems.replaceChildren();
    search = await api.post(`/v1/searches/${searchId}/${verb}`);
    draw();
    if (!ended(search)) follow();
  };
  const actions = {
    pause: button({ id: "pause-search" }, "Pause", act("pause"), problems),
    resume: button({ id: "resume-search", class: "primary" }, "Resume", act("resume"), problems),
    retry: button({ id: "retry-search" }, "Retry failed trials", act("retry"), problems),
    cancel: button({ class: "danger", id: "cancel-search" }, "Cancel search", act("cancel"), problems),
  };
  const csv = h("a", { id: "trials-csv", class: "button", href: `/v1/searches/${searchId}/trials.csv`,
    onclick: (e) => {
      e.preventDefault();
      api.download(`/v1/searches/${searchId}/trials.csv`, `search-${searchId}-trials.csv`)
        .catch((err) => problems.append(errorBox(err)));
    } }, "trials.csv");

  // Its trials on the compare page (curves overlaid, specs side by side), once there are two.
  function compareLink() {
    const ids = search.trials.map((t) => t.job_id).filter(Boolean);
    return ids.length < 2 ? null
      : h("a", { class: "button", id: "compare-trials", href: compareHref(ids) }, "Compare trials");
  }

  function drawHeader() {
    // The server says which actions the search takes now.
    for (const [name, btn] of Object.entries(actions)) btn.hidden = !search.actions.includes(name);
    const pausing = search.paused && search.status !== "paused";
    header.replaceChildren(h("h1", {}, "Search ", h("span", { class: "mono" }, short(searchId))),
      badge(search.status), h("span", { class: "muted", id: "pausing", hidden: !pausing },
        "pausing: no new trial starts"),
      h("span", { class: "spacer" }), compareLink(), csv, ...Object.values(actions));
  }

  function drawSummary(best) {
    const sampled = Boolean(search.space);
    summary.replaceChildren(...definitions([
      ["dataset", search.base.dataset], ["base", describe(search.base)],
      [sampled ? "space" : "grid", searched(search)],
      ...(sampled ? [["sampler", `${search.sampler}, ${search.num_trials} trials, seed ${search.seed}`]] : []),
      ["pruner", search.pruner ? prunerText(search.pruner) : "none: every trial runs all its epochs"],
      ["at once", search.max_concurrent_trials
        ? `${search.max_concurrent_trials} trials at a time` : "no limit of its own"],
      ["ranked by", `${search.metric} (${search.mode})`],
      ["trials", statusCounts(search.trials) || "none started yet"],
      ["best trial", best ? h("a", { href: `#/jobs/${best.job_id}`, id: "best-trial" },
        `${short(best.job_id)} ${trialName(search, best)}`) : "once every trial has ended"],
      [`its ${search.metric}`, h("span", { id: "best-score" }, best ? score(search.metric, best.score) : "–")],
      ["its test accuracy", pct(search.test_accuracy)],
    ]));
  }

  function draw() {
    drawing = null;
    drawHeader();
    drawSummary(bestTrial(search));
    table.draw(search);
    drawCurves(curves, search, metrics);
    if (wantsParallel(search)) drawParallel(parallel, search);
  }
  // Events come in bursts (a reconnect replays every trial): draw once per burst.
  const redraw = () => { drawing ??= setTimeout(draw, 30); };
  signal.addEventListener("abort", () => clearTimeout(drawing));

  // A trial's metrics, fetched once per epoch it has finished (never polled).
  async function loadMetrics(trial) {
    const have = metrics.get(trial.job_id)?.length ?? 0;
    if (!(trial.epoch > have) || asking.has(trial.job_id)) return;
    asking.add(trial.job_id);
    try {
      metrics.set(trial.job_id, await api.get(`/v1/jobs/${trial.job_id}/metrics`, { signal }));
      redraw();
    } catch {
      return; // a trial's metrics are best effort; the table still shows its status
    } finally {
      asking.delete(trial.job_id);
    }
    const now = search.trials.find((t) => t.job_id === trial.job_id);
    if (now) loadMetrics(now); // an epoch that ended while this fetch was under way
  }

  function onEvent(type, data) {
    if (type === "status") {
      search = data;
      search.trials.forEach(loadMetrics);
      heat?.refresh(search, ended(search));
    } else if (type === "trial") {
      const known = search.trials.some((t) => t.job_id === data.job_id);
      search.trials = known ? search.trials.map((t) => (t.job_id === data.job_id ? data : t))
        : [...search.trials, data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      loadMetrics(data);
      heat?.refresh(search);
    }
    redraw();
  }
  // Follow the event stream until the search ends (again, after a retry).
  function follow() {
    if (following) return;
    following = true;
    api.follow(`/v1/searches/${searchId}/events`, onEvent, signal)
      .catch((err) => problems.append(errorBox(err)))
      .finally(() => { following = false; });
  }

  main.append(header, problems, h("div", { class: "grid2" },
    heat ? section("Validation accuracy over the grid", h("div", { id: "heatmap" }, heat.img),
      h("p", { class: "muted" }, "Drawn by the server; ★ marks the best trial."))
      : section("Params and score of every trial", parallel),
    section("Summary", summary)),
  section("Trials", table.element),
  section("Validation curves of every trial", curves));
  draw();
  heat?.refresh(search, true);
  follow();
}
