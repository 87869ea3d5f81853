// What the server says a spec may hold: fields, choices, defaults and bounds from its OpenAPI
// document, and the catalog routes' lists. Read once per page load.
import * as api from "./api.js";

export const OPENAPI_PATH = "/openapi.json";
export const DATASETS_PATH = "/v1/datasets";
export const ARCHITECTURES_PATH = "/v1/architectures"; // the registered `model.arch` names

let openapi = null;
export function openapiDocument() {
  openapi ??= api.get(OPENAPI_PATH).catch((err) => {
    openapi = null; // try again next time
    throw err;
  });
  return openapi;
}

function resolve(doc, node) {
  while (node && node.$ref) node = doc.components.schemas[node.$ref.split("/").pop()];
  return node || {};
}

// The kind of value a leaf holds: "integer", "number", "boolean", "string", "array" or "object"
// (a typed object such as a search's pruner: not a leaf a form fills in as text).
function kind(node) {
  const members = (node.anyOf || [node]).filter((n) => n.type !== "null");
  if (members.some((n) => n.$ref || n.oneOf)) return "object";
  const types = members.map((n) => n.type).filter(Boolean);
  if (types.includes("number")) return "number";
  return types[0] || "string";
}

// The object an optional field holds (`anyOf: [{$ref: ...}, {type: "null"}]`, as `init`), when
// it is one object with properties of its own; else null.
function optionalObject(doc, node) {
  const members = (node.anyOf || []).filter((n) => n.type !== "null");
  if (members.length !== 1 || !members[0].$ref) return null;
  const target = resolve(doc, members[0]);
  return target.properties ? target : null;
}

// Every leaf under `node`. An object, or an optional object, is not a leaf: its properties are
// (`model.arch`, `init.model`); left empty, the optional object is left out of the spec.
function leaves(doc, node, prefix = "") {
  return Object.entries(resolve(doc, node).properties || {}).flatMap(([name, child]) => {
    const path = prefix + name;
    const leaf = resolve(doc, child);
    if (leaf.properties) return leaves(doc, leaf, `${path}.`);
    const inner = optionalObject(doc, leaf);
    if (inner) return leaves(doc, inner, `${path}.`);
    const bounds = (leaf.anyOf || [leaf]).find((n) => n.type && n.type !== "null") || {};
    return [{
      path,
      title: leaf.title || name,
      description: (child.description || leaf.description || "").replaceAll("`", "") || null,
      kind: kind(leaf),
      items: leaf.items ? kind(leaf.items) : null,
      // A single allowed value (`"const": "balanced"`) is a choice of one (or unset).
      enum: leaf.enum || bounds.enum || (bounds.const !== undefined ? [bounds.const] : null),
      default: leaf.default,
      nullable: Boolean(leaf.anyOf && leaf.anyOf.some((n) => n.type === "null")),
      min: bounds.minimum ?? bounds.exclusiveMinimum,
      max: bounds.maximum ?? bounds.exclusiveMaximum,
    }];
  });
}

// Every leaf of the train spec, in the schema's order: {path, title, kind, enum, default, ...}.
export async function specFields() {
  const doc = await openapiDocument();
  return leaves(doc, doc.components.schemas.TrainSpec);
}

// A search's own scalar options (`sampler`, `num_trials`, `seed`, `max_concurrent_trials`,
// `metric`, `mode`...), as fields: everything but the spec, the grid, the space and the pruner.
export async function searchFields() {
  const doc = await openapiDocument();
  return leaves(doc, doc.components.schemas.SearchCreate)
    .filter((f) => !f.path.includes(".") && f.kind !== "object" && f.kind !== "array");
}

const nonNull = (doc, node) => resolve(doc, (node.anyOf || [node]).find((n) => n.type !== "null"));

// A sampled space's distributions, from the schema of `space`: [{key, items, log}], where `key`
// is the body's key (`loguniform`, `int`, `choice`...), `items` the kind of its bounds ("number",
// "integer"; null: any values, as a choice's) and `log` whether it takes a `log` option.
export async function distributions() {
  const doc = await openapiDocument();
  const space = nonNull(doc, doc.components.schemas.SearchCreate.properties.space);
  return space.additionalProperties.anyOf.map((ref) => {
    const model = resolve(doc, ref);
    const key = model.required[0];
    const bounds = model.properties[key].prefixItems;
    return { key, items: bounds ? bounds[0].type : null, log: "log" in model.properties };
  });
}

// The pruners, from the schema of `pruner`: {name: [{path, title, kind, default, min}]}.
export async function pruners() {
  const doc = await openapiDocument();
  const pruner = doc.components.schemas.SearchCreate.properties.pruner.anyOf.find((n) => n.oneOf);
  return Object.fromEntries(Object.entries(pruner.discriminator.mapping).map(([name, ref]) => [
    name, leaves(doc, { $ref: ref }).filter((f) => f.path !== pruner.discriminator.propertyName),
  ]));
}

// Every status a job (or search) can have, in the server's order.
export async function statuses() {
  return (await openapiDocument()).components.schemas.JobStatus.enum;
}

export const datasets = () => api.get(DATASETS_PATH);
export const architectures = async () => (await api.get(ARCHITECTURES_PATH)).map((m) => m.name);
