/**
 * Checks of what comes into baton from outside: run ids, response ids, create requests and run
 * options. One module, imported by the snapshot validator (saved data), the token decoder and
 * `startRun` / `rehydrateRun` (a caller's input), so that the same value is judged the same way
 * wherever it comes from.
 *
 * Each check takes a `fail` callback, which throws the error its caller owes: an
 * {@link InvalidSnapshotError} for a saved run, an {@link InvalidRunInputError} for a caller's
 * argument. Messages name the field by its path (`snapshot.context.options.retry.jitter: must be
 * a number from 0 to 1`).
 */
import { InvalidRunInputError } from "./errors.js";

/** Throws the caller's error for a field; never returns. */
export type Fail = (path: string, problem: string) => never;

/**
 * A run id: what `newRunId()` makes (`run_` and hex) and any name a caller picks that is safe as
 * a file name: letters, digits, `_`, `-` and `.`, not starting with `.`, at most 128 characters.
 */
const RUN_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/**
 * A response id as a server gives it (`resp_` and hex at OpenAI; UUID-like elsewhere): letters,
 * digits, `_` and `-`, at most 256 characters. No `.` or `/`: it goes into a URL path, where `..`
 * would name another resource.
 */
const RESPONSE_ID = /^[A-Za-z0-9_-]{1,256}$/;

/** The longest duration an option may ask for (7 days): below Node's timer limit (24.8 days). */
export const MAX_OPTION_MS = 7 * 24 * 60 * 60 * 1000;

/** The largest count an option may ask for (attempts, resumptions). */
export const MAX_OPTION_COUNT = 10_000;

/** Epoch ms that a JavaScript `Date` can hold. */
export const MAX_EPOCH_MS = 8.64e15;

/**
 * @example
 * ```ts
 * isValidRunId("run_0123abcd"); // true
 * isValidRunId("../x"); // false
 * ```
 */
export function isValidRunId(value: unknown): value is string {
  return typeof value === "string" && RUN_ID.test(value);
}

/**
 * @example
 * ```ts
 * isValidResponseId("resp_68af0c"); // true
 * isValidResponseId(".."); // false
 * ```
 */
export function isValidResponseId(value: unknown): value is string {
  return typeof value === "string" && RESPONSE_ID.test(value);
}

/** Why a run id is refused, for messages. */
export const RUN_ID_RULE =
  "must be 1-128 characters of letters, digits, '_', '-' or '.', not starting with '.'";
/** Why a response id is refused, for messages. */
export const RESPONSE_ID_RULE = "must be 1-256 characters of letters, digits, '_' or '-'";

/**
 * Throws an {@link InvalidRunInputError} unless `runId` is a valid run id.
 *
 * @example
 * ```ts
 * assertValidRunId("run_1"); // ok
 * assertValidRunId("../x"); // throws InvalidRunInputError (code "invalid_input")
 * ```
 */
export function assertValidRunId(runId: unknown, field = "runId"): asserts runId is string {
  if (!isValidRunId(runId)) failInput(field, RUN_ID_RULE);
}

/** A `fail` that throws {@link InvalidRunInputError}. */
export const failInput: Fail = (path, problem) => {
  throw new InvalidRunInputError(path, `${path}: ${problem}`);
};

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A non-negative safe integer, at most `max`. */
export function checkCount(
  value: unknown,
  path: string,
  fail: Fail,
  max = Number.MAX_SAFE_INTEGER,
) {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
    fail(
      path,
      max === Number.MAX_SAFE_INTEGER
        ? "must be a non-negative integer"
        : `must be an integer from 0 to ${max}`,
    );
  }
}

/** A finite duration in ms from 0 to {@link MAX_OPTION_MS}. */
export function checkDuration(value: unknown, path: string, fail: Fail): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_OPTION_MS) {
    fail(path, `must be a duration in ms from 0 to ${MAX_OPTION_MS}`);
  }
}

/** One of `choices`. */
export function checkChoice(
  value: unknown,
  choices: readonly unknown[],
  path: string,
  fail: Fail,
): void {
  if (!choices.includes(value)) {
    fail(path, `must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`);
  }
}

/** A string, at most `max` characters (and not empty unless `allowEmpty`). */
export function checkString(
  value: unknown,
  path: string,
  fail: Fail,
  { max = Number.POSITIVE_INFINITY, allowEmpty = true } = {},
): void {
  if (typeof value !== "string") fail(path, "must be a string");
  if (!allowEmpty && value === "") fail(path, "must not be empty");
  if (value.length > max) fail(path, `must be at most ${max} characters`);
}

/** Keys of `value` that are not in `known`. */
export function checkKnownKeys(
  value: Record<string, unknown>,
  known: readonly string[],
  path: string,
  fail: Fail,
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) fail(path ? `${path}.${key}` : key, "is not a known field");
  }
}

/**
 * JSON data only, no deeper than a few dozen levels, and no object XState would revive as an
 * actor (`xstate$$type`): baton's context never holds one, so a saved one is forged.
 */
export function checkPlainData(value: unknown, path: string, fail: Fail, depth = 0): void {
  if (depth > 32) fail(path, "is nested too deeply");
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(path, "must be a finite number");
    return;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) checkPlainData(item, `${path}[${i}]`, fail, depth + 1);
    return;
  }
  if (isRecord(value)) {
    if ("xstate$$type" in value) fail(path, "must not hold an actor reference");
    for (const [key, item] of Object.entries(value)) {
      checkPlainData(item, `${path}.${key}`, fail, depth + 1);
    }
    return;
  }
  fail(path, "must be JSON data");
}

const INPUT_ROLES = ["user", "assistant", "system", "developer"] as const;

/**
 * A create request: `model` and `input` present and well typed, the optional fields of their
 * type. What the server thinks of the values is the server's to say.
 */
export function checkCreateRequest(value: unknown, path: string, fail: Fail): void {
  if (!isRecord(value)) fail(path, "must be an object");
  checkString(value.model, `${path}.model`, fail, { max: 256, allowEmpty: false });
  const input = value.input;
  if (Array.isArray(input)) {
    input.forEach((message, i) => {
      const at = `${path}.input[${i}]`;
      if (!isRecord(message)) fail(at, "must be an object");
      checkChoice(message.role, INPUT_ROLES, `${at}.role`, fail);
      checkString(message.content, `${at}.content`, fail);
    });
  } else if (typeof input !== "string") {
    fail(`${path}.input`, "must be a string or an array of messages");
  }
  if (value.instructions !== undefined)
    checkString(value.instructions, `${path}.instructions`, fail);
  if (value.maxOutputTokens !== undefined) {
    const tokens = value.maxOutputTokens;
    if (typeof tokens !== "number" || !Number.isSafeInteger(tokens) || tokens < 1) {
      fail(`${path}.maxOutputTokens`, "must be a positive integer");
    }
  }
  if (value.previousResponseId !== undefined && !isValidResponseId(value.previousResponseId)) {
    fail(`${path}.previousResponseId`, RESPONSE_ID_RULE);
  }
  if (value.metadata !== undefined) {
    if (!isRecord(value.metadata)) fail(`${path}.metadata`, "must be an object of strings");
    for (const [key, item] of Object.entries(value.metadata)) {
      checkString(item, `${path}.metadata.${key}`, fail);
    }
  }
  if (value.extra !== undefined) {
    if (!isRecord(value.extra)) fail(`${path}.extra`, "must be an object");
    checkPlainData(value.extra, `${path}.extra`, fail);
  }
}
