// #/datasets: the caller's uploaded datasets, and an upload box (drop or pick a folder of class
// folders, or an archive; the bytes stream with a progress bar, then the worker's ingest
// progress follows). A folder goes up as one tar the page builds as it sends (tar.js).
// #/datasets/NAME: its versions; the chosen one's images per class and split, sample grid and
// report (skipped files, duplicates, duplicates across train and test).
import * as api from "./api.js";
import { leaving } from "./router.js";
import { badge, definitions, errorBox, h, when } from "./dom.js";
import { dropped, picked as pickedFolder } from "./folder-files.js";
import { datasets } from "./schema.js";
import { tarBlob } from "./tar.js";

export const datasetHref = (name) => `#/datasets/${encodeURIComponent(name)}`;
const datasetPath = (name) => `/v1/datasets/${encodeURIComponent(name)}`;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
// Content types the server takes, by the archive's name.
const TYPES = [[/\.zip$/i, "application/zip"], [/\.(tar\.gz|tgz|gz)$/i, "application/gzip"],
  [/\.tar$/i, "application/x-tar"]];
const TAR = "application/x-tar";

const contentType = (file) => (TYPES.find(([re]) => re.test(file.name)) || [])[1];

// POST `body` (a File or Blob) as the raw body with upload progress (fetch reports none): the
// version, or an api.ApiError with the server's detail.
function send(body, type, name, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/datasets?name=${encodeURIComponent(name)}`);
    xhr.setRequestHeader("Authorization", `Bearer ${api.token.get() || ""}`);
    xhr.setRequestHeader("Content-Type", type);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 202) resolve(answer);
      else reject(new api.ApiError(xhr.status, answer.detail || { message: `HTTP ${xhr.status}` }));
    };
    xhr.onerror = () => reject(new api.ApiError(0, { message: "the server cannot be reached" }));
    xhr.send(body);
  });
}

// What goes up for a folder's files: one tar, named after the folder (or "N folders").
function folderUpload(entries) {
  const tops = new Set(entries.map((e) => e.path.split("/")[0]));
  const label = tops.size === 1 ? `${[...tops][0]}/` : `${tops.size} folders`;
  return { body: tarBlob(entries), type: TAR, label: `${label} (${entries.length} files)` };
}

function uploadBox(onReady) {
  const name = h("input", { id: "dataset-name", placeholder: "name, e.g. parts", required: true,
    "aria-label": "dataset name", autocomplete: "off", spellcheck: false });
  const file = h("input", { type: "file", id: "dataset-file", accept: ".zip,.tar,.gz,.tgz",
    "aria-label": "an archive" });
  const folder = h("input", { type: "file", id: "dataset-folder", webkitdirectory: true,
    "aria-label": "a folder" });
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true });
  const status = h("div", { id: "upload-status", "aria-live": "polite" });
  // The inputs are hidden (style.css); their labels are the buttons.
  const drop = h("div", { class: "drop", id: "dataset-drop" },
    h("p", {}, "Drop a folder of class folders, or a .zip, .tar or .tar.gz of them, here; or"),
    h("div", { class: "pickers" },
      h("label", { class: "button", for: "dataset-folder" }, "Choose a folder…"), folder,
      h("label", { class: "button", for: "dataset-file" }, "Choose an archive…"), file));
  const signal = leaving();

  function named() {
    status.replaceChildren();
    if (NAME.test(name.value.trim())) {
      name.classList.remove("invalid");
      return true;
    }
    name.classList.add("invalid");
    status.replaceChildren(errorBox(new Error("Name the dataset first: [a-z0-9][a-z0-9._-]*")));
    return false;
  }

  // {body, type, label}: stream it, then follow the version's ingest.
  async function upload({ body, type, label }) {
    bar.hidden = false;
    try {
      const v = await send(body, type, name.value.trim(), (done, total) => {
        bar.max = total; bar.value = done;
        status.textContent = `uploading ${label}: ${Math.round((100 * done) / (total || 1))}%`;
      });
      status.textContent = `${v.name}@${v.version}: decoding on a worker…`;
      bar.value = 0;
      await api.follow(`${datasetPath(v.name)}/versions/${v.version}/events`, (type, d) => {
        if (d.progress && d.progress.total) {
          bar.max = d.progress.total; bar.value = d.progress.done;
          status.textContent = `${v.name}@${v.version}: ${d.progress.done} of ${d.progress.total} images decoded`;
        }
        if (d.status !== "ingesting") {
          onReady();
          status.replaceChildren(d.status === "ready"
            ? h("p", { class: "ok", id: "upload-done" }, `${v.name}@${v.version} is ready: `,
              h("a", { href: datasetHref(v.name), id: "uploaded-dataset" }, `open ${v.name}`))
            : errorBox(new Error(`${v.name}@${v.version} failed: ${d.error && d.error.message}`)));
        }
      }, signal);
    } catch (err) {
      if (err.field === "name") name.classList.add("invalid");
      status.replaceChildren(errorBox(err));
    } finally {
      bar.hidden = true;
    }
  }

  function uploadArchive(archive) {
    if (!named()) return;
    const type = contentType(archive);
    if (!type) {
      status.replaceChildren(errorBox(new Error(`${archive.name}: not a .zip, .tar or .tar.gz; ` +
        "drop the folder itself to send its files")));
      return;
    }
    upload({ body: archive, type, label: archive.name });
  }

  async function uploadFolder(entries) {
    if (!named()) return;
    if (!entries.length) {
      status.replaceChildren(errorBox(new Error("The folder holds no files.")));
      return;
    }
    // Packing tens of thousands of files takes seconds: say so before the page is busy with it.
    status.textContent = `packing ${entries.length} files…`;
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)));
    upload(folderUpload(entries));
  }

  file.addEventListener("change", () => {
    const chosen = file.files[0];
    file.value = ""; // picking the same file again (after naming it) is a change too
    if (chosen) uploadArchive(chosen);
  });
  folder.addEventListener("change", () => {
    const entries = pickedFolder(folder.files);
    folder.value = "";
    if (entries.length) uploadFolder(entries);
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    dropped(e.dataTransfer).then((what) => {
      if (what.folders) uploadFolder(what.entries);
      else if (what.files.length === 1) uploadArchive(what.files[0]);
      else if (what.files.length) {
        status.replaceChildren(errorBox(new Error("Drop one archive, or a folder.")));
      }
    }).catch((err) => status.replaceChildren(errorBox(err)));
  });
  return h("section", { class: "card", id: "upload-dataset" }, h("h2", {}, "Upload your images"),
    h("p", { class: "muted" }, "One folder per class (or train/ and test/ each holding them, or " +
      "labels.csv), as a folder or an archive. A worker decodes it; then train on it by name."),
    h("div", { class: "inline-form" }, name), drop, bar, status);
}

export default async function datasetsPage(main) {
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Datasets")), uploadBox(list),
    h("div", { class: "scroll" }, h("table", { class: "list", id: "datasets" },
      h("thead", {}, h("tr", {}, h("th", {}, "dataset"), h("th", {}, "kind"),
        h("th", { class: "num" }, "latest"), h("th", {}, "status"), h("th", { class: "num" }, "classes"),
        h("th", {}, "shape"))), body)), note);
  await list();

  // The table of datasets, read again once an upload has been decoded.
  async function list() {
    try {
      const rows = await datasets();
      body.replaceChildren(...rows.map((d) => h("tr", { "data-dataset": d.name },
        h("td", {}, d.kind === "uploaded"
          ? h("a", { href: datasetHref(d.name), class: "mono" }, d.name) : h("span", { class: "mono" }, d.name)),
        h("td", {}, d.kind || "builtin"),
        h("td", { class: "num" }, d.version ? `v${d.version}` : "–"),
        h("td", {}, d.status ? badge(d.status) : (d.available ? "available" : "not on this server")),
        h("td", { class: "num" }, String(d.class_names.length)),
        h("td", { class: "mono" }, d.shape ? d.shape.join("×") : "–"))));
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  }
}

// Images per class, one bar a class split into train, val and test.
function splitBars(counts) {
  const names = Object.keys(counts);
  const most = Math.max(1, ...names.map((n) => counts[n].train + counts[n].val + counts[n].test));
  const seg = (split, n) => h("span", { class: `seg ${split}`, title: `${split}: ${n}`,
    style: `width:${((100 * n) / most).toFixed(1)}%` });
  return h("ol", { class: "bars split-bars", id: "class-counts" }, ...names.map((n) => {
    const c = counts[n];
    return h("li", { "data-class": n }, h("span", { class: "name" }, n),
      h("span", { class: "bar" }, seg("train", c.train), seg("val", c.val), seg("test", c.test)),
      h("span", { class: "pct" }, `${c.train} / ${c.val} / ${c.test}`));
  }));
}

async function samplesImage(name, version) {
  const blob = await (await api.request("GET", `${datasetPath(name)}/versions/${version}/samples.png`)).blob();
  return h("img", { src: URL.createObjectURL(blob), id: "dataset-samples", alt: `samples of ${name}@${version}` });
}

function report(r) {
  const items = (list, text) => h("ul", {}, ...list.slice(0, 50).map((x) => h("li", { class: "mono" }, text(x))));
  return h("div", { id: "dataset-report" },
    h("p", {}, `layout ${r.layout}; ${r.images} images; imbalance ${r.imbalance_ratio}`),
    h("h3", {}, `Skipped files (${r.skipped.length})`),
    items(r.skipped, (s) => `${s.file}: ${s.why}`),
    h("h3", {}, `Duplicates (${r.duplicates.length})`), items(r.duplicates, (g) => g.join(" = ")),
    h("h3", {}, `In both train and test (${r.train_test_duplicates.length}, removed from test)`),
    items(r.train_test_duplicates, (d) => `${d.train} = ${d.test}`));
}

export async function datasetPage(main, name) {
  let found;
  try {
    found = await api.get(datasetPath(name));
  } catch (err) {
    main.append(h("h1", {}, name), errorBox(err));
    return;
  }
  const detail = h("div", { id: "version-detail" });
  const versions = h("tbody", {}, ...found.versions.map((v) => h("tr", { "data-version": v.version },
    h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); show(v); } }, `v${v.version}`)),
    h("td", {}, badge(v.status)), h("td", { class: "num" }, v.classes ? String(v.classes.length) : "–"),
    h("td", { class: "muted" }, when(v.created_at)))));

  async function show(v) {
    const parts = [h("h2", {}, `${name}@${v.version}`), h("dl", { class: "summary", id: "version-summary" }, ...definitions([
      ["status", badge(v.status)], ["classes", (v.classes || []).join(", ") || "–"],
      ["size", v.channels ? `${v.channels}×${v.image_size}×${v.image_size} (${v.resize})` : "–"],
      ["checksum", h("span", { class: "mono" }, v.checksum.slice(0, 16))]]))];
    if (v.error) parts.push(errorBox(new Error(v.error.message)));
    if (v.report) parts.push(h("h3", {}, "Images per class: train / val / test"), splitBars(v.report.counts));
    detail.replaceChildren(...parts);
    if (v.status === "ready") {
      try {
        detail.append(h("h3", {}, "Samples"), await samplesImage(name, v.version));
      } catch (err) {
        detail.append(errorBox(err));
      }
    }
    if (v.report) detail.append(report(v.report));
  }

  main.append(h("div", { class: "toolbar" }, h("h1", {}, name)),
    h("table", { class: "list", id: "dataset-versions" }, h("thead", {}, h("tr", {},
      h("th", {}, "version"), h("th", {}, "status"), h("th", { class: "num" }, "classes"),
      h("th", {}, "uploaded"))), versions),
    h("p", { class: "muted" }, `Train on it with "dataset": "${name}" (the newest ready version) or "${name}@V".`),
    detail);
  if (found.versions.length) show(found.versions[0]);
}
