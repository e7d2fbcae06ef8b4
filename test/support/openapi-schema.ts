/**
 * Validators for what the emulator puts on the wire, compiled from the official OpenAI OpenAPI
 * spec as extracted into `test/fixtures/openapi-responses.schema.json` by
 * `scripts/build-openapi-fixture.ts` (JSON Schema 2020-12; see that script for the conversion).
 *
 * Every function returns `[]` for a valid value, otherwise one readable line per problem, each
 * starting with the JSON pointer of the offending value (`/response/output/0/status: ...`).
 *
 * ## Strictness
 *
 * OpenAPI objects are open (extra properties allowed), which would let a misspelled field in the
 * emulator (`sequence_numbr`) pass. So every object schema that names its properties is closed
 * here, when the validators are compiled (the fixture itself stays a faithful copy of the spec):
 *
 * - A schema with a non-empty `properties` map, or an `allOf` composition, gets
 *   `unevaluatedProperties: false`, unless it already says `additionalProperties`,
 *   `unevaluatedProperties` or `patternProperties` (then the spec decided, e.g. `Metadata`).
 *   `unevaluatedProperties` rather than `additionalProperties` because it sees through `allOf` and
 *   `$ref`: `Response` is `allOf [ModelResponseProperties, ResponseProperties, {...}]`, and only
 *   the composite knows all its fields.
 * - The parts of an `allOf` are mixins and must stay open, or each would reject the fields of the
 *   others. Inline parts are left open; a part given as `$ref: X` is pointed at an open copy
 *   `X.mixin`, so that `X` used on its own elsewhere is still closed.
 * - `properties: {}` (`EmptyModelParam`, used for free-form JSON such as function `parameters`)
 *   stays open.
 * This closes the events, the Response, output items, content parts, usage, errors, and so on,
 * at every depth.
 *
 * Documented extensions that the strict schemas accept although the spec does not list them:
 * - `obfuscation: string` on every `*.delta` stream event: the API adds it unless
 *   `include_obfuscation=false` (protocol.md §4.1; the spec mentions it only in parameter text).
 * - `output_text: string | null` on Response: the SDK-only convenience property (the spec does
 *   list it; it is re-declared here so that it stays accepted whatever the spec does).
 * - Response fields where the spec's schema contradicts both its own examples (`Response`,
 *   `response.created`, the cancel reply, ...) and the real captures of protocol.md §3:
 *   `store: boolean | null` is sent but not declared; `usage` is `null` until the response ends
 *   but `ResponseUsage` is not nullable; `user` is sent as `null` but typed as a plain string.
 * - the `{"type":"keepalive","sequence_number":N}` stream event that real servers send on long
 *   requests (openai-node#1964), accepted by `validateStreamEvent` only.
 *
 * ## Readable errors
 *
 * With `anyOf`/`oneOf`, ajv reports the failures of every branch, which buries the one that
 * matters under dozens of "must have required property 'call_id'" lines. Two rewrites that do not
 * change what is valid make ajv report only the branch that applies:
 * - a union whose branches are all objects with a required, single-valued `type` tag, distinct
 *   across branches (output items, content parts, annotations, tools, ...), becomes
 *   "`type` is one of the tags" plus `if {type: tag} then branch` per tag;
 * - `anyOf [X, {type: null}]` becomes `if {type: null} else X`.
 */
import { readFileSync } from "node:fs";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import {
  SCHEMA_ARRAY_KEYWORDS,
  SCHEMA_KEYWORDS,
  SCHEMA_MAP_KEYWORDS,
} from "../../scripts/json-schema-keywords.js";

type SchemaObject = { [key: string]: unknown };

interface Fixture {
  "x-source": { sha256: string; spec: string };
  "x-roots": {
    response: string;
    streamEvent: string;
    errorBody: string;
    error: string;
    deletedResponse: string;
  };
  "x-stream-event-count": number;
  "x-stream-events": Record<string, string>;
  $defs: Record<string, SchemaObject>;
}

const FIXTURE_URL = new URL("../fixtures/openapi-responses.schema.json", import.meta.url);
const BASE_ID = "https://baton.invalid/openapi-responses.schema.json";
/** Names of the definitions added here (no `~` or `/`: they end up in JSON pointers). */
const KEEPALIVE_DEF = "baton.KeepaliveEvent";
const MIXIN_SUFFIX = ".mixin";

/** Keywords that only annotate; a union node with nothing else besides is a pure union. */
const ANNOTATIONS = new Set(["title", "default", "deprecated", "readOnly", "writeOnly"]);

function isObject(value: unknown): value is SchemaObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every schema object below `schema` (itself included), depth first. */
function subschemas(schema: unknown, visit: (node: SchemaObject) => void): void {
  if (!isObject(schema)) return;
  visit(schema);
  for (const key of SCHEMA_KEYWORDS) subschemas(schema[key], visit);
  for (const key of SCHEMA_ARRAY_KEYWORDS) {
    const list = schema[key];
    if (Array.isArray(list)) for (const item of list) subschemas(item, visit);
  }
  for (const key of SCHEMA_MAP_KEYWORDS) {
    const map = schema[key];
    if (isObject(map)) for (const item of Object.values(map)) subschemas(item, visit);
  }
}

function refTarget(node: SchemaObject): string | undefined {
  const ref = node.$ref;
  return typeof ref === "string" && ref.startsWith("#/$defs/") ? ref.slice(8) : undefined;
}

/** Adds the documented extensions (see the module comment) to a copy of the spec's `$defs`. */
function addExtensions(defs: Record<string, SchemaObject>, fixture: Fixture): void {
  for (const [tag, name] of Object.entries(fixture["x-stream-events"])) {
    if (!tag.endsWith(".delta")) continue;
    const properties = defs[name]?.properties;
    if (!isObject(properties)) throw new Error(`stream event ${name} has no properties`);
    properties.obfuscation ??= { type: "string" };
  }
  const response = defs[fixture["x-roots"].response];
  if (!response || !Array.isArray(response.allOf)) throw new Error("Response is not an allOf");
  // Nullable in place: an extra allOf part could add fields but never loosen an existing one.
  for (const field of ["usage", "user"]) {
    let found = false;
    for (const part of response.allOf as SchemaObject[]) {
      const target = refTarget(part);
      const properties = (target === undefined ? part : defs[target])?.properties;
      if (!isObject(properties) || properties[field] === undefined) continue;
      properties[field] = { anyOf: [properties[field], { type: "null" }] };
      found = true;
    }
    if (!found) throw new Error(`Response no longer declares ${field}; revisit the extensions`);
  }
  response.allOf.push({
    type: "object",
    properties: {
      output_text: { anyOf: [{ type: "string" }, { type: "null" }] },
      store: { anyOf: [{ type: "boolean" }, { type: "null" }] },
    },
  });
  defs[KEEPALIVE_DEF] = {
    type: "object",
    properties: {
      type: { type: "string", enum: ["keepalive"] },
      sequence_number: { type: "integer" },
    },
    required: ["type", "sequence_number"],
  };
}

/** Closes the object schemas (see "Strictness" in the module comment). */
function closeObjects(defs: Record<string, SchemaObject>): void {
  const mixins = new Set<SchemaObject>();
  const mixinCopies = new Map<string, SchemaObject>();
  const markMixins = (node: SchemaObject) => {
    if (!Array.isArray(node.allOf)) return;
    for (const part of node.allOf) {
      if (!isObject(part)) continue;
      const target = refTarget(part);
      if (target === undefined) {
        mixins.add(part);
        continue;
      }
      const original = defs[target];
      if (!original) throw new Error(`unresolved $ref ${String(part.$ref)}`);
      if (original.anyOf !== undefined || original.oneOf !== undefined) {
        throw new Error(`allOf part ${target} is a union; closing it is not supported`);
      }
      let copy = mixinCopies.get(target);
      if (!copy) {
        copy = structuredClone(original);
        mixinCopies.set(target, copy);
        mixins.add(copy);
      }
      part.$ref = `#/$defs/${target}${MIXIN_SUFFIX}`;
    }
  };
  for (const schema of Object.values(defs)) subschemas(schema, markMixins);
  // A copied mixin may itself be a composition: its own parts are mixins as well.
  for (const copy of [...mixinCopies.values()]) subschemas(copy, markMixins);
  for (const [name, copy] of mixinCopies) {
    if (defs[`${name}${MIXIN_SUFFIX}`]) throw new Error(`${name}${MIXIN_SUFFIX} already exists`);
    defs[`${name}${MIXIN_SUFFIX}`] = copy;
  }

  for (const schema of Object.values(defs)) {
    subschemas(schema, (node) => {
      if (mixins.has(node)) return;
      const named = isObject(node.properties) && Object.keys(node.properties).length > 0;
      if (!named && !Array.isArray(node.allOf)) return;
      if (
        node.additionalProperties !== undefined ||
        node.unevaluatedProperties !== undefined ||
        node.patternProperties !== undefined
      ) {
        return;
      }
      node.unevaluatedProperties = false;
    });
  }
}

/**
 * The single `type` tag of a branch that is an object schema requiring it, if it is one. Looks
 * through `$ref` and into the parts of an `allOf` (`FunctionToolCallOutputResource` is
 * `allOf [FunctionToolCallOutput, {id, status}]`, the tag being in the first part).
 */
function branchTag(
  branch: unknown,
  defs: Record<string, SchemaObject>,
  depth = 0,
): string | undefined {
  if (!isObject(branch) || depth > 8) return undefined;
  const target = refTarget(branch);
  if (target !== undefined) return branchTag(defs[target], defs, depth + 1);
  if (Array.isArray(branch.allOf)) {
    const tags = branch.allOf.map((part) => branchTag(part, defs, depth + 1));
    const found = tags.filter((tag) => tag !== undefined);
    return found.length === 1 ? found[0] : undefined;
  }
  if (!isObject(branch.properties)) return undefined;
  if (!Array.isArray(branch.required) || !branch.required.includes("type")) return undefined;
  const tagSchema = branch.properties.type;
  if (!isObject(tagSchema)) return undefined;
  if (typeof tagSchema.const === "string") return tagSchema.const;
  const values = tagSchema.enum;
  return Array.isArray(values) && values.length === 1 && typeof values[0] === "string"
    ? values[0]
    : undefined;
}

/** The error-focusing rewrites of unions (see "Readable errors" in the module comment). */
function focusUnions(defs: Record<string, SchemaObject>): void {
  const unions: SchemaObject[] = [];
  for (const schema of Object.values(defs)) {
    subschemas(schema, (node) => {
      if (Array.isArray(node.anyOf) || Array.isArray(node.oneOf)) unions.push(node);
    });
  }
  for (const node of unions) {
    const keyword = Array.isArray(node.anyOf) ? "anyOf" : "oneOf";
    const branches = node[keyword] as unknown[];
    const others = Object.keys(node).filter((key) => key !== keyword && !ANNOTATIONS.has(key));
    if (others.length > 0) continue;

    const nullIndex = branches.findIndex(
      (b) => isObject(b) && Object.keys(b).length === 1 && b.type === "null",
    );
    if (keyword === "anyOf" && branches.length === 2 && nullIndex !== -1) {
      delete node.anyOf;
      node.if = { type: "null" };
      node.else = branches[1 - nullIndex];
      continue;
    }

    const tags = branches.map((branch) => branchTag(branch, defs));
    if (tags.some((tag) => tag === undefined) || new Set(tags).size !== tags.length) continue;
    delete node[keyword];
    node.type = "object";
    node.required = ["type"];
    node.properties = { type: { enum: tags } };
    node.allOf = branches.map((branch, i) => ({
      if: { properties: { type: { const: tags[i] } } },
      // biome-ignore lint/suspicious/noThenProperty: the JSON Schema keyword, not a thenable.
      then: branch,
    }));
  }
}

interface Compiled {
  fixture: Fixture;
  ajv: Ajv2020;
  validators: Map<string, ValidateFunction>;
}

let compiled: Compiled | undefined;

function load(): Compiled {
  if (compiled) return compiled;
  const fixture = JSON.parse(readFileSync(FIXTURE_URL, "utf8")) as Fixture;
  const defs = structuredClone(fixture.$defs);
  addExtensions(defs, fixture);
  closeObjects(defs);
  focusUnions(defs);
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true,
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    formats: {
      unixtime: { type: "number", validate: (n: number) => Number.isFinite(n) && n >= 0 },
      float: { type: "number", validate: (n: number) => Number.isFinite(n) },
      uri: { type: "string", validate: (s: string) => URL.canParse(s) },
    },
  });
  ajv.addSchema({ $id: BASE_ID, $defs: defs });
  compiled = { fixture, ajv, validators: new Map() };
  return compiled;
}

function validatorFor(name: string): ValidateFunction {
  const { ajv, validators } = load();
  let validate = validators.get(name);
  if (!validate) {
    validate = ajv.compile({ $ref: `${BASE_ID}#/$defs/${name}` });
    validators.set(name, validate);
  }
  return validate;
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describe(error: ErrorObject): string {
  const at = error.instancePath || "(root)";
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return `${at}: missing required property "${String(params.missingProperty)}"`;
    case "unevaluatedProperties":
    case "additionalProperties": {
      const name = String(params.unevaluatedProperty ?? params.additionalProperty);
      const pointer = `${error.instancePath}/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      return `${pointer}: unexpected property "${name}" (not in the spec schema)`;
    }
    case "enum":
      return `${at}: ${show(error.data)} is not one of ${(params.allowedValues as unknown[]).map(show).join(", ")}`;
    case "const":
      return `${at}: ${show(error.data)} must be ${show(params.allowedValue)}`;
    case "type":
      return `${at}: must be ${String(params.type)}, got ${show(error.data)}`;
    default:
      return `${at}: ${error.message ?? error.keyword}`;
  }
}

function run(name: string, value: unknown): string[] {
  const validate = validatorFor(name);
  if (validate(value)) return [];
  const errors = validate.errors ?? [];
  // `if` failures only repeat the errors of their `then`/`else`; anyOf/oneOf summaries are kept
  // only when nothing more precise was reported.
  const precise = errors.filter(
    (e) => e.keyword !== "if" && e.keyword !== "anyOf" && e.keyword !== "oneOf",
  );
  const lines = (precise.length > 0 ? precise : errors).map(describe);
  return [...new Set(lines)];
}

/** Validates a Response object (the JSON body of create/retrieve/cancel, or `event.response`). */
export function validateResponse(body: unknown): string[] {
  return run(load().fixture["x-roots"].response, body);
}

/**
 * Validates one stream event (the parsed `data:` of an SSE frame) against the member of the
 * spec's `ResponseStreamEvent` union that its `type` names; `keepalive` is accepted as well.
 */
export function validateStreamEvent(event: unknown): string[] {
  const { fixture } = load();
  if (!isObject(event)) return [`(root): a stream event must be an object, got ${show(event)}`];
  const { type } = event;
  if (typeof type !== "string") {
    return [`/type: a stream event needs a string "type", got ${show(type)}`];
  }
  const name = type === "keepalive" ? KEEPALIVE_DEF : fixture["x-stream-events"][type];
  if (name === undefined) {
    return [
      `/type: unknown stream event type ${show(type)}: not one of the ${fixture["x-stream-event-count"]} ` +
        "members of the spec's ResponseStreamEvent union (nor the keepalive extension)",
    ];
  }
  return run(name, event);
}

/** Validates an error reply body: `{"error":{"message","type","param","code"}}`. */
export function validateErrorBody(body: unknown): string[] {
  return run(load().fixture["x-roots"].errorBody, body);
}

/** Validates the body of `DELETE /v1/responses/{id}` (`{"id","object":"response","deleted"}`). */
export function validateDeletedResponse(body: unknown): string[] {
  return run(load().fixture["x-roots"].deletedResponse, body);
}

/** Every `type` of the spec's `ResponseStreamEvent` union, sorted (keepalive not included). */
export function specStreamEventTypes(): string[] {
  return Object.keys(load().fixture["x-stream-events"]).sort();
}
