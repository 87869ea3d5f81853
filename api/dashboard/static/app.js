// The cnnlab dashboard: a single page with hash routes.
//   #/signin            token form          #/jobs              jobs list (live)
//   #/new               submit a job/search #/jobs/ID           a job: curves, samples, ...
//   #/searches          searches list       #/searches/ID       trials, heatmap, curves
import * as api from "./api.js";
import { PALETTE, bars, confusion, heatmap, lineChart } from "./charts.js";

const ENDED = ["succeeded", "failed", "cancelled"];
const STATUSES = ["queued", "running", ...ENDED];
const main = document.getElementById("main");
const nav = document.getElementById("nav");

// -- small DOM helpers ------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c);
  }
  return el;
}

const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(2)}%`);
const short = (id) => id.slice(0, 8);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const badge = (status) => h("span", { class: `badge ${status}`, "data-status": status }, status);

function progress(job) {
  const n = job.spec.epochs || 0;
  const k = job.epoch || 0;
  return h("span", { class: "progress", title: `epoch ${k} of ${n}` },
    h("span", { class: "track" }, h("span", { style: `width:${n ? (100 * k) / n : 0}%` })),
    h("span", { class: "label" }, `epoch ${k} of ${n}`));
}

function describe(spec) {
  const o = spec.optimizer || {};
  const m = spec.model || {};
  return `${m.arch || "cnn"} [${(m.channels || []).join(", ")}], ${o.name} lr ${o.lr}` +
    `${o.momentum ? ` m ${o.momentum}` : ""}, batch ${spec.batch_size}`;
}

function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err.message || String(err));
}

function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

// Work a view started (timers, streams) is stopped when the route changes.
let cleanups = [];
function onLeave(fn) {
  cleanups.push(fn);
}
function every(ms, fn) {
  const timer = setInterval(() => {
    if (!document.hidden) fn();
  }, ms);
  onLeave(() => clearInterval(timer));
}

// -- routing ------------------------------------------------------------------------------------
const routes = [
  [/^#\/signin$/, signIn],
  [/^#\/new$/, newRun],
  [/^#\/jobs\/(\w+)$/, jobPage],
  [/^#\/searches$/, searchesPage],
  [/^#\/searches\/(\w+)$/, searchPage],
  [/^#\/jobs$/, jobsPage],
];

function render() {
  for (const fn of cleanups.splice(0)) fn();
  if (!api.token.get() && location.hash !== "#/signin") {
    location.hash = "#/signin";
    return;
  }
  const hash = location.hash || "#/jobs";
  nav.hidden = !api.token.get();
  for (const a of nav.querySelectorAll("a[data-route]")) {
    a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
  }
  for (const [pattern, view] of routes) {
    const match = hash.match(pattern);
    if (match) {
      main.replaceChildren();
      view(...match.slice(1));
      window.scrollTo(0, 0);
      return;
    }
  }
  location.hash = "#/jobs";
}

api.setUnauthorizedHandler(() => {
  api.token.clear();
  sessionStorage.setItem("cnnlab-signin-reason", "The server did not accept the token.");
  location.hash = "#/signin";
});

// -- sign in ------------------------------------------------------------------------------------
function signIn() {
  const reason = sessionStorage.getItem("cnnlab-signin-reason");
  sessionStorage.removeItem("cnnlab-signin-reason");
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password",
    required: true, placeholder: "API token", "aria-label": "API token" });
  const message = h("div", {}, reason ? errorBox({ message: reason }) : null);
  const form = h("form", { class: "card signin", onsubmit: async (e) => {
    e.preventDefault();
    api.token.set(input.value.trim());
    try {
      await api.get("/v1/jobs?limit=1");
      location.hash = "#/jobs";
    } catch (err) {
      api.token.clear();
      message.replaceChildren(errorBox(err));
      if (location.hash !== "#/signin") location.hash = "#/signin";
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Paste an API token. An administrator creates one with ",
    h("code", {}, "cnnlab token create USER"), ". It is kept for this browser tab only."),
  h("label", { for: "token" }, "Token"), input,
  h("button", { type: "submit", class: "primary" }, "Sign in"), message);
  main.append(form);
  input.focus();
}

// -- jobs list ----------------------------------------------------------------------------------
function jobsPage() {
  const params = new URLSearchParams(sessionStorage.getItem("cnnlab-job-filters") || "");
  const status = h("select", { id: "status-filter", "aria-label": "status" },
    h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s)));
  const query = h("input", { id: "job-search", type: "search", placeholder: "search id, dataset, model…",
    value: params.get("q") || "", "aria-label": "search" });
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  let jobs = [], newest = [], older = [];
  let next = null;

  const more = h("button", { hidden: true, onclick: () => load(true) }, "Load more");

  function remember() {
    const p = new URLSearchParams({ status: status.value, q: query.value });
    sessionStorage.setItem("cnnlab-job-filters", p.toString());
  }

  function draw() {
    const q = query.value.trim().toLowerCase();
    const shown = jobs.filter((j) => !q || [j.id, j.status, j.spec.dataset, describe(j.spec),
      j.search_id || ""].join(" ").toLowerCase().includes(q));
    body.replaceChildren(...shown.map((j) => h("tr", { "data-job": j.id },
      h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "mono" }, short(j.id))),
      h("td", {}, badge(j.status)),
      h("td", { class: "wide" }, j.spec.dataset),
      h("td", { class: "wide" }, describe(j.spec)),
      h("td", {}, progress(j)),
      h("td", { class: "num best-val" }, pct(j.best_val_accuracy)),
      h("td", { class: "num wide" }, pct(j.test_accuracy)),
      h("td", { class: "wide muted" }, when(j.created_at)))));
    note.textContent = shown.length ? "" : "No jobs match. Submit one with “New run”.";
  }

  async function load(append = false) {
    const p = new URLSearchParams({ limit: "50" });
    if (status.value) p.set("status", status.value);
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

  status.addEventListener("change", () => { remember(); older = []; next = null; load(); });
  query.addEventListener("input", () => { remember(); draw(); });
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Jobs"),
      h("a", { href: "#/new", class: "button primary" }, "New run")),
    h("div", { class: "filters" }, status, query),
    h("div", { class: "scroll" }, h("table", { class: "list", id: "jobs" },
      h("thead", {}, h("tr", {}, h("th", {}, "job"), h("th", {}, "status"),
        h("th", { class: "wide" }, "data"), h("th", { class: "wide" }, "model"), h("th", {}, "progress"),
        h("th", { class: "num" }, "best val"), h("th", { class: "num wide" }, "test"),
        h("th", { class: "wide" }, "created"))),
      body)),
    note, more);
  load();
  every(2000, () => load());
}

// -- new job / search ---------------------------------------------------------------------------
const GRID_AXES = ["optimizer.lr", "batch_size", "optimizer.momentum", "optimizer.weight_decay",
  "model.dropout", "epochs", "seed"];

async function newRun() {
  const field = (id, label, input, hint) => h("div", { class: "field" },
    h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
  const num = (id, value, attrs = {}) => h("input", { id, name: id, type: "number", value,
    step: "any", ...attrs });
  const dataset = h("select", { id: "dataset", name: "dataset" });
  const f = {
    dataset,
    train_size: num("train_size", "", { min: 1, placeholder: "all" }),
    val_size: num("val_size", "10000", { min: 0 }),
    epochs: num("epochs", "5", { min: 1, step: 1 }),
    batch_size: num("batch_size", "256", { min: 1, step: 1 }),
    optimizer: h("select", { id: "optimizer", name: "optimizer" },
      ["sgd", "adam", "adamw"].map((o) => h("option", { value: o }, o))),
    lr: num("lr", "0.1", { min: 0 }),
    momentum: num("momentum", "0.9", { min: 0, max: 1 }),
    channels: h("input", { id: "channels", name: "channels", value: "16, 32" }),
    batch_norm: h("input", { id: "batch_norm", type: "checkbox" }),
    dropout: num("dropout", "0", { min: 0, max: 1 }),
    seed: num("seed", "0", { step: 1 }),
    device: h("select", { id: "device", name: "device" },
      ["auto", "cpu", "cuda"].map((d) => h("option", { value: d }, d))),
  };
  const axes = [0, 1].map((i) => ({
    path: h("select", { id: `axis${i}`, "aria-label": `grid axis ${i + 1}` },
      h("option", { value: "" }, "—"), GRID_AXES.map((a) => h("option", { value: a }, a))),
    values: h("input", { id: `axis${i}-values`, placeholder: "e.g. 0.01, 0.1",
      "aria-label": `grid axis ${i + 1} values` }),
  }));
  const preview = h("pre", { class: "spec", id: "spec-preview" });
  const message = h("div", { role: "status" });
  const submit = h("button", { type: "submit", class: "primary", id: "submit" }, "Submit job");

  const number = (input) => (input.value.trim() === "" ? null : Number(input.value));
  function spec() {
    const s = {
      dataset: dataset.value,
      train_size: number(f.train_size),
      val_size: number(f.val_size) ?? 0,
      model: {
        arch: "cnn",
        channels: f.channels.value.split(/[\s,]+/).filter(Boolean).map(Number),
        batch_norm: f.batch_norm.checked,
        dropout: number(f.dropout) ?? 0,
      },
      optimizer: { name: f.optimizer.value, lr: number(f.lr) },
      batch_size: number(f.batch_size),
      epochs: number(f.epochs),
      seed: number(f.seed) ?? 0,
      device: f.device.value,
    };
    if (s.val_size > 0 && s.val_size < 1) s.val_size = Number(f.val_size.value);
    if (f.optimizer.value === "sgd") s.optimizer.momentum = number(f.momentum) ?? 0;
    return s;
  }
  function grid() {
    const g = {};
    for (const a of axes) {
      const values = a.values.value.split(/[\s,]+/).filter(Boolean).map(Number);
      if (a.path.value && values.length) g[a.path.value] = values;
    }
    return g;
  }
  function update() {
    const g = grid();
    const isSearch = Object.keys(g).length > 0;
    const n = Object.values(g).reduce((acc, v) => acc * v.length, 1);
    submit.textContent = isSearch ? `Start search (${n} trials)` : "Submit job";
    preview.textContent = JSON.stringify(isSearch ? { base: spec(), grid: g } : spec(), null, 2);
    f.momentum.disabled = f.optimizer.value !== "sgd";
  }

  const form = h("form", { class: "card", id: "new-run", oninput: update, onchange: update,
    onsubmit: async (e) => {
      e.preventDefault();
      message.replaceChildren();
      for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
      const g = grid();
      submit.disabled = true;
      try {
        if (Object.keys(g).length) {
          const search = await api.post("/v1/searches", { base: spec(), grid: g });
          location.hash = `#/searches/${search.id}`;
        } else {
          const job = await api.post("/v1/jobs", spec());
          location.hash = `#/jobs/${job.id}`;
        }
      } catch (err) {
        message.replaceChildren(errorBox(err));
        const name = (err.field || "").split(".").pop();
        const bad = name && form.querySelector(`#${CSS.escape(name)}`);
        if (bad) bad.classList.add("invalid");
      } finally {
        submit.disabled = false;
      }
    } },
  h("h1", {}, "New run"),
  h("fieldset", {}, h("legend", {}, "Data"),
    field("dataset", "Dataset", dataset),
    field("train_size", "Training images", f.train_size, "empty: all not held out"),
    field("val_size", "Validation images", f.val_size, "a count, or a fraction like 0.2")),
  h("fieldset", {}, h("legend", {}, "Model"),
    field("channels", "Conv channels", f.channels, "one 3×3 conv + pool per entry"),
    field("dropout", "Dropout", f.dropout),
    h("div", { class: "field check" }, f.batch_norm, h("label", { for: "batch_norm" }, "batch norm"))),
  h("fieldset", {}, h("legend", {}, "Training"),
    field("optimizer", "Optimizer", f.optimizer), field("lr", "Learning rate", f.lr),
    field("momentum", "Momentum", f.momentum), field("batch_size", "Batch size", f.batch_size),
    field("epochs", "Epochs", f.epochs), field("seed", "Seed", f.seed),
    field("device", "Device", f.device)),
  h("fieldset", {}, h("legend", {}, "Grid search (optional)"),
    h("p", { class: "muted" }, "Pick up to two axes and their values: one trial per combination."),
    axes.map((a, i) => h("div", { class: "axis" }, field(`axis${i}`, `Axis ${i + 1}`, a.path),
      field(`axis${i}-values`, "Values", a.values)))),
  h("details", {}, h("summary", {}, "Spec as JSON"), preview),
  h("div", { class: "actions" }, submit), message);
  main.append(form);

  try {
    const datasets = await api.get("/v1/datasets");
    dataset.replaceChildren(...datasets.map((d) => h("option", { value: d.name,
      disabled: !d.available, title: d.available ? "" : `not on this server: ${d.tried.join(", ")}` },
    `${d.name}${d.available ? "" : " (not on this server)"}`)));
    const first = datasets.find((d) => d.available);
    if (first) dataset.value = first.name;
  } catch (err) {
    message.replaceChildren(errorBox(err));
  }
  update();
}

// -- one job ------------------------------------------------------------------------------------
async function jobPage(jobId) {
  const controller = new AbortController();
  onLeave(() => controller.abort());
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
  const cancelBtn = h("button", { id: "cancel", class: "danger", onclick: async () => {
    cancelBtn.disabled = true;
    try {
      job = await api.post(`/v1/jobs/${jobId}/cancel`);
      drawHeader();
    } catch (err) {
      header.append(errorBox(err));
    }
  } }, "Cancel");
  const downloadBtn = h("button", { id: "download", onclick: () =>
    api.download(`/v1/jobs/${jobId}/checkpoint`, `${jobId}-best.pt`).catch((err) =>
      header.append(errorBox(err))) }, "Download checkpoint");

  function drawHeader() {
    cancelBtn.hidden = ENDED.includes(job.status);
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
    summary.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
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
    if (job.status !== "succeeded" || endedDrawn) return;
    endedDrawn = true;
    loadConfusion(jobId, confusionBox);
    predictPlayground(job, playground);
  }

  drawHeader();
  main.append(header,
    h("div", { class: "grid2" },
      section("Learning curves", lossChart, accChart),
      h("div", {}, section("Summary", summary),
        section("Spec", h("pre", { class: "spec" }, JSON.stringify(job.spec, null, 2))))),
    section("Training images", samples),
    h("div", { id: "ended" }, confusionBox, playground));
  drawCharts();
  loadSamples(jobId, samples);
  drawEnded();

  api.followJob(jobId, (type, data) => {
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
  }, controller.signal).catch((err) => header.append(errorBox(err)));
}

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
    box.replaceChildren(section("Test confusion matrix", errorBox(err)));
  }
}

// -- prediction playground ----------------------------------------------------------------------
async function predictPlayground(job, box) {
  let meta = null;
  try {
    meta = (await api.get("/v1/datasets")).find((d) => d.name === job.spec.dataset);
  } catch {
    meta = null;
  }
  const [channels, height, width] = meta ? meta.shape : [1, 28, 28];
  const labels = meta ? meta.class_names : [];
  const size = 280;
  const canvas = h("canvas", { id: "draw", width: size, height: size, "aria-label": "drawing area" });
  const ctx = canvas.getContext("2d");
  const sent = h("canvas", { id: "sent", width, height, title: "what the model sees" });
  const result = h("div", { id: "prediction", "aria-live": "polite" });
  const file = h("input", { type: "file", id: "image-file", accept: "image/png,image/jpeg" });
  let drawn = false;

  function clear() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, size, size);
    drawn = false;
    result.replaceChildren(h("p", { class: "muted" }, "Draw, then press Predict."));
  }
  clear();

  let last = null;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * size) / r.width, ((e.clientY - r.top) * size) / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = point(e);
    drawn = true;
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = point(e);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 22;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const stop = () => { last = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);

  // MNIST's recipe: the ink's bounding box scaled into a 20×20 box, centred in 28×28.
  function drawingToPixels() {
    const img = ctx.getImageData(0, 0, size, size).data;
    let x0 = size, y0 = size, x1 = -1, y1 = -1;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        if (img[(y * size + x) * 4] > 30) {
          x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
        }
      }
    }
    const sctx = sent.getContext("2d");
    sctx.fillStyle = "#000";
    sctx.fillRect(0, 0, width, height);
    if (x1 >= 0) {
      const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
      const scale = (Math.min(width, height) * (20 / 28)) / Math.max(bw, bh);
      const dw = bw * scale, dh = bh * scale;
      sctx.imageSmoothingQuality = "high";
      sctx.drawImage(canvas, x0, y0, bw, bh, (width - dw) / 2, (height - dh) / 2, dw, dh);
    }
    const px = sctx.getImageData(0, 0, width, height).data;
    const rows = [];
    for (let y = 0; y < height; y++) {
      const row = [];
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        row.push(channels === 1 ? px[i] : [px[i], px[i + 1], px[i + 2]]);
      }
      rows.push(row);
    }
    return rows;
  }

  function show(prediction) {
    const p = prediction.probabilities;
    const top = h("p", { class: "top-class" }, h("strong", { id: "predicted-class" },
      prediction.class_name), ` — ${(100 * p[prediction.label]).toFixed(1)}%`);
    const chart = h("div", { id: "probabilities" });
    bars(chart, { labels, values: p });
    result.replaceChildren(top, chart);
  }

  async function predictDrawing() {
    if (!drawn) {
      result.replaceChildren(h("p", { class: "muted" }, "Draw something first."));
      return;
    }
    try {
      const answer = await api.post(`/v1/jobs/${job.id}/predict`, { instances: [drawingToPixels()] });
      show(answer.predictions[0]);
    } catch (err) {
      result.replaceChildren(errorBox(err));
    }
  }

  async function predictFile(f) {
    if (!f) return;
    const bitmap = await createImageBitmap(f).catch(() => null);
    if (bitmap) {
      clear();
      const s = Math.min(size / bitmap.width, size / bitmap.height);
      ctx.drawImage(bitmap, (size - bitmap.width * s) / 2, (size - bitmap.height * s) / 2,
        bitmap.width * s, bitmap.height * s);
      sent.getContext("2d").drawImage(bitmap, 0, 0, width, height);
    }
    const form = new FormData();
    form.append("files", f, f.name);
    try {
      const answer = await (await api.request("POST", `/v1/jobs/${job.id}/predict`, { body: form })).json();
      show(answer.predictions[0]);
    } catch (err) {
      result.replaceChildren(errorBox(err));
    }
  }

  file.addEventListener("change", () => predictFile(file.files[0]));
  const drop = h("div", { class: "drop", id: "drop" }, canvas);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    predictFile(e.dataTransfer.files[0]);
  });

  box.replaceChildren(section("Try the model",
    h("p", { class: "muted" }, `Draw ${channels === 1 ? "a digit or a garment" : "something"} ` +
      "(white on black), or drop a PNG/JPEG on the canvas."),
    h("div", { class: "playground" },
      h("div", {}, drop, h("div", { class: "actions" },
        h("button", { class: "primary", id: "predict", onclick: predictDrawing }, "Predict"),
        h("button", { id: "clear", onclick: clear }, "Clear"),
        h("label", { class: "button", for: "image-file" }, "Choose image…"), file),
      h("p", { class: "muted" }, "Sent to the model: ", sent)),
      result)));
}

// -- searches -----------------------------------------------------------------------------------
function searchesPage() {
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  async function load() {
    try {
      const page = await api.get("/v1/searches?limit=50");
      body.replaceChildren(...page.items.map((s) => {
        const best = Math.max(...s.trials.map((t) => t.val_accuracy ?? -1));
        return h("tr", { "data-search": s.id },
          h("td", {}, h("a", { href: `#/searches/${s.id}`, class: "mono" }, short(s.id))),
          h("td", {}, badge(s.status)),
          h("td", {}, s.base.dataset),
          h("td", { class: "wide" }, Object.keys(s.grid).join(" × ")),
          h("td", { class: "num" }, `${s.trials.filter((t) => ENDED.includes(t.status)).length}/${s.trials.length}`),
          h("td", { class: "num" }, best >= 0 ? pct(best) : "–"),
          h("td", { class: "wide muted" }, when(s.created_at)));
      }));
      note.textContent = page.items.length ? "" : "No searches yet: add grid axes under “New run”.";
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  }
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Searches"),
    h("a", { href: "#/new", class: "button primary" }, "New run")),
  h("div", { class: "scroll" }, h("table", { class: "list" },
    h("thead", {}, h("tr", {}, h("th", {}, "search"), h("th", {}, "status"), h("th", {}, "data"),
      h("th", { class: "wide" }, "grid"), h("th", { class: "num" }, "ended"),
      h("th", { class: "num" }, "best val"), h("th", { class: "wide" }, "created"))), body)),
  note);
  load();
  every(3000, load);
}

const label = (v) => (typeof v === "object" ? JSON.stringify(v) : String(v));

async function searchPage(searchId) {
  const header = h("div", { class: "toolbar" });
  const summary = h("dl", { class: "summary" });
  const heat = h("div", { id: "heatmap" });
  const table = h("div", { id: "trials" });
  const curves = h("div", { class: "chart-box", id: "trial-curves", "data-chart": "trials" });
  const metrics = new Map(); // job id -> rows, refetched until the trial has ended
  let sortKey = null, sortDir = -1;
  let search;

  async function load() {
    try {
      search = await api.get(`/v1/searches/${searchId}`);
    } catch (err) {
      header.replaceChildren(h("h1", {}, `Search ${short(searchId)}`), errorBox(err));
      return;
    }
    await Promise.all(search.trials.map(async (t) => {
      const cached = metrics.get(t.job_id);
      if (cached && cached.ended) return;
      if (t.status === "queued") return;
      try {
        const rows = await api.get(`/v1/jobs/${t.job_id}/metrics`);
        metrics.set(t.job_id, { rows, ended: ENDED.includes(t.status) });
      } catch {
        // A trial's metrics are best effort; the table still shows its status.
      }
    }));
    draw();
  }

  function draw() {
    const axes = Object.keys(search.grid);
    const best = search.best_job_id ||
      search.trials.reduce((b, t) => ((t.val_accuracy ?? -1) > (b?.val_accuracy ?? -1) ? t : b), null)?.job_id;
    const cancel = h("button", { class: "danger", hidden: ENDED.includes(search.status),
      onclick: async () => { await api.post(`/v1/searches/${searchId}/cancel`); load(); } }, "Cancel search");
    header.replaceChildren(h("h1", {}, "Search ", h("span", { class: "mono" }, short(searchId))),
      badge(search.status), h("span", { class: "spacer" }), cancel);
    const bestTrial = search.trials.find((t) => t.job_id === search.best_job_id);
    summary.replaceChildren(...[
      ["dataset", search.base.dataset], ["base", describe(search.base)],
      ["grid", axes.map((a) => `${a}: ${search.grid[a].map(label).join(", ")}`).join("; ")],
      ["ranked by", `${search.metric} (${search.mode})`],
      ["trials ended", `${search.trials.filter((t) => ENDED.includes(t.status)).length} of ${search.trials.length}`],
      ["best trial", bestTrial ? h("a", { href: `#/jobs/${bestTrial.job_id}`, id: "best-trial" },
        `${short(bestTrial.job_id)} ${JSON.stringify(bestTrial.params)}`) : "once every trial has ended"],
      ["its test accuracy", pct(search.test_accuracy)],
    ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));

    // Heatmap over the first two axes; further axes collapse to their best trial.
    const [ya, xa] = axes.length > 1 ? axes : [axes[0], null];
    const ys = search.grid[ya].map(label), xs = xa ? search.grid[xa].map(label) : ["—"];
    const cells = ys.map(() => xs.map(() => null));
    for (const t of search.trials) {
      const r = ys.indexOf(label(t.params[ya]));
      const c = xa ? xs.indexOf(label(t.params[xa])) : 0;
      if (r < 0 || c < 0) continue;
      const cur = cells[r][c];
      if (!cur || (t.val_accuracy ?? -1) > (cur.value ?? -1)) {
        cells[r][c] = { value: t.val_accuracy ?? NaN, label: t.status, href: `#/jobs/${t.job_id}`,
          best: t.job_id === best };
      } else if (t.job_id === best) {
        cur.best = true;
      }
    }
    heatmap(heat, { xs, ys, cells, xLabel: xa || "", yLabel: ya, format: (v) => pct(v) });

    // Trials table, sortable by any column.
    const cols = [...axes.map((a) => [a, (t) => t.params[a]]), ["status", (t) => t.status],
      ["val accuracy", (t) => t.val_accuracy ?? -1], ["epochs", (t) => metrics.get(t.job_id)?.rows.length ?? 0]];
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
      h("tbody", {}, rows.map((t) => h("tr", { class: t.job_id === best ? "best" : "", "data-job": t.job_id },
        h("td", {}, h("a", { href: `#/jobs/${t.job_id}`, class: "mono" }, short(t.job_id))),
        axes.map((a) => h("td", { class: "num" }, label(t.params[a]))),
        h("td", {}, badge(t.status)),
        h("td", { class: "num" }, pct(t.val_accuracy)),
        h("td", { class: "num" }, String(metrics.get(t.job_id)?.rows.length ?? 0))))))));

    // Every trial's validation accuracy on one chart; the best one drawn thicker.
    lineChart(curves, { xLabel: "epoch", yLabel: "validation accuracy", xMax: search.base.epochs, yCap: 1,
      series: search.trials.map((t, i) => ({
        name: axes.map((a) => `${a.split(".").pop()}=${label(t.params[a])}`).join(" "),
        color: PALETTE[i % PALETTE.length], width: t.job_id === best ? 4 : 2,
        points: (metrics.get(t.job_id)?.rows || []).map((m) => [m.epoch, m.val_accuracy]),
      })) });
  }

  main.append(header, h("div", { class: "grid2" },
    section("Validation accuracy over the grid", heat,
      h("p", { class: "muted" }, "★ marks the best trial; a cell links to its job.")),
    section("Summary", summary)),
  section("Trials", table), section("Validation curves of every trial", curves));
  await load();
  every(2000, () => {
    if (search && !ENDED.includes(search.status)) load();
  });
}

// -- start --------------------------------------------------------------------------------------
document.getElementById("signout").addEventListener("click", () => {
  api.token.clear();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", render);
render();
