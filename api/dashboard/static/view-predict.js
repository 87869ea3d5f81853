// The prediction canvas of a job's page: draw (or drop an image), send it to the job's model,
// show the class probabilities. The input shape and class names are the dataset's, from the
// server's catalog.
import * as api from "./api.js";
import { bars } from "./charts.js";
import { errorBox, h, section } from "./dom.js";
import { datasets } from "./schema.js";

export default async function predictPlayground(job, box) {
  let meta;
  try {
    meta = (await datasets()).find((d) => d.name === job.spec.dataset);
    const [name, version] = job.spec.dataset.split("@");
    if (!meta && version) { // an uploaded dataset's version: its own record
      const v = await api.get(`/v1/datasets/${encodeURIComponent(name)}/versions/${version}`);
      meta = { shape: [v.channels, v.image_size, v.image_size], class_names: v.classes };
    }
    if (!meta) throw new Error(`the server does not list the dataset ${job.spec.dataset}`);
  } catch (err) {
    box.replaceChildren(section("Try the model", errorBox(err)));
    return;
  }
  const [channels, height, width] = meta.shape;
  const labels = meta.class_names;
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
