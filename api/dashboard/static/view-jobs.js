// #/jobs: every job, newest first, refreshed every 2 s; filter by status (the server's list of
// statuses), search by id, dataset or model; tick jobs to compare them (view-compare.js).
import * as api from "./api.js";
import { badge, describe, errorBox, h, pct, progress, short, when } from "./dom.js";
import { every } from "./router.js";
import { statuses } from "./schema.js";
import { compareHref } from "./view-compare.js";

const FILTERS_KEY = "cnnlab-job-filters";
const PICKED_KEY = "cnnlab-compare"; // the ticked jobs, kept while the tab lives

// The ticked job ids, in the order they were ticked.
const picked = {
  get: () => (sessionStorage.getItem(PICKED_KEY) || "").split(",").filter(Boolean),
  set: (ids) => sessionStorage.setItem(PICKED_KEY, ids.join(",")),
};

function row(j, onPick) {
  const tick = h("input", { type: "checkbox", class: "pick", "aria-label": `compare ${short(j.id)}`,
    checked: picked.get().includes(j.id), onchange: () => onPick(j.id, tick.checked) });
  return h("tr", { "data-job": j.id },
    h("td", { class: "pick" }, tick),
    h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "mono" }, short(j.id))),
    h("td", {}, badge(j.status)),
    h("td", { class: "wide" }, j.spec.dataset),
    h("td", { class: "wide" }, describe(j.spec)),
    h("td", {}, progress(j)),
    h("td", { class: "num best-val" }, pct(j.best_val_accuracy)),
    h("td", { class: "num wide" }, pct(j.test_accuracy)),
    h("td", { class: "wide muted" }, when(j.created_at)));
}

export default function jobsPage(main) {
  const params = new URLSearchParams(sessionStorage.getItem(FILTERS_KEY) || "");
  const status = h("select", { id: "status-filter", "aria-label": "status" },
    h("option", { value: "" }, "any status"));
  const query = h("input", { id: "job-search", type: "search", placeholder: "search id, dataset, model…",
    value: params.get("q") || "", "aria-label": "search" });
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  let jobs = [], newest = [], older = [];
  let next = null;

  const more = h("button", { hidden: true, onclick: () => load(true) }, "Load more");
  const compare = h("a", { class: "button", id: "compare" });
  const clear = h("button", { type: "button", class: "link", id: "compare-clear",
    onclick: () => { picked.set([]); showPicked(); draw(); } }, "clear");

  function showPicked() {
    const ids = picked.get();
    compare.textContent = `Compare ${ids.length} job${ids.length === 1 ? "" : "s"}`;
    compare.href = compareHref(ids);
    compare.classList.toggle("disabled", ids.length < 2);
    compare.setAttribute("aria-disabled", String(ids.length < 2));
    clear.hidden = !ids.length;
  }
  function onPick(id, on) {
    const ids = picked.get().filter((x) => x !== id);
    picked.set(on ? [...ids, id] : ids);
    showPicked();
  }
  compare.addEventListener("click", (e) => { if (picked.get().length < 2) e.preventDefault(); });

  function remember() {
    const p = new URLSearchParams({ status: status.value, q: query.value });
    sessionStorage.setItem(FILTERS_KEY, p.toString());
  }

  function draw() {
    const q = query.value.trim().toLowerCase();
    const shown = jobs.filter((j) => !q || [j.id, j.status, j.spec.dataset, describe(j.spec),
      j.search_id || ""].join(" ").toLowerCase().includes(q));
    body.replaceChildren(...shown.map((j) => row(j, onPick)));
    note.textContent = shown.length ? "" : "No jobs match. Submit one with “New run”.";
  }

  async function load(append = false) {
    const p = new URLSearchParams({ limit: "50" });
    const wanted = status.value || params.get("status");
    if (wanted) p.set("status", wanted);
    if (append && next) p.set("cursor", next);
    try {
      const page = await api.get(`/v1/jobs?${p}`);
      if (append) {
        older = older.concat(page.items);
      } else {
        // A refresh renews the first page and keeps the older pages already loaded.
        const ids = new Set(page.items.map((j) => j.id));
        older = older.filter((j) => !ids.has(j.id));
        if (!older.length) next = page.next;
        newest = page.items;
      }
      if (append) next = page.next;
      jobs = newest.concat(older);
      more.hidden = !next;
      draw();
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  }

  status.addEventListener("change", () => {
    params.delete("status");
    remember(); older = []; next = null; load();
  });
  query.addEventListener("input", () => { remember(); draw(); });
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Jobs"), h("span", { class: "spacer" }), clear,
      compare, h("a", { href: "#/new", class: "button primary" }, "New run")),
    h("div", { class: "filters" }, status, query),
    h("div", { class: "scroll" }, h("table", { class: "list", id: "jobs" },
      h("thead", {}, h("tr", {}, h("th", { class: "pick", title: "tick to compare" }, "⇄"),
        h("th", {}, "job"), h("th", {}, "status"),
        h("th", { class: "wide" }, "data"), h("th", { class: "wide" }, "model"), h("th", {}, "progress"),
        h("th", { class: "num" }, "best val"), h("th", { class: "num wide" }, "test"),
        h("th", { class: "wide" }, "created"))),
      body)),
    note, more);
  showPicked();
  statuses().then((names) => {
    status.append(...names.map((s) => h("option", { value: s, selected: params.get("status") === s }, s)));
  }).catch((err) => note.replaceChildren(errorBox(err)));
  load();
  every(2000, () => load());
}
