/**
 * Builds `test/fixtures/openapi-responses.schema.json`: the part of the official OpenAI OpenAPI
 * spec that the emulator's wire format must satisfy, converted to plain JSON Schema 2020-12.
 *
 *   npx tsx scripts/build-openapi-fixture.ts [--spec <path>] [--check]
 *
 * The spec (`../shared/openai-openapi/openapi.yaml` relative to the repo root by default) is not
 * part of a fresh clone, so the extracted schemas are committed. `--check` rebuilds in memory and
 * exits 1 if the committed fixture differs, 2 if the spec cannot be read or converted.
 *
 * Roots: `Response` (200 of `GET /responses/{response_id}`), the `ResponseStreamEvent` union
 * (`text/event-stream` 200 of `POST /responses`), the error envelope `ErrorResponse` (and `Error`),
 * and the reply of `DELETE /responses/{response_id}`. The spec gives that 200 no schema at all,
 * only an `x-oaiMeta` example, so a `DeletedResponse` schema is written here and checked against
 * that example (see `deletedResponseSchema`). Every schema reachable through `$ref` is kept.
 *
 * Conversion from OpenAPI 3.1 to JSON Schema 2020-12:
 * - `$ref: #/components/schemas/X` becomes `$ref: #/$defs/X`;
 * - `$recursiveAnchor`/`$recursiveRef: "#"` (draft 2019-09, used by `CompoundFilter`) become a
 *   plain `$ref` to the enclosing definition;
 * - `nullable: true` (OpenAPI 3.0) becomes a `"null"` type (or `anyOf [..., {type: null}]`);
 * - `discriminator`, `example`, `examples`, `externalDocs`, `xml`, `description` and every `x-*`
 *   key are dropped (documentation only; the unions stay `anyOf`/`oneOf` with `const`-like tags);
 * - every other keyword must be a known JSON Schema keyword, otherwise the build fails, so that a
 *   new OpenAPI-ism in a future spec is noticed instead of silently ignored by ajv.
 * Keys are sorted recursively (arrays keep their order), so the output is deterministic.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import {
  SCHEMA_ARRAY_KEYWORDS,
  SCHEMA_KEYWORDS,
  SCHEMA_MAP_KEYWORDS,
} from "./json-schema-keywords.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEFAULT_SPEC = resolve(REPO_ROOT, "../shared/openai-openapi/openapi.yaml");
const FIXTURE = resolve(REPO_ROOT, "test/fixtures/openapi-responses.schema.json");
const SCHEMA_PREFIX = "#/components/schemas/";

/** Keywords copied verbatim. */
const VALUE_KEYWORDS = new Set([
  "type",
  "enum",
  "const",
  "required",
  "default",
  "title",
  "format",
  "deprecated",
  "readOnly",
  "writeOnly",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "dependentRequired",
  "contentEncoding",
  "contentMediaType",
]);
/** OpenAPI or documentation keys that carry no validation. */
const DROPPED_KEYWORDS = new Set([
  "description",
  "discriminator",
  "example",
  "examples",
  "externalDocs",
  "xml",
  "$recursiveAnchor",
]);

interface FixtureHeader {
  generator: string;
  spec: string;
  sha256: string;
  openapi: string;
  infoVersion: string;
}

interface Options {
  spec: string;
  check: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { spec: DEFAULT_SPEC, check: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--check") options.check = true;
    else if (arg === "--spec") {
      const value = argv[++i];
      if (!value) throw new UsageError("--spec needs a path");
      options.spec = resolve(process.cwd(), value);
    } else if (arg?.startsWith("--spec=")) options.spec = resolve(process.cwd(), arg.slice(7));
    else throw new UsageError(`unknown argument ${arg}`);
  }
  return options;
}

class UsageError extends Error {}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function refName(ref: string, where: string): string {
  if (!ref.startsWith(SCHEMA_PREFIX)) throw new Error(`${where}: unsupported $ref ${ref}`);
  return ref.slice(SCHEMA_PREFIX.length);
}

/** Converts one OpenAPI schema to JSON Schema 2020-12; `self` names the enclosing definition. */
function convertSchema(schema: Json, where: string, self: string, refs: Set<string>): Json {
  if (typeof schema === "boolean") return schema;
  if (!isObject(schema)) throw new Error(`${where}: a schema must be an object or a boolean`);
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    const at = `${where}/${key}`;
    if (key.startsWith("x-") || DROPPED_KEYWORDS.has(key)) continue;
    if (key === "$ref") {
      const name = refName(String(value), at);
      refs.add(name);
      out.$ref = `#/$defs/${name}`;
    } else if (key === "$recursiveRef") {
      if (value !== "#") throw new Error(`${at}: only $recursiveRef "#" is supported`);
      if (!recursiveAnchors.has(self))
        throw new Error(`${at}: $recursiveRef without $recursiveAnchor`);
      out.$ref = `#/$defs/${self}`;
    } else if (key === "nullable") {
      // Handled below, once the rest of the schema is converted.
    } else if (SCHEMA_KEYWORDS.has(key)) {
      out[key] = convertSchema(value, at, self, refs);
    } else if (SCHEMA_ARRAY_KEYWORDS.has(key)) {
      if (!Array.isArray(value)) throw new Error(`${at}: expected an array of schemas`);
      out[key] = value.map((item, i) => convertSchema(item, `${at}/${i}`, self, refs));
    } else if (SCHEMA_MAP_KEYWORDS.has(key)) {
      if (!isObject(value)) throw new Error(`${at}: expected a map of schemas`);
      const map: JsonObject = {};
      for (const [name, sub] of Object.entries(value)) {
        map[name] = convertSchema(sub, `${at}/${name}`, self, refs);
      }
      out[key] = map;
    } else if (VALUE_KEYWORDS.has(key)) {
      out[key] = value;
    } else {
      throw new Error(
        `${at}: unknown keyword ${JSON.stringify(key)}; teach the converter about it`,
      );
    }
  }
  if (schema.nullable === true) return makeNullable(out);
  return out;
}

/** Definitions marked `$recursiveAnchor: true`; their `$recursiveRef: "#"` points at themselves. */
let recursiveAnchors = new Set<string>();

/** OpenAPI 3.0 `nullable: true`: also accept null. */
function makeNullable(schema: JsonObject): JsonObject {
  const { type } = schema;
  if (typeof type === "string" && schema.$ref === undefined) {
    const out: JsonObject = { ...schema, type: [type, "null"] };
    if (Array.isArray(schema.enum) && !schema.enum.includes(null))
      out.enum = [...schema.enum, null];
    return out;
  }
  return { anyOf: [schema, { type: "null" }] };
}

/** The single `type` tag of a stream event schema (`enum: [x]` or `const: x`). */
function eventTag(schema: Json | undefined, name: string): string {
  if (!isObject(schema) || !isObject(schema.properties)) {
    throw new Error(`ResponseStreamEvent member ${name} has no properties`);
  }
  const typeSchema = schema.properties.type;
  if (isObject(typeSchema)) {
    if (typeof typeSchema.const === "string") return typeSchema.const;
    if (Array.isArray(typeSchema.enum) && typeSchema.enum.length === 1) {
      const [tag] = typeSchema.enum;
      if (typeof tag === "string") return tag;
    }
  }
  throw new Error(`ResponseStreamEvent member ${name} has no single-valued "type"`);
}

/**
 * `DELETE /responses/{response_id}` answers 200 with no content schema in the spec; only the
 * `x-oaiMeta` example shows the body (`{"id", "object": "response", "deleted": true}`). This is
 * that body written in the style of the spec's other deletion replies (`ChatCompletionDeleted`).
 * Note that `object` is `"response"`, not `"response.deleted"`, exactly as the example has it.
 */
function deletedResponseSchema(): JsonObject {
  return {
    type: "object",
    title: "Deleted response (synthesized from the x-oaiMeta example of deleteResponse)",
    properties: {
      id: { type: "string" },
      object: { type: "string", enum: ["response"] },
      deleted: { type: "boolean" },
    },
    required: ["id", "object", "deleted"],
  };
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key] as Json);
  return out;
}

function get(root: Json | undefined, path: string[]): Json | undefined {
  let node: Json | undefined = root;
  for (const key of path) {
    if (!isObject(node)) return undefined;
    node = node[key];
  }
  return node;
}

function buildFixture(spec: Buffer, specLabel: string): string {
  const sha256 = createHash("sha256").update(spec).digest("hex");
  const doc = parse(spec.toString("utf8")) as Json;
  const components = get(doc, ["components", "schemas"]);
  if (!isObject(components)) throw new Error("spec has no components.schemas");
  recursiveAnchors = new Set(
    Object.entries(components)
      .filter(([, s]) => isObject(s) && s.$recursiveAnchor === true)
      .map(([name]) => name),
  );

  // The roots, located through the paths where possible so that a renamed schema is noticed.
  const responsesPath = get(doc, ["paths", "/responses/{response_id}"]);
  const jsonRef = (op: string, media: string, root: Json | undefined) =>
    get(root, [op, "responses", "200", "content", media, "schema", "$ref"]);
  const responseRef = jsonRef("get", "application/json", responsesPath);
  const streamRef = jsonRef("post", "text/event-stream", get(doc, ["paths", "/responses"]));
  if (typeof responseRef !== "string" || typeof streamRef !== "string") {
    throw new Error("cannot find the Response / ResponseStreamEvent schemas under /responses");
  }
  const responseName = refName(responseRef, "GET /responses/{response_id}");
  const streamName = refName(streamRef, "POST /responses");

  const deleteOp = get(responsesPath, ["delete"]);
  const deleteRef = jsonRef("delete", "application/json", responsesPath);
  let deletedName: string;
  const extraDefs: JsonObject = {};
  if (typeof deleteRef === "string") {
    deletedName = refName(deleteRef, "DELETE /responses/{response_id}");
  } else {
    // The spec documents no 200 body: synthesize one and hold it against the spec's example.
    deletedName = "DeletedResponse";
    if (components[deletedName] !== undefined) throw new Error("DeletedResponse already exists");
    extraDefs[deletedName] = deletedResponseSchema();
    const exampleText = get(deleteOp, ["x-oaiMeta", "examples", "response"]);
    if (typeof exampleText !== "string") throw new Error("deleteResponse has no example reply");
    const ajv = new Ajv2020({ strict: true });
    const validate = ajv.compile(extraDefs[deletedName] as JsonObject);
    if (!validate(JSON.parse(exampleText))) {
      throw new Error(
        `DeletedResponse does not accept the spec example: ${ajv.errorsText(validate.errors)}`,
      );
    }
  }

  const roots = [responseName, streamName, "ErrorResponse", "Error"];
  const defs: JsonObject = {};
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (defs[name] !== undefined) continue;
    const source = components[name];
    if (source === undefined) throw new Error(`missing schema ${name}`);
    const refs = new Set<string>();
    defs[name] = convertSchema(source, `#/components/schemas/${name}`, name, refs);
    for (const ref of refs) if (defs[ref] === undefined) queue.push(ref);
  }
  Object.assign(defs, extraDefs);

  // The stream event union: each member's `type` tag, unique.
  const union = defs[streamName];
  const members = isObject(union) ? (union.anyOf ?? union.oneOf) : undefined;
  if (!Array.isArray(members)) throw new Error(`${streamName} is not an anyOf/oneOf union`);
  const streamEvents: JsonObject = {};
  for (const member of members) {
    const ref = isObject(member) ? member.$ref : undefined;
    if (typeof ref !== "string") throw new Error(`${streamName} has an inline member`);
    const name = ref.slice("#/$defs/".length);
    const tag = eventTag(defs[name], name);
    if (streamEvents[tag] !== undefined) throw new Error(`duplicate stream event type ${tag}`);
    streamEvents[tag] = name;
  }

  // The output must at least compile (unknown keywords, broken refs, bad regexes ...).
  const ajv = new Ajv2020({
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    formats: { uri: true, unixtime: true, float: true },
  });
  ajv.addSchema({ $id: "https://baton.invalid/check.json", $defs: defs });
  for (const root of [...roots, deletedName]) {
    ajv.compile({ $ref: `https://baton.invalid/check.json#/$defs/${root}` });
  }

  const info = get(doc, ["info", "version"]);
  const header: FixtureHeader = {
    generator: "scripts/build-openapi-fixture.ts (npm run fixture:build); do not edit by hand",
    spec: specLabel,
    sha256,
    openapi: String(get(doc, ["openapi"])),
    infoVersion: String(info),
  };
  const fixture: JsonObject = {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    "x-source": header as unknown as JsonObject,
    "x-roots": {
      response: responseName,
      streamEvent: streamName,
      errorBody: "ErrorResponse",
      error: "Error",
      deletedResponse: deletedName,
    },
    "x-stream-event-count": members.length,
    "x-stream-events": streamEvents,
    "x-synthesized": Object.fromEntries(
      Object.keys(extraDefs).map((name) => [
        name,
        "not in the spec: DELETE /responses/{response_id} 200 has no schema; built from its x-oaiMeta example",
      ]),
    ),
    $defs: defs,
  };
  // Header first, then the definitions; everything below the top level in sorted key order.
  const sorted = sortKeys(fixture) as JsonObject;
  const ordered: JsonObject = {};
  for (const key of Object.keys(fixture)) ordered[key] = sorted[key] as Json;
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

function main(): number {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`build-openapi-fixture: ${error.message}\nusage: [--spec <path>] [--check]`);
    return 2;
  }
  let spec: Buffer;
  try {
    spec = readFileSync(options.spec);
  } catch (error) {
    console.error(
      `build-openapi-fixture: cannot read the OpenAPI spec at ${options.spec} (${(error as Error).message}).\n` +
        "It lives outside the repo (../shared/openai-openapi/openapi.yaml); pass --spec <path>.",
    );
    return 2;
  }
  // The label is fixed, not the path given, so that --spec elsewhere yields the same bytes.
  let output: string;
  try {
    output = buildFixture(spec, "openai/openai-openapi openapi.yaml (components.schemas)");
  } catch (error) {
    console.error(
      `build-openapi-fixture: cannot convert ${options.spec}: ${(error as Error).message}`,
    );
    return 2;
  }
  const fixturePath = relative(process.cwd(), FIXTURE) || FIXTURE;
  if (!options.check) {
    writeFileSync(FIXTURE, output);
    console.log(`wrote ${fixturePath} (${output.length} bytes)`);
    return 0;
  }
  let committed: string | undefined;
  try {
    committed = readFileSync(FIXTURE, "utf8");
  } catch {
    committed = undefined;
  }
  if (committed === output) {
    console.log(`${fixturePath} is up to date with ${options.spec}`);
    return 0;
  }
  const sha256 = createHash("sha256").update(spec).digest("hex");
  let reason: string;
  if (committed === undefined) {
    reason = "it does not exist";
  } else {
    const committedSha = /"sha256": "([0-9a-f]+)"/.exec(committed)?.[1];
    const was = committed.split("\n");
    const now = output.split("\n");
    let line = 0;
    while (line < Math.max(was.length, now.length) && was[line] === now[line]) line++;
    reason =
      committedSha === sha256
        ? `same spec (sha256 ${sha256}) but not what the generator yields (edited by hand, or the generator changed), first difference at line ${line + 1}`
        : `it was built from a spec with sha256 ${committedSha ?? "(none)"}, this one has ${sha256}; first difference at line ${line + 1}`;
  }
  console.error(
    `build-openapi-fixture --check: ${fixturePath} is stale: ${reason}.\n` +
      "Run `npm run fixture:build` and commit the result.",
  );
  return 1;
}

process.exitCode = main();
