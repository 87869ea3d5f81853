// #/new: a train spec form built from the server's schema (fields, choices, defaults, bounds);
// fill in grid axes or a sampled space (view-new-search.js) to start a search instead of a job,
// and ask the server for its plan first (view-new-plan.js).
import * as api from "./api.js";
import { errorBox, h } from "./dom.js";
import { fieldBox, fillChoices, makeInput, readInput, setPath } from "./fields.js";
import { architectures, datasets, distributions, pruners, searchFields, specFields } from "./schema.js";
import { searchForm } from "./view-new-search.js";
import { planView } from "./view-new-plan.js";

// Where each field goes on the page; a field the server adds later lands under "More".
const GROUPS = [
  ["Data", ["dataset", "train_size", "val_size"]],
  ["Model", ["model.arch", "model.channels", "model.batch_norm", "model.depth", "model.width",
    "model.dropout"]],
  ["Training", ["optimizer.name", "optimizer.lr", "optimizer.momentum", "optimizer.weight_decay",
    "optimizer.nesterov", "batch_size", "epochs", "seed", "device"]],
  ["Recipe", ["augment.crop", "augment.flip", "augment.translate", "augment.rotate", "augment.jitter",
    "schedule.name", "schedule.warmup_epochs", "schedule.step_epochs", "schedule.gamma",
    "label_smoothing", "class_weight", "early_stopping.patience", "early_stopping.min_delta",
    "precision", "deterministic"]],
  ["Warm start", ["init.model", "init.alias", "init.version", "init.job_id", "freeze",
    "freeze_epochs"]],
];
// Mark the input an error names: the search's own ("grid.batch_size", "space.optimizer.lr",
// "pruner.min_epochs"), else a spec field ("base.optimizer.lr", "model.channels.2": the nearest
// input that exists).
function markInvalid(form, search, field = "") {
  if (search.markInvalid(field, form)) return;
  const parts = field.replace(/^base\./, "").split(".");
  for (let n = parts.length; n > 0; n--) {
    const path = parts.slice(0, n).join(".");
    const el = form.querySelector(`[data-path="${CSS.escape(path)}"]`);
    if (el) return el.classList.add("invalid");
    // An object the form shows as its fields ("init"): mark them all.
    const inside = form.querySelectorAll(`[data-path^="${CSS.escape(`${path}.`)}"]`);
    if (inside.length) return inside.forEach((e) => e.classList.add("invalid"));
  }
}

async function catalogChoices(inputs, byPath, message) {
  try {
    const [sets, archs] = await Promise.all([datasets(), architectures()]);
    fillChoices(inputs.dataset, sets.map((d) => ({ value: d.name, disabled: !d.available,
      title: d.available || d.kind === "uploaded" ? undefined : `not on this server: ${d.tried.join(", ")}`,
      label: `${d.name}${d.kind === "uploaded" ? " (your upload)" : ""}${d.available ? ""
        : d.kind === "uploaded" ? " (no ready version)" : " (not on this server)"}` })));
    fillChoices(inputs["model.arch"], archs.map((a) => ({ value: a })), byPath["model.arch"].default);
  } catch (err) {
    message.replaceChildren(errorBox(err));
  }
}

// The caller's registered models, offered (not imposed) as `init.model` values.
async function modelChoices(input) {
  if (!input) return;
  try {
    const page = await api.get("/v1/models?limit=50");
    const list = h("datalist", { id: "init-models" },
      ...page.items.map((m) => h("option", { value: m.name })));
    input.setAttribute("list", list.id);
    input.after(list);
  } catch {
    /* no suggestions: the field still takes a name */
  }
}

export default async function newRun(main) {
  const message = h("div", { role: "status" });
  let fields, options, kinds, rules;
  try {
    [fields, options, kinds, rules] = await Promise.all(
      [specFields(), searchFields(), distributions(), pruners()]);
  } catch (err) {
    main.append(h("h1", {}, "New run"), errorBox(err));
    return;
  }
  const byPath = Object.fromEntries(fields.map((f) => [f.path, f]));
  const inputs = Object.fromEntries(fields.map((f) =>
    [f.path, makeInput(f, { choices: f.path === "dataset" || f.path === "model.arch" })]));
  const search = searchForm(fields, options, kinds, rules);
  const preview = h("pre", { class: "spec", id: "spec-preview" });
  const planBox = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", id: "submit" }, "Submit job");

  function spec() {
    const s = {};
    for (const f of fields) {
      const value = readInput(f, inputs[f.path]);
      if (value !== undefined) setPath(s, f.path, value);
    }
    return s;
  }
  const body = () => search.body(spec());
  function update() {
    const b = body();
    const n = b && search.trials(b);
    submit.textContent = b ? `Start search${n ? ` (${n} trials)` : ""}` : "Submit job";
    planButton.hidden = !b;
    planBox.replaceChildren(); // a plan is of the form as it was
    preview.textContent = JSON.stringify(b || spec(), null, 2);
  }
  function failed(err) {
    message.replaceChildren(errorBox(err));
    markInvalid(form, search, err.field);
  }
  function clearErrors() {
    message.replaceChildren();
    for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  }
  const planButton = h("button", { type: "button", id: "plan-search", onclick: async () => {
    clearErrors();
    planButton.disabled = true;
    try {
      planBox.replaceChildren(planView(await api.post("/v1/searches/plan", body())));
    } catch (err) {
      failed(err);
    } finally {
      planButton.disabled = false;
    }
  } }, "Plan");

  const form = h("form", { class: "card", id: "new-run", oninput: update, onchange: update,
    onsubmit: async (e) => {
      e.preventDefault();
      clearErrors();
      const b = body();
      submit.disabled = true;
      try {
        if (b) {
          location.hash = `#/searches/${(await api.post("/v1/searches", b)).id}`;
        } else {
          location.hash = `#/jobs/${(await api.post("/v1/jobs", spec())).id}`;
        }
      } catch (err) {
        failed(err);
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
    search.element,
    h("details", {}, h("summary", {}, "Spec as JSON"), preview),
    h("div", { class: "actions" }, planButton, submit), message, planBox);
  main.append(form);
  await Promise.all([catalogChoices(inputs, byPath, message), modelChoices(inputs["init.model"])]);
  update();
}
