// #/models/NAME: one model's versions (newest first, as the server lists them) and aliases, with
// a form to point an alias at a version (PUT .../aliases/ALIAS) and a button to remove one.
import * as api from "./api.js";
import { errorBox, h, pct, section, short, when } from "./dom.js";
import { leaving } from "./router.js";
import { modelPath } from "./view-models.js";

function versionRow(v) {
  return h("tr", { "data-version": v.version },
    h("td", { class: "num" }, `v${v.version}`),
    h("td", {}, h("a", { href: `#/jobs/${v.job_id}`, class: "mono" }, short(v.job_id))),
    h("td", { class: "wide" }, v.search_id
      ? h("a", { href: `#/searches/${v.search_id}`, class: "mono" }, short(v.search_id)) : "–"),
    h("td", {}, v.dataset),
    h("td", { class: "wide" }, v.arch),
    h("td", { class: "num wide", title: `${v.checkpoint} checkpoint, epoch ${v.epoch}` },
      `${v.checkpoint} @ ${v.epoch}`),
    h("td", { class: "num" }, pct(v.val_accuracy)),
    h("td", { class: "num" }, pct(v.test_accuracy)),
    h("td", { class: "version-aliases" },
      ...v.aliases.map((a) => h("span", { class: "badge alias", "data-alias": a }, a))),
    h("td", { class: "wide muted" }, when(v.created_at)));
}

export default async function modelPage(main, name) {
  const header = h("div", { class: "toolbar" }, h("h1", {}, "Model ", h("span", { class: "mono" }, name)),
    h("span", { class: "spacer" }), h("a", { href: "#/models", class: "button" }, "All models"));
  const signal = leaving();
  const summary = h("p", { class: "muted", id: "model-summary" });
  const versions = h("tbody");
  const aliasList = h("ul", { class: "plain alias-list", id: "aliases" });
  const message = h("div", { id: "alias-message" });
  const aliasInput = h("input", { id: "alias-name", placeholder: "alias", required: true,
    "aria-label": "alias", autocomplete: "off", spellcheck: false });
  const versionSelect = h("select", { id: "alias-version", "aria-label": "version" });
  const pointBtn = h("button", { type: "submit", class: "primary", id: "set-alias" }, "Point alias");
  let model;

  async function act(work) {
    message.replaceChildren();
    aliasInput.classList.remove("invalid");
    pointBtn.disabled = true;
    try {
      await work();
      await load();
    } catch (err) {
      if (err.status === 422) aliasInput.classList.add("invalid");
      message.replaceChildren(errorBox(err));
    } finally {
      pointBtn.disabled = false;
    }
  }

  const aliasPath = (alias) => `${modelPath(name)}/aliases/${encodeURIComponent(alias)}`;
  const setAlias = (alias, version) => act(() =>
    api.request("PUT", aliasPath(alias), { json: { version } }));
  const removeAlias = (alias) => act(() => api.request("DELETE", aliasPath(alias)));

  function draw() {
    versions.replaceChildren(...model.versions.map(versionRow));
    const entries = Object.entries(model.aliases).sort(([a], [b]) => a.localeCompare(b));
    aliasList.replaceChildren(...entries.map(([alias, v]) => h("li", { "data-alias": alias },
      h("span", { class: "badge alias" }, alias), ` → v${v} `,
      h("button", { class: "danger small", "data-remove": alias, type: "button",
        onclick: () => removeAlias(alias) }, "Remove"))));
    if (!entries.length) aliasList.append(h("li", { class: "muted" }, "No aliases yet."));
    const chosen = versionSelect.value;
    versionSelect.replaceChildren(...model.versions.map((v) =>
      h("option", { value: String(v.version) }, `v${v.version}`)));
    if (chosen && model.versions.some((v) => String(v.version) === chosen)) versionSelect.value = chosen;
    summary.textContent = `${model.version_count} version${model.version_count === 1 ? "" : "s"}` +
      `, latest ${model.latest_version === null ? "none" : `v${model.latest_version}`}` +
      `; created ${when(model.created_at)}.`;
  }

  async function load() {
    model = await api.get(modelPath(name), { signal });
    draw();
  }

  const form = h("form", { class: "inline-form", id: "alias-form", onsubmit: (e) => {
    e.preventDefault();
    setAlias(aliasInput.value.trim(), Number(versionSelect.value));
  } }, aliasInput, h("span", {}, "→"), versionSelect, pointBtn);

  try {
    await load();
  } catch (err) {
    if (!signal.aborted) main.append(header, errorBox(err));
    return;
  }
  main.append(header, summary,
    section("Versions", h("div", { class: "scroll" }, h("table", { class: "list", id: "versions" },
      h("thead", {}, h("tr", {}, h("th", { class: "num" }, "version"), h("th", {}, "job"),
        h("th", { class: "wide" }, "search"), h("th", {}, "data"), h("th", { class: "wide" }, "model"),
        h("th", { class: "num wide" }, "checkpoint"), h("th", { class: "num" }, "val"),
        h("th", { class: "num" }, "test"), h("th", {}, "aliases"), h("th", { class: "wide" }, "created"))),
      versions))),
    section("Aliases", aliasList,
      h("p", { class: "muted" }, "Point an alias at a version; predictions by name follow it " +
        "from the next request on."),
      form, message));
}
