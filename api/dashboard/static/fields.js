// Form inputs for spec fields as the server describes them (schema.js): the input's kind,
// choices, default and bounds all come from the field; the labels are the page's own words.
import { h } from "./dom.js";

const LABELS = {
  dataset: ["Dataset"],
  train_size: ["Training images", "empty: all not held out"],
  val_size: ["Validation images", "a count, or a fraction like 0.2"],
  "model.arch": ["Architecture"],
  "model.channels": ["Conv channels", "one block per entry; empty: the architecture's default"],
  "model.dropout": ["Dropout", "empty: the architecture's default"],
  "model.batch_norm": ["Batch norm"],
  "model.depth": ["Blocks per stage", "resnet; empty: the architecture's default"],
  "model.width": ["Width", "resnet: first stage's channels; empty: the architecture's default"],
  "optimizer.name": ["Optimizer"],
  "optimizer.lr": ["Learning rate"],
  "optimizer.momentum": ["Momentum"],
  "optimizer.weight_decay": ["Weight decay"],
  "optimizer.nesterov": ["Nesterov momentum"],
  batch_size: ["Batch size"],
  epochs: ["Epochs"],
  seed: ["Seed"],
  device: ["Device"],
  "init.model": ["Start from model", "one of your registered models; empty: random weights"],
  "init.alias": ["Its alias", "or a version; neither: the server's choice"],
  "init.version": ["Its version"],
  "init.job_id": ["Or from job", "a job's id: its best weights (instead of a model)"],
  "augment.crop": ["Random crop (px)"],
  "augment.flip": ["Horizontal flip"],
  "augment.translate": ["Translate (px)"],
  "augment.rotate": ["Rotate (°)"],
  "augment.jitter": ["Colour jitter"],
  "schedule.name": ["LR schedule"],
  "schedule.warmup_epochs": ["Warm-up epochs"],
  "schedule.step_epochs": ["Step every (epochs)"],
  "schedule.gamma": ["Step factor"],
  label_smoothing: ["Label smoothing"],
  class_weight: ["Class weights"],
  "early_stopping.patience": ["Early stopping patience",
    "epochs without a better validation accuracy; empty: off"],
  "early_stopping.min_delta": ["Min improvement"],
  precision: ["Precision"],
  deterministic: ["Deterministic"],
  freeze: ["Freeze"],
  freeze_epochs: ["Frozen epochs", "train only the head for this many epochs"],
  "search.metric": ["Ranked by", "on validation data"],
  "search.mode": ["Best is the", "empty: max for an accuracy, min for a loss"],
  "search.sampler": ["Sampler", "TPE learns from the trials before; empty: random"],
  "search.num_trials": ["Trials", "how many to draw"],
  "search.seed": ["Sampler seed", "the same seed draws the same trials"],
  "search.max_concurrent_trials": ["Trials at once", "empty: as many as the workers take"],
};

const inputId = (path) => path.replaceAll(".", "-");

const options = (values, chosen) =>
  values.map((v) => h("option", { value: v, selected: v === chosen }, String(v)));

// Fill a select with choices a catalog route gave: [{value, label?, disabled?, title?}].
export function fillChoices(input, choices, chosen) {
  input.replaceChildren(...choices.map((c) => h("option",
    { value: c.value, disabled: c.disabled, title: c.title }, c.label ?? c.value)));
  input.value = chosen ?? choices.find((c) => !c.disabled)?.value ?? "";
}

// The input for one field, its value already the server's default.
export function makeInput(field, { choices = false } = {}) {
  const id = inputId(field.path);
  const common = { id, name: id, "data-path": field.path };
  if (choices || field.enum) {
    // A field the server may leave unset gets an empty choice: the server's default.
    const unset = field.enum && field.nullable && field.default == null
      ? h("option", { value: "" }, "(server default)") : null;
    return h("select", common, unset, field.enum ? options(field.enum, field.default) : []);
  }
  if (field.kind === "boolean" && field.nullable && field.default == null) {
    // Unset means the server's default (an architecture's own, for a model option): a checkbox
    // could only say true or false.
    return h("select", common, h("option", { value: "" }, "(default)"),
      options(["true", "false"], ""));
  }
  if (field.kind === "boolean") {
    return h("input", { ...common, type: "checkbox", checked: Boolean(field.default) });
  }
  if (field.kind === "integer" || field.kind === "number") {
    return h("input", { ...common, type: "number", value: field.default ?? "",
      step: field.kind === "integer" ? 1 : "any", min: field.min, max: field.max,
      placeholder: field.path === "train_size" ? "all" : "" });
  }
  const value = Array.isArray(field.default) ? field.default.join(", ") : field.default ?? "";
  return h("input", { ...common, value, placeholder: field.kind === "array" ? "default" : "" });
}

// The field's label, input and hint, laid out.
export function fieldBox(field, input) {
  // The page's words where it has them; else the schema's title, and its description as the hint.
  const [text, hint = field.description] = LABELS[field.path] || [field.title];
  if (input.type === "checkbox") {
    return h("div", { class: "field check" }, input, h("label", { for: input.id }, text));
  }
  return h("div", { class: "field" }, h("label", { for: input.id }, text), input,
    hint ? h("small", {}, hint) : null);
}

const convert = (kind, text) =>
  kind === "integer" || kind === "number" ? Number(text) : kind === "boolean" ? text === "true" : text;

// What the input holds, typed as the field wants it; undefined when it is empty, so the
// server fills in its default.
export function readInput(field, input) {
  if (input.type === "checkbox") return input.checked;
  const text = input.value.trim();
  if (text === "") return undefined;
  return field.kind === "array" ? readValues({ kind: field.items }, text) : convert(field.kind, text);
}

// A list typed as "0.01, 0.1" or "32 64", each value typed as the field wants it.
export const readValues = (field, text) =>
  text.split(/[\s,]+/).filter(Boolean).map((t) => convert(field.kind, t));

// Put `value` at the dotted `path` of `doc`.
export function setPath(doc, path, value) {
  const parts = path.split(".");
  const leaf = parts.pop();
  for (const p of parts) doc = doc[p] ??= {};
  doc[leaf] = value;
}
