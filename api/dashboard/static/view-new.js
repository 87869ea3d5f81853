// #/new: a train spec form built from the server's schema (fields, choices, defaults, bounds);
// fill in up to two grid axes to start a grid search instead of a job.
import * as api from "./api.js";
import { errorBox, h } from "./dom.js";
import { fieldBox, fillChoices, makeInput, readInput, readValues, setPath } from "./fields.js";
import { architectures, datasets, searchFields, specFields } from "./schema.js";

// Where each field goes on the page; a field the server adds later lands under "More".
const GROUPS = [
  ["Data", ["dataset", "train_size", "val_size"]],
  ["Model", ["model.arch", "model.channels", "model.dropout", "model.batch_norm"]],
  ["Training", ["optimizer.name", "optimizer.lr", "optimizer.momentum", "optimizer.weight_decay",
    "optimizer.nesterov", "batch_size", "epochs", "seed", "device"]],
];
const AXES = 2;

// Mark the input an error names: "grid.batch_size" (its axis), "base.optimizer.lr",
// "model.channels.2" (the nearest input that exists).
function markInvalid(form, axes, field = "") {
  const axis = axes.find((a) => a.path.value && field.startsWith(`grid.${a.path.value}`));
  if (axis) return axis.values.classList.add("invalid");
  const parts = field.replace(/^base\./, "").split(".");
  for (let n = parts.length; n > 0; n--) {
    const el = form.querySelector(`[data-path="${CSS.escape(parts.slice(0, n).join("."))}"]`);
    if (el) return el.classList.add("invalid");
  }
}

async function catalogChoices(inputs, byPath, message) {
  try {
    const [sets, archs] = await Promise.all([datasets(), architectures()]);
    fillChoices(inputs.dataset, sets.map((d) => ({ value: d.name, disabled: !d.available,
      title: d.available ? undefined : `not on this server: ${d.tried.join(", ")}`,
      label: `${d.name}${d.available ? "" : " (not on this server)"}` })));
    fillChoices(inputs["model.arch"], archs.map((a) => ({ value: a })), byPath["model.arch"].default);
  } catch (err) {
    message.replaceChildren(errorBox(err));
  }
}

export default async function newRun(main) {
  const message = h("div", { role: "status" });
  let fields, options;
  try {
    [fields, options] = await Promise.all([specFields(), searchFields()]);
  } catch (err) {
    main.append(h("h1", {}, "New run"), errorBox(err));
    return;
  }
  const byPath = Object.fromEntries(fields.map((f) => [f.path, f]));
  const inputs = Object.fromEntries(fields.map((f) =>
    [f.path, makeInput(f, { choices: f.path === "dataset" || f.path === "model.arch" })]));
  const searchInputs = options.map((f) => [f, makeInput(f)]);
  // Any scalar field can be a grid axis; the server checks the values.
  const axisFields = fields.filter((f) => f.kind !== "array");
  const axes = [...Array(AXES).keys()].map((i) => ({
    path: h("select", { id: `axis${i}`, "aria-label": `grid axis ${i + 1}` },
      h("option", { value: "" }, "—"), axisFields.map((f) => h("option", { value: f.path }, f.path))),
    values: h("input", { id: `axis${i}-values`, placeholder: "e.g. 0.01, 0.1",
      "aria-label": `grid axis ${i + 1} values` }),
  }));
  const preview = h("pre", { class: "spec", id: "spec-preview" });
  const submit = h("button", { type: "submit", class: "primary", id: "submit" }, "Submit job");

  function spec() {
    const s = {};
    for (const f of fields) {
      const value = readInput(f, inputs[f.path]);
      if (value !== undefined) setPath(s, f.path, value);
    }
    return s;
  }
  function grid() {
    const g = {};
    for (const a of axes) {
      const values = a.path.value ? readValues(byPath[a.path.value], a.values.value) : [];
      if (values.length) g[a.path.value] = values;
    }
    return g;
  }
  function body() {
    const g = grid();
    if (!Object.keys(g).length) return null;
    const extra = Object.fromEntries(searchInputs.map(([f, input]) => [f.path, readInput(f, input)]));
    return { base: spec(), grid: g, ...extra };
  }
  function update() {
    const search = body();
    const n = search ? Object.values(search.grid).reduce((acc, v) => acc * v.length, 1) : 0;
    submit.textContent = search ? `Start search (${n} trials)` : "Submit job";
    preview.textContent = JSON.stringify(search || spec(), null, 2);
  }

  const form = h("form", { class: "card", id: "new-run", oninput: update, onchange: update,
    onsubmit: async (e) => {
      e.preventDefault();
      message.replaceChildren();
      for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
      const search = body();
      submit.disabled = true;
      try {
        if (search) {
          location.hash = `#/searches/${(await api.post("/v1/searches", search)).id}`;
        } else {
          location.hash = `#/jobs/${(await api.post("/v1/jobs", spec())).id}`;
        }
      } catch (err) {
        message.replaceChildren(errorBox(err));
        markInvalid(form, axes, err.field);
      } finally {
        submit.disabled = false;
      }
    } });

  const placed = new Set(GROUPS.flatMap(([, paths]) => paths));
  const groups = [...GROUPS, ["More", fields.map((f) => f.path).filter((p) => !placed.has(p))]];
  form.append(h("h1", {}, "New run"),
    ...groups.filter(([, paths]) => paths.some((p) => byPath[p])).map(([legend, paths]) =>
      h("fieldset", {}, h("legend", {}, legend),
        paths.filter((p) => byPath[p]).map((p) => fieldBox(byPath[p], inputs[p])))),
    h("fieldset", {}, h("legend", {}, "Grid search (optional)"),
      h("p", { class: "muted" }, "Pick up to two axes and their values: one trial per combination."),
      axes.map((a, i) => h("div", { class: "axis" },
        fieldBox({ path: `axis${i}`, title: `Axis ${i + 1}` }, a.path),
        fieldBox({ path: `axis${i}-values`, title: "Values" }, a.values))),
      searchInputs.map(([f, input]) => fieldBox(f, input))),
    h("details", {}, h("summary", {}, "Spec as JSON"), preview),
    h("div", { class: "actions" }, submit), message);
  main.append(form);
  await catalogChoices(inputs, byPath, message);
  update();
}
