// A search's trials as a table, sortable by any column (a click on its header): params, status
// (a pruned trial says at which epoch and by which rule), score, epochs, test accuracy, time.
import { badge, h, pct, score, short } from "./dom.js";
import { param, searchPaths } from "./view-search-charts.js";

// "pruned at epoch 2 by asha", "failed: diverged": why a trial ended early, in the server's terms.
export function endedEarly(search, t) {
  if (t.status === "pruned") {
    const at = t.pruned_epoch ?? t.epoch;
    return `pruned at epoch ${at ?? "?"} by ${search.pruner?.name ?? "the pruner"}`;
  }
  return t.error_type ? `${t.status}: ${t.error_type.replaceAll("_", " ")}` : "";
}

function columns(search) {
  const cols = searchPaths(search).map((p) => [p, (t) => t.params[p], (t) => param(t.params[p]), "num"]);
  cols.push(["status", (t) => t.status, (t) => h("span", { class: "trial-status" }, badge(t.status),
    endedEarly(search, t) ? h("small", { class: "why" }, ` ${endedEarly(search, t)}`) : null), ""]);
  cols.push([search.metric.replaceAll("_", " "), (t) => t.score ?? -Infinity,
    (t) => score(search.metric, t.score), "num"]);
  if (search.metric !== "val_accuracy") {
    cols.push(["val accuracy", (t) => t.val_accuracy ?? -Infinity, (t) => pct(t.val_accuracy), "num"]);
  }
  cols.push(["epochs", (t) => t.epoch ?? 0, (t) => String(t.epoch ?? 0), "num"]);
  cols.push(["test accuracy", (t) => t.test_accuracy ?? -Infinity, (t) => pct(t.test_accuracy), "num"]);
  cols.push(["seconds", (t) => t.seconds ?? -Infinity, (t) => (t.seconds == null ? "–" : t.seconds.toFixed(1)), "num"]);
  return cols;
}

// A table drawn into `container`; draw(search) again whenever the search changes.
export function trialsTable(container) {
  let sortKey = null, sortDir = -1, last = null;
  function draw(search) {
    last = search;
    const cols = columns(search);
    const rows = [...search.trials];
    if (sortKey !== null && cols[sortKey]) {
      const get = cols[sortKey][1];
      rows.sort((a, b) => (get(a) > get(b) ? 1 : get(a) < get(b) ? -1 : 0) * sortDir);
    }
    const thead = h("tr", {}, h("th", {}, "trial"), cols.map(([name, , , cls], i) => h("th", {
      class: `sortable ${cls}`, "aria-sort": sortKey === i ? (sortDir > 0 ? "ascending" : "descending") : "none",
      onclick: () => { sortDir = sortKey === i ? -sortDir : -1; sortKey = i; draw(last); },
    }, name, sortKey === i ? (sortDir > 0 ? " ▲" : " ▼") : "")));
    const best = (t) => (t.job_id === search.best_job_id ? "best" : "");
    container.replaceChildren(h("div", { class: "scroll" }, h("table", { class: "list", id: "trials-table" },
      h("thead", {}, thead),
      h("tbody", {}, rows.map((t) => h("tr", { class: `${best(t)} ${t.status}`.trim(), "data-job": t.job_id,
        "data-status": t.status },
      h("td", {}, h("a", { href: `#/jobs/${t.job_id}`, class: "mono" },
        t.index == null ? short(t.job_id) : `#${t.index} ${short(t.job_id)}`)),
      cols.map(([, , show, cls]) => h("td", { class: cls }, show(t)))))))));
  }
  return { element: container, draw };
}
