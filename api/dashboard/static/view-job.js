// #/jobs/ID: a job's summary and spec, learning curves that grow with each epoch (its event
// stream), training images, and once it has ended the test confusion matrix and the prediction
// canvas, when the server has them for it; once it has succeeded, a form to register it as a model.
import * as api from "./api.js";
import { PALETTE, confusion, lineChart } from "./charts.js";
import { badge, button, definitions, describe, ended, errorBox, h, pct, progress, section, short, when }
  from "./dom.js";
import { leaving } from "./router.js";
import { registerForm } from "./view-models.js";
import predictPlayground from "./view-predict.js";

async function loadSamples(jobId, box) {
  try {
    const data = await api.get(`/v1/jobs/${jobId}/samples?n=24`);
    box.replaceChildren(...data.items.map((s) => h("figure", {},
      h("img", { src: `data:image/png;base64,${s.png}`, alt: s.class_name, width: 56, height: 56 }),
      h("figcaption", {}, s.class_name))));
  } catch (err) {
    box.replaceChildren(errorBox(err));
  }
}

// The test confusion matrix; nothing when the server has none for this job (409: not succeeded).
async function loadConfusion(jobId, box) {
  box.replaceChildren(section("Test confusion matrix", h("p", { class: "muted" }, "computing…")));
  try {
    const c = await api.get(`/v1/jobs/${jobId}/confusion`);
    const target = h("div");
    confusion(target, { labels: c.class_names, matrix: c.matrix });
    box.replaceChildren(section("Test confusion matrix",
      h("p", { class: "muted" }, `${c.count} test images, accuracy ${pct(c.accuracy)}, ` +
        `model of epoch ${c.epoch}. Rows: true class; columns: predicted.`), target));
  } catch (err) {
    box.replaceChildren(err.status === 409 ? "" : section("Test confusion matrix", errorBox(err)));
  }
}

export default async function jobPage(main, jobId) {
  const signal = leaving();
  let job;
  try {
    job = await api.get(`/v1/jobs/${jobId}`);
  } catch (err) {
    main.append(h("h1", {}, `Job ${short(jobId)}`), errorBox(err));
    return;
  }
  const metrics = [];
  const header = h("div", { class: "toolbar" });
  const summary = h("dl", { class: "summary", id: "job-summary" });
  const lossChart = h("div", { class: "chart-box", id: "loss-chart", "data-chart": "loss" });
  const accChart = h("div", { class: "chart-box", id: "acc-chart", "data-chart": "accuracy" });
  const samples = h("div", { class: "samples", id: "samples" }, h("p", { class: "muted" }, "loading…"));
  const confusionBox = h("div", { id: "confusion" });
  const playground = h("div", { id: "playground" });
  const registerBox = h("div", { id: "register-box" });
  const cancelBtn = button({ id: "cancel", class: "danger" }, "Cancel", async () => {
    cancelBtn.disabled = true;
    job = await api.post(`/v1/jobs/${jobId}/cancel`);
    drawHeader();
  }, header);
  const downloadBtn = button({ id: "download" }, "Download checkpoint",
    () => api.download(`/v1/jobs/${jobId}/checkpoint`, `${jobId}-best.pt`), header);

  function drawHeader() {
    cancelBtn.hidden = !job.actions.includes("cancel");
    cancelBtn.disabled = job.cancel_requested;
    cancelBtn.textContent = job.cancel_requested ? "Cancelling…" : "Cancel";
    downloadBtn.hidden = !(job.epoch > 0);
    header.replaceChildren(h("h1", {}, "Job ", h("span", { class: "mono" }, short(jobId))),
      badge(job.status), h("span", { class: "spacer" }), cancelBtn, downloadBtn);
    const rows = [
      ["progress", progress(job)],
      ["best validation accuracy", h("span", { id: "best-val" }, pct(job.best_val_accuracy))],
      ["test accuracy", h("span", { id: "test-acc" }, pct(job.test_accuracy))],
      ["model", describe(job.spec)],
      ["dataset", `${job.spec.dataset}, ${job.spec.train_size ?? "all"} train / ` +
        `${job.spec.val_size} validation`],
      ["attempts", String(job.attempts)],
      ["created", when(job.created_at)], ["started", when(job.started_at)],
      ["finished", when(job.finished_at)],
    ];
    if (job.search_id) {
      rows.push(["search", h("a", { href: `#/searches/${job.search_id}` },
        `${short(job.search_id)} ${JSON.stringify(job.params)}`)]);
    }
    if (job.error) rows.push(["error", h("span", { class: "error" }, `${job.error.type}: ${job.error.message}`)]);
    summary.replaceChildren(...definitions(rows));
  }

  function drawCharts() {
    const pts = (key) => metrics.map((m) => [m.epoch, m[key]]);
    const xMax = job.spec.epochs;
    lineChart(lossChart, { xLabel: "epoch", yLabel: "loss", xMax, yMin: 0, series: [
      { name: "train loss", color: PALETTE[0], points: pts("train_loss") },
      { name: "validation loss", color: PALETTE[1], points: pts("val_loss") },
    ] });
    lineChart(accChart, { xLabel: "epoch", yLabel: "validation accuracy", xMax, yCap: 1, series: [
      { name: "validation accuracy", color: PALETTE[2], points: pts("val_accuracy") },
    ] });
  }

  let endedDrawn = false;
  function drawEnded() {
    if (!ended(job) || endedDrawn) return;
    endedDrawn = true;
    if (job.actions.includes("register")) registerBox.replaceChildren(registerForm(job));
    loadConfusion(jobId, confusionBox);
    if (job.epoch > 0) predictPlayground(job, playground); // the server has a model for it
  }

  drawHeader();
  main.append(header,
    h("div", { class: "grid2" },
      section("Learning curves", lossChart, accChart),
      h("div", {}, section("Summary", summary),
        section("Spec", h("pre", { class: "spec" }, JSON.stringify(job.spec, null, 2))))),
    section("Training images", samples),
    h("div", { id: "ended" }, registerBox, confusionBox, playground));
  drawCharts();
  loadSamples(jobId, samples);
  drawEnded();

  api.follow(`/v1/jobs/${jobId}/events`, (type, data) => {
    if (type === "epoch") {
      if (!metrics.some((m) => m.epoch === data.epoch)) metrics.push(data);
      metrics.sort((a, b) => a.epoch - b.epoch);
      job.epoch = Math.max(job.epoch, data.epoch);
      drawCharts();
    } else if (type === "status") {
      job = data;
    }
    drawHeader();
    drawEnded();
  }, signal).catch((err) => header.append(errorBox(err)));
}
