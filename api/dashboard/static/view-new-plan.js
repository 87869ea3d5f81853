// A search's plan as the server answers POST /v1/searches/plan: the trials it would run, the
// most it could cost and the estimated time, with what the estimate is based on.
import { definitions, h, prunerText } from "./dom.js";
import { param } from "./view-search-charts.js";

const count = (n) => n.toLocaleString("en");

// "1 h 2 min", "3 min 5 s", "12 s".
export function duration(seconds) {
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return seconds < 10 ? `${seconds.toFixed(1)} s` : `${s} s`;
}

const params = (p) => (p === null ? h("span", { class: "muted" }, "drawn later from earlier trials' scores")
  : h("span", { title: JSON.stringify(p) }, Object.entries(p).map(([k, v]) => `${k}=${param(v)}`).join(" ")));

export function planView(plan) {
  return h("div", { id: "plan", class: "plan" },
    h("h2", {}, "Plan"),
    h("dl", { class: "summary" }, definitions([
      ["trials", h("span", { id: "plan-trials" }, `${plan.num_trials} (${plan.sampler} sampler)`)],
      ["at once", String(plan.max_concurrent_trials)],
      ["pruner", prunerText(plan.pruner)],
      ["at most", h("span", { id: "plan-cost" },
        `${count(plan.max_epochs)} epochs, ${count(plan.max_images)} training images`)],
      ["estimated time", h("span", { id: "plan-seconds" },
        `${duration(plan.seconds)}${plan.sequential ? ", one trial after another" : ""}`)],
      ["based on", h("ul", { class: "plain" }, plan.basis.map((b) => h("li", {}, b.description)))],
    ])),
    plan.notes.length ? h("ul", { class: "muted" }, plan.notes.map((n) => h("li", {}, n))) : null,
    h("div", { class: "scroll" }, h("table", { class: "list", id: "plan-table" },
      h("thead", {}, h("tr", {}, ["trial", "params", "epochs", "images", "time"].map((c) =>
        h("th", { class: c === "params" ? "" : "num" }, c)))),
      h("tbody", {}, plan.trials.map((t) => h("tr", {},
        h("td", { class: "num" }, String(t.index)), h("td", {}, params(t.params)),
        h("td", { class: "num" }, String(t.epochs)), h("td", { class: "num" }, count(t.images)),
        h("td", { class: "num" }, duration(t.seconds))))))));
}
