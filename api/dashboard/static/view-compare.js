// #/compare?ids=A,B,C: jobs picked on the jobs list (from any searches, or none), side by side:
// their validation accuracy and loss per epoch on one chart each (a line a job), and their specs
// as one table, a row a field, the rows whose values differ highlighted.
import * as api from "./api.js";
import { PALETTE, lineChart } from "./charts.js";
import { badge, ended, errorBox, h, label, pct, section, short } from "./dom.js";
import { every } from "./router.js";

export const compareHref = (ids) => `#/compare?ids=${ids.join(",")}`;

// A job's name on this page: its own name when it has one, else its short id.
const jobLabel = (job) => (job.name ? `${job.name} (${short(job.id)})` : short(job.id));

// {dotted.path: value} for every leaf of a spec; lists are one value.
function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = value;
  }
  return out;
}

const shown = (v) => (v === null || v === undefined ? "–" : label(v));

// The rows of the table: a few facts of each job, then every spec field any of them has.
function specTable(jobs, onlyDifferences, onToggle) {
  const specs = jobs.map((j) => flatten(j.spec));
  const paths = [...new Set(specs.flatMap((s) => Object.keys(s)))];
  const facts = [
    ["status", (j) => badge(j.status), (j) => j.status],
    ["best validation accuracy", (j) => pct(j.best_val_accuracy)],
    ["test accuracy", (j) => pct(j.test_accuracy)],
    ["epochs run", (j) => String(j.epoch || 0)],
    ["search", (j) => (j.search_id ? h("a", { href: `#/searches/${j.search_id}` },
      `${short(j.search_id)} ${JSON.stringify(j.params || {})}`) : "–"), (j) => j.search_id || ""],
    ["tags", (j) => (j.tags || []).join(", ") || "–"],
  ];
  const row = (name, cells, same, cls) => h("tr", { class: `${cls}${same ? "" : " differs"}`,
    "data-field": name, "data-differs": same ? null : "" },
  h("th", { scope: "row", class: "mono" }, name), ...cells.map((c) => h("td", {}, c)));
  const allSame = (values) => values.every((v) => JSON.stringify(v) === JSON.stringify(values[0]));
  const rows = [
    ...facts.map(([name, cell, key = cell]) => {
      const cells = jobs.map(cell);
      const keys = jobs.map((j) => String(key(j)));
      return row(name, cells, allSame(keys), "fact");
    }),
    ...paths.map((p) => {
      const values = specs.map((s) => s[p]);
      return row(p, values.map((v) => h("span", { class: "mono" }, shown(v))), allSame(values), "spec");
    }),
  ];
  const table = h("table", { class: "list compare", id: "compare-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "field"), ...jobs.map((j, i) => h("th", {},
      h("i", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` }),
      h("a", { href: `#/jobs/${j.id}`, class: "mono" }, jobLabel(j)))))),
    h("tbody", {}, ...rows));
  table.classList.toggle("only-differences", onlyDifferences);
  const onlyDiff = h("input", { type: "checkbox", id: "only-differences", checked: onlyDifferences,
    onchange: () => {
      table.classList.toggle("only-differences", onlyDiff.checked);
      onToggle(onlyDiff.checked);
    } });
  const n = rows.filter((r) => r.classList.contains("differs") && r.classList.contains("spec")).length;
  return [h("p", { class: "muted", id: "compare-differences" },
    `${n} spec field${n === 1 ? "" : "s"} differ${n === 1 ? "s" : ""}, highlighted. `,
    h("label", {}, onlyDiff, " show only the differences")),
  h("div", { class: "scroll" }, table)];
}

function charts(jobs, metrics) {
  const xMax = Math.max(1, ...jobs.map((j) => j.spec.epochs || 0));
  const series = (key) => jobs.map((j, i) => ({ name: jobLabel(j), color: PALETTE[i % PALETTE.length],
    points: metrics[i].map((m) => [m.epoch, m[key]]) }));
  const acc = h("div", { class: "chart-box", id: "compare-acc", "data-chart": "accuracy" });
  const loss = h("div", { class: "chart-box", id: "compare-loss", "data-chart": "loss" });
  const draw = () => {
    lineChart(acc, { xLabel: "epoch", yLabel: "validation accuracy", xMax, yCap: 1,
      series: series("val_accuracy") });
    lineChart(loss, { xLabel: "epoch", yLabel: "validation loss", xMax, yMin: 0,
      series: series("val_loss") });
  };
  return { element: h("div", { class: "grid2" }, acc, loss), draw };
}

// Each id's {job, rows} (its metrics), or {id, err} when the server refuses it.
const load = (ids) => Promise.all(ids.map(async (id) => {
  try {
    const [job, rows] = await Promise.all([api.get(`/v1/jobs/${id}`), api.get(`/v1/jobs/${id}/metrics`)]);
    return { job, rows };
  } catch (err) {
    return { id, err };
  }
}));

export default async function comparePage(main, idList) {
  const ids = [...new Set(idList.split(",").filter(Boolean))];
  const body = h("div", { id: "compare-view" });
  const title = `Compare ${ids.length} job${ids.length === 1 ? "" : "s"}`;
  main.append(h("div", { class: "toolbar" }, h("h1", {}, title),
    h("a", { href: "#/jobs", class: "button" }, "Pick other jobs")), body);
  let onlyDifferences = false;

  function draw(found) {
    const missing = found.filter((x) => x.err).map((f) => h("div", { "data-missing": f.id },
      errorBox(new Error(`${short(f.id)}: ${f.err.message}`))));
    const ok = found.filter((x) => x.job);
    if (!ok.length) return body.replaceChildren(...missing);
    const jobs = ok.map((x) => x.job);
    const chart = charts(jobs, ok.map((x) => x.rows));
    const [note, table] = specTable(jobs, onlyDifferences, (on) => { onlyDifferences = on; });
    body.replaceChildren(...missing, section("Validation curves", chart.element),
      section("Specs", note, table));
    chart.draw(); // drawn in the page, at the width it has there
    return jobs;
  }

  const jobs = draw(await load(ids)) || [];
  // While a job runs its curves grow: every job is read again, until all have ended.
  if (jobs.some((j) => !ended(j))) {
    let busy = false, done = false;
    every(3000, async () => {
      if (busy || done) return;
      busy = true;
      try {
        const found = await load(ids);
        draw(found);
        done = found.every((x) => !x.job || ended(x.job));
      } finally {
        busy = false;
      }
    });
  }
}
