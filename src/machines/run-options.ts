/**
 * The run's options and its start input, checked: every option of its type and in range, and
 * a new run's id, request and options before its create call. The machine floor's, because
 * the options are the machine's (`DEFAULT_RUN_OPTIONS`); the checks of plain values they use
 * are the ground floor's (`input-validation.ts`).
 */
import {
  assertValidRunId,
  checkChoice,
  checkCount,
  checkCreateRequest,
  checkDuration,
  checkKnownKeys,
  checkPlainData,
  type Fail,
  failInput,
  isRecord,
  MAX_OPTION_COUNT,
} from "../input-validation.js";
import { DEFAULT_RUN_OPTIONS, type RunOptions } from "./run-types.js";

/** What `startRun` checks before anything is sent. */
export interface StartRunCheck {
  runId: unknown;
  request: unknown;
  options?: unknown;
}

/**
 * Checks a new run's id, create request and options before the create call, so that nothing is
 * created (and billed) for a run that could never be saved or followed. Throws an
 * {@link InvalidRunInputError} naming the field.
 *
 * @example
 * ```ts
 * validateStartInput({ runId: "run_1", request: { model: "o3", input: "hi" } }); // ok
 * validateStartInput({ runId: "../x", request: { model: "o3", input: "hi" } }); // throws
 * ```
 */
export function validateStartInput(input: StartRunCheck): void {
  assertValidRunId(input.runId);
  checkCreateRequest(input.request, "request", failInput);
  if (input.options !== undefined) checkRunOptions(input.options, "options", failInput);
}

type OptionCheck = (value: unknown, path: string, fail: Fail) => void;

const nullable =
  (check: OptionCheck): OptionCheck =>
  (value, path, fail) => {
    if (value !== null) check(value, path, fail);
  };
const count: OptionCheck = (value, path, fail) => checkCount(value, path, fail, MAX_OPTION_COUNT);
const choice =
  (...choices: readonly string[]): OptionCheck =>
  (value, path, fail) =>
    checkChoice(value, choices, path, fail);

const RETRY_CHECKS: Record<string, OptionCheck> = {
  maxAttempts: count,
  baseDelayMs: checkDuration,
  maxDelayMs: checkDuration,
  jitter: (value, path, fail) => {
    if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
      fail(path, "must be a number from 0 to 1");
    }
  },
};

/** Checks of the options baton knows; any other option takes the check of its default's type. */
const OPTION_CHECKS: Partial<Record<keyof RunOptions, OptionCheck>> = {
  pollIntervalMs: checkDuration,
  maxResumeAttempts: count,
  createTimeoutMs: checkDuration,
  firstEventTimeoutMs: checkDuration,
  idleTimeoutMs: checkDuration,
  queuedTimeoutMs: nullable(checkDuration),
  onStuckQueued: choice("cancel", "fail", "wait"),
  deadlineMs: nullable(checkDuration),
  onDeadline: choice("cancel", "fail"),
  onUnknownCreate: choice("fail", "recreate"),
  requestTimeoutMs: checkDuration,
  cancelGraceMs: checkDuration,
};

/** The check of an option added to the defaults after this module was written. */
function checkLike(defaultValue: unknown): OptionCheck {
  if (typeof defaultValue === "number") return checkDuration;
  if (typeof defaultValue === "string" || typeof defaultValue === "boolean") {
    return (value, path, fail) => {
      if (typeof value !== typeof defaultValue) fail(path, `must be a ${typeof defaultValue}`);
    };
  }
  return (value, path, fail) => checkPlainData(value, path, fail);
}

function checkFields(
  value: unknown,
  defaults: object,
  checks: Record<string, OptionCheck | undefined>,
  path: string,
  fail: Fail,
): void {
  if (!isRecord(value)) fail(path, "must be an object");
  checkKnownKeys(value, Object.keys(defaults), path, fail);
  for (const [key, defaultValue] of Object.entries(defaults)) {
    const given = value[key];
    // A missing option takes its default (as `startRun` does), in saved runs too.
    if (given === undefined) continue;
    if (key === "retry") {
      checkFields(given, defaultValue as object, RETRY_CHECKS, `${path}.retry`, fail);
      continue;
    }
    (checks[key] ?? checkLike(defaultValue))(given, `${path}.${key}`, fail);
  }
}

/**
 * Run options: every field of its type and in range (durations 0 to 7 days, counts 0 to
 * 10,000, enums one of theirs). Missing fields take their defaults; unknown fields are refused.
 *
 * @example
 * ```ts
 * checkRunOptions({ pollIntervalMs: -5 }, "options", failInput); // throws
 * ```
 */
export function checkRunOptions(value: unknown, path: string, fail: Fail): void {
  checkFields(value, DEFAULT_RUN_OPTIONS, OPTION_CHECKS, path, fail);
}
