// #/searches: the caller's searches, refreshed every 3 s, each with the trials' statuses and the
// best trial's score as the server ranks it (once every trial has ended).
import * as api from "./api.js";
import { badge, errorBox, h, score, short, statusCounts, when } from "./dom.js";
import { every } from "./router.js";
import { searchPaths } from "./view-search-charts.js";

// The server's best trial of a search (null until it names one).
export const bestTrial = (search) => search.trials.find((t) => t.job_id === search.best_job_id) || null;

function row(s) {
  const best = bestTrial(s);
  return h("tr", { "data-search": s.id },
    h("td", {}, h("a", { href: `#/searches/${s.id}`, class: "mono" }, short(s.id))),
    h("td", {}, badge(s.status)),
    h("td", {}, s.base.dataset),
    h("td", { class: "wide" }, `${s.space ? `${s.sampler}: ` : ""}${searchPaths(s).join(" × ")}`),
    h("td", {}, statusCounts(s.trials)),
    h("td", { class: "num best-score", title: `${s.metric} (${s.mode})` },
      best ? score(s.metric, best.score) : "–"),
    h("td", { class: "wide muted" }, when(s.created_at)));
}

export default function searchesPage(main) {
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  async function load() {
    try {
      const page = await api.get("/v1/searches?limit=50");
      body.replaceChildren(...page.items.map(row));
      note.textContent = page.items.length ? "" : "No searches yet: add grid axes or a sampled space under “New run”.";
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  }
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Searches"),
    h("a", { href: "#/new", class: "button primary" }, "New run")),
  h("div", { class: "scroll" }, h("table", { class: "list", id: "searches" },
    h("thead", {}, h("tr", {}, h("th", {}, "search"), h("th", {}, "status"), h("th", {}, "data"),
      h("th", { class: "wide" }, "searched"), h("th", {}, "trials"),
      h("th", { class: "num" }, "best"), h("th", { class: "wide" }, "created"))), body)),
  note);
  load();
  every(3000, load);
}
