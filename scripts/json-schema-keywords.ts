/**
 * The JSON Schema 2020-12 keywords whose values are schemas, by shape: what a walk over a schema
 * descends into. One list for the two walkers: `build-openapi-fixture.ts` (converting the spec)
 * and `test/support/openapi-schema.ts` (closing and rewriting the fixture's schemas), so that a
 * keyword taught to one is seen by the other.
 *
 * @example
 * ```ts
 * for (const key of SCHEMA_KEYWORDS) visit(schema[key]); // in this order: depth first
 * if (SCHEMA_ARRAY_KEYWORDS.has(key)) value.forEach(visit);
 * ```
 */

/** Keywords whose value is one schema. */
export const SCHEMA_KEYWORDS: ReadonlySet<string> = new Set([
  "items",
  "additionalProperties",
  "unevaluatedProperties",
  "unevaluatedItems",
  "propertyNames",
  "contains",
  "not",
  "if",
  "then",
  "else",
]);

/** Keywords whose value is an array of schemas. */
export const SCHEMA_ARRAY_KEYWORDS: ReadonlySet<string> = new Set([
  "allOf",
  "anyOf",
  "oneOf",
  "prefixItems",
]);

/** Keywords whose value maps names to schemas. */
export const SCHEMA_MAP_KEYWORDS: ReadonlySet<string> = new Set([
  "properties",
  "patternProperties",
  "dependentSchemas",
]);
