// The search part of #/new: a grid (listed values on up to two axes) or a sampled space (a
// distribution per field), the sampler and its trials, a pruner, how many trials run at once.
// Its fields come from the server's schema; the server checks every value.
import { h } from "./dom.js";
import { fieldBox, makeInput, readInput, readValues } from "./fields.js";

// The fields only a sampled space uses; the samplers, distributions and pruners are the schema's.
const SPACE_ONLY = ["sampler", "num_trials", "seed"];
const AXES = 2;
const SPACE_ROWS = 4;

const pathSelect = (id, label, fields) => h("select", { id, "aria-label": label },
  h("option", { value: "" }, "—"), fields.map((f) => h("option", { value: f.path }, f.path)));

const number = (input) => (input.value.trim() === "" ? null : Number(input.value));

// The distributions a field of this kind may take: those whose bounds are of its kind, those
// of any values (a choice), and a log option as a kind of its own ("int (log)").
const kindsFor = (field, kinds) => kinds
  .filter((d) => d.items === null || d.items === field?.kind)
  .flatMap((d) => (d.log ? [d.key, `${d.key} (log)`] : [d.key]));

// One row of a sampled space: a field, a distribution and its bounds (or its choices).
function spaceRow(i, fields, byPath, kinds) {
  const path = pathSelect(`space${i}`, `sampled field ${i + 1}`, fields);
  const kind = h("select", { id: `space${i}-kind`, "aria-label": `distribution ${i + 1}` });
  const low = h("input", { id: `space${i}-low`, type: "number", step: "any", "aria-label": "low" });
  const high = h("input", { id: `space${i}-high`, type: "number", step: "any", "aria-label": "high" });
  // A distribution of listed values (a choice) rather than bounds.
  const takesValues = (value) => !kinds.find((d) => d.key === value.split(" (")[0])?.items;
  const choices = h("input", { id: `space${i}-choices`, "aria-label": `choices ${i + 1}` });
  const bounds = [fieldBox({ path: `space${i}-low`, title: "Low" }, low),
    fieldBox({ path: `space${i}-high`, title: "High" }, high)];
  const choiceBox = fieldBox({ path: `space${i}-choices`, title: "Choices" }, choices);
  const field = () => byPath[path.value];
  const kindBox = fieldBox({ path: `space${i}-kind`, title: "Distribution" }, kind);
  function show() {
    const isChoice = takesValues(kind.value);
    bounds.forEach((b) => { b.hidden = isChoice || !path.value; });
    choiceBox.hidden = !isChoice || !path.value;
    kindBox.hidden = !path.value;
    const f = field();
    choices.placeholder = f?.kind === "array" ? "16 32; 32 64" : "e.g. 128, 256";
  }
  path.addEventListener("change", () => {
    kind.replaceChildren(...kindsFor(field(), kinds).map((k) => h("option", { value: k }, k)));
    show();
  });
  kind.addEventListener("change", show);
  show();

  function read() {
    const f = field();
    if (!f) return null;
    const [key, log] = kind.value.split(" (");
    if (takesValues(kind.value)) {
      const values = f.kind === "array"
        ? choices.value.split(";").map((t) => readValues({ kind: f.items }, t)).filter((v) => v.length)
        : readValues(f, choices.value);
      return { [key]: values };
    }
    const range = [number(low), number(high)];
    return log ? { [key]: range, log: true } : { [key]: range };
  }
  return { path, read, inputs: [kind, low, high, choices],
    element: h("div", { class: "row" }, fieldBox({ path: `space${i}`, title: `Field ${i + 1}` }, path),
      kindBox, bounds, choiceBox) };
}

// The pruner: none, or a rule and its parameters (empty ones: the server's defaults), each as
// the schema describes it.
function prunerInputs(rules) {
  const name = h("select", { id: "pruner", "data-path": "pruner.name" },
    h("option", { value: "" }, "none"), Object.keys(rules).map((n) => h("option", { value: n }, n)));
  const params = Object.entries(rules).flatMap(([rule, fields]) => fields.map((f) => {
    const input = h("input", { id: `pruner-${f.path}`, "data-path": `pruner.${f.path}`,
      type: "number", min: f.min ?? 0, step: 1, placeholder: `default ${f.default}` });
    return { rule, path: f.path, input, box: fieldBox({ path: f.path, title: f.title }, input) };
  }));
  function show() {
    params.forEach((p) => { p.box.hidden = p.rule !== name.value; });
  }
  name.addEventListener("change", show);
  show();
  function read() {
    if (!name.value) return null;
    const pruner = { name: name.value };
    for (const p of params) {
      if (p.rule === name.value && number(p.input) !== null) pruner[p.path] = number(p.input);
    }
    return pruner;
  }
  return { read, elements: [fieldBox({ path: "pruner", title: "Stop bad trials early" }, name),
    ...params.map((p) => p.box)] };
}

// The search fieldset: `element`, `body(spec)` (null: no search, submit a job), `trials(body)`
// (how many it runs, when the form says) and `markInvalid(field)` for an error's field.
export function searchForm(fields, options, kinds, rules) {
  const byPath = Object.fromEntries(fields.map((f) => [f.path, f]));
  const kind = h("select", { id: "search-kind", "aria-label": "search kind" },
    h("option", { value: "grid" }, "a grid of values"),
    h("option", { value: "space" }, "a sampled space"));
  // Any scalar field can be a grid axis; a sampled field may also be a list (`model.channels`).
  const axes = [...Array(AXES).keys()].map((i) => ({
    path: pathSelect(`axis${i}`, `grid axis ${i + 1}`, fields.filter((f) => f.kind !== "array")),
    values: h("input", { id: `axis${i}-values`, placeholder: "e.g. 0.01, 0.1",
      "aria-label": `grid axis ${i + 1} values` }),
  }));
  const rows = [...Array(SPACE_ROWS).keys()].map((i) => spaceRow(i, fields, byPath, kinds));
  const pruner = prunerInputs(rules);
  const inputs = options.map((f) => {
    const field = { ...f, path: `search.${f.path}` };
    return [f, field, makeInput(field)];
  });
  const box = ([f, field, input]) => fieldBox(field, input);
  const spaceOnly = inputs.filter(([f]) => SPACE_ONLY.includes(f.path));
  const common = inputs.filter(([f]) => !SPACE_ONLY.includes(f.path));

  const gridPart = h("div", { class: "axis", id: "grid-axes" },
    h("p", { class: "muted" }, "Up to two axes and their values: one trial per combination."),
    axes.map((a, i) => h("div", { class: "row" },
      fieldBox({ path: `axis${i}`, title: `Axis ${i + 1}` }, a.path),
      fieldBox({ path: `axis${i}-values`, title: "Values" }, a.values))));
  const spacePart = h("div", { class: "axis", id: "space-rows" },
    h("p", { class: "muted" }, "Per field a distribution: loguniform and uniform between low and " +
      "high, int between them, or one of the listed choices (lists separated by “;”)."),
    rows.map((r) => r.element), h("div", { class: "row" }, spaceOnly.map(box)));
  // The part of the search kind chosen; a sampled field's row once the one above it is used.
  const show = () => {
    gridPart.hidden = kind.value !== "grid";
    spacePart.hidden = kind.value !== "space";
    rows.forEach((r, i) => { r.element.hidden = i > 0 && !rows[i - 1].path.value; });
  };

  const read = (list) => Object.fromEntries(list.map(([f, field, input]) => [f.path, readInput(field, input)]));
  function body(spec) {
    const extra = { ...read(common), pruner: pruner.read() ?? undefined };
    if (kind.value === "grid") {
      const grid = {};
      for (const a of axes) {
        const values = a.path.value ? readValues(byPath[a.path.value], a.values.value) : [];
        if (values.length) grid[a.path.value] = values;
      }
      return Object.keys(grid).length ? { base: spec, grid, ...extra } : null;
    }
    const space = Object.fromEntries(rows.filter((r) => r.path.value).map((r) => [r.path.value, r.read()]));
    return Object.keys(space).length ? { base: spec, space, ...read(spaceOnly), ...extra } : null;
  }
  const trials = (b) => (b.grid
    ? Object.values(b.grid).reduce((n, v) => n * v.length, 1) : b.num_trials ?? null);

  // "grid.batch_size" (its axis), "space.optimizer.lr" (its row), "pruner.min_epochs",
  // "num_trials": true when the field was one of this fieldset's.
  function markInvalid(field, form) {
    const axis = axes.find((a) => a.path.value && field.startsWith(`grid.${a.path.value}`));
    if (axis) return axis.values.classList.add("invalid") ?? true;
    const row = rows.find((r) => r.path.value && field.startsWith(`space.${r.path.value}`));
    if (row) return row.inputs.forEach((el) => el.classList.add("invalid")) ?? true;
    const path = field.startsWith("pruner") ? field : `search.${field}`;
    const own = form.querySelector(`[data-path="${CSS.escape(path)}"]`);
    if (own) return own.classList.add("invalid") ?? true;
    return false;
  }

  const element = h("fieldset", { id: "search", onchange: show }, h("legend", {}, "Search (optional)"),
    h("div", { class: "row" }, fieldBox({ path: "search-kind", title: "Search over" }, kind)),
    gridPart, spacePart, h("div", { class: "row" }, common.map(box)), h("div", { class: "row" }, pruner.elements));
  show();
  return { element, body, trials, markInvalid };
}
