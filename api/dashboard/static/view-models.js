// #/models: the caller's registered models, newest first, paged as the server pages them; and
// the "Register as model" form a succeeded job's page shows (POST /v1/models).
import * as api from "./api.js";
import { errorBox, h, when } from "./dom.js";

// The model page's address (names are [a-z0-9._-], but the route decodes what it is given).
export const modelHref = (name) => `#/models/${encodeURIComponent(name)}`;
export const modelPath = (name) => `/v1/models/${encodeURIComponent(name)}`;

// "stable → v3 · candidate → v4": a model's aliases, as the server lists them.
export const aliasText = (aliases) =>
  Object.entries(aliases || {}).map(([alias, v]) => `${alias} → v${v}`).join(" · ") || "–";

function row(m) {
  return h("tr", { "data-model": m.name },
    h("td", {}, h("a", { href: modelHref(m.name), class: "mono" }, m.name)),
    h("td", { class: "num latest" }, m.latest_version === null ? "–" : `v${m.latest_version}`),
    h("td", { class: "num" }, String(m.version_count)),
    h("td", { class: "aliases" }, aliasText(m.aliases)),
    h("td", { class: "wide muted" }, when(m.created_at)));
}

export default function modelsPage(main) {
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  let models = [];
  let next = null;
  const more = h("button", { hidden: true, id: "more-models", onclick: () => load(true) }, "Load more");

  async function load(append = false) {
    const p = new URLSearchParams({ limit: "50" });
    if (append && next) p.set("cursor", next);
    try {
      const page = await api.get(`/v1/models?${p}`);
      models = append ? models.concat(page.items) : page.items;
      next = page.next;
      more.hidden = !next;
      body.replaceChildren(...models.map(row));
      note.textContent = models.length ? ""
        : "No models yet: open a succeeded job and use “Register as model”.";
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  }

  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Models")),
    h("div", { class: "scroll" }, h("table", { class: "list", id: "models" },
      h("thead", {}, h("tr", {}, h("th", {}, "model"), h("th", { class: "num" }, "latest"),
        h("th", { class: "num" }, "versions"), h("th", {}, "aliases"),
        h("th", { class: "wide" }, "created"))), body)),
    note, more);
  load();
}

// A succeeded job's "Register as model" form: a name, then POST /v1/models copies the job's best
// checkpoint as that model's next version; the answer links to the model page.
export function registerForm(job) {
  const name = h("input", { id: "register-name", required: true, placeholder: "model name, e.g. fashion",
    "aria-label": "model name", autocomplete: "off", spellcheck: false });
  const submit = h("button", { type: "submit", class: "primary", id: "register" }, "Register");
  const message = h("div", { id: "register-message" });
  const form = h("form", { class: "inline-form", id: "register-form", onsubmit: async (e) => {
    e.preventDefault();
    name.classList.remove("invalid");
    submit.disabled = true;
    try {
      const v = await api.post("/v1/models", { name: name.value.trim(), job_id: job.id });
      message.replaceChildren(h("p", { class: "ok" }, `Registered as ${v.name} version ${v.version}: `,
        h("a", { href: modelHref(v.name), id: "registered-model" }, `open ${v.name}`)));
    } catch (err) {
      if (err.field === "name") name.classList.add("invalid");
      message.replaceChildren(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  } }, name, submit);
  return h("section", { class: "card", id: "register-model" }, h("h2", {}, "Register as model"),
    h("p", { class: "muted" }, "Copies this job's best checkpoint as the next version of a named " +
      "model (created on first use). Lower-case letters, digits, “.”, “_” and “-”."),
    form, message);
}
