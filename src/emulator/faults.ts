/**
 * Fault injection: the queue of rules set through the API (`emulator.faults`), and the
 * per-request variants carried by the `x-emulator-fault` / `x-emulator-script` headers. A rule
 * is consumed as it fires; which rule fires depends only on the order of requests, never on
 * chance, so a test sees the same faults on every run.
 */
import { invalidRequest } from "./errors.js";
import type { FaultQueue, FaultRule, GenerationScript, RequestKind } from "./types.js";

/** The action part of a rule: what happens to the request it matched. */
export type FaultAction =
  | { kind: "status"; status: NonNullable<FaultRule["status"]> }
  | { kind: "reset"; afterHandling: boolean }
  | { kind: "drop"; afterEvents: number }
  | { kind: "stall"; afterEvents: number; ms: number | undefined }
  | { kind: "garbage"; status: number; contentType: string; body: string };

const ACTIONS = ["status", "reset", "drop", "stall", "garbage", "script"] as const;
const KINDS: readonly RequestKind[] = [
  "create",
  "create-stream",
  "retrieve",
  "retrieve-stream",
  "cancel",
  "delete",
];
const SSE_KINDS: ReadonlySet<RequestKind> = new Set(["create-stream", "retrieve-stream"]);
const CREATE_KINDS: ReadonlySet<RequestKind> = new Set(["create", "create-stream"]);

interface PendingRule {
  readonly rule: FaultRule;
  readonly kinds: ReadonlySet<RequestKind>;
  remaining: number;
}

/**
 * Checks that a rule names exactly one action and sensible values; throws a `TypeError` naming
 * the problem otherwise.
 */
export function validateFaultRule(rule: FaultRule, requireOn = true): void {
  const actions = ACTIONS.filter((action) => rule[action] !== undefined);
  if (actions.length !== 1) {
    throw new TypeError(
      `A fault rule needs exactly one action (${ACTIONS.join(", ")}), got ${actions.length ? actions.join(", ") : "none"}.`,
    );
  }
  if (requireOn) {
    const on = Array.isArray(rule.on) ? rule.on : [rule.on];
    if (on.length === 0 || on.some((kind) => !KINDS.includes(kind))) {
      throw new TypeError(`A fault rule's "on" must name request kinds among ${KINDS.join(", ")}.`);
    }
  }
  if (rule.times !== undefined && !(rule.times >= 1)) {
    throw new TypeError(`A fault rule's "times" must be at least 1 (Infinity allowed).`);
  }
  if (rule.status !== undefined && !Number.isInteger(rule.status.code)) {
    throw new TypeError(`A status fault needs an integer "code".`);
  }
  if (rule.drop !== undefined && !(rule.drop.afterEvents >= 0)) {
    throw new TypeError(`A drop fault needs "afterEvents" >= 0.`);
  }
  if (rule.stall !== undefined && !(rule.stall.afterEvents >= 0)) {
    throw new TypeError(`A stall fault needs "afterEvents" >= 0.`);
  }
}

/** The action of a (validated) rule, with defaults applied; undefined for a script rule. */
export function actionOf(rule: Omit<FaultRule, "on">): FaultAction | undefined {
  if (rule.status) return { kind: "status", status: rule.status };
  if (rule.reset) return { kind: "reset", afterHandling: rule.reset.afterHandling === true };
  if (rule.drop) return { kind: "drop", afterEvents: rule.drop.afterEvents };
  if (rule.stall) return { kind: "stall", afterEvents: rule.stall.afterEvents, ms: rule.stall.ms };
  if (rule.garbage) {
    return {
      kind: "garbage",
      status: rule.garbage.status ?? 200,
      contentType: rule.garbage.contentType ?? "text/html",
      body: rule.garbage.body ?? "<html>oops</html>",
    };
  }
  return undefined;
}

/**
 * The emulator's fault queue.
 *
 * @example
 * ```ts
 * emulator.faults.add({ on: "create", status: { code: 429, retryAfterMs: 50 } });
 * emulator.faults.add({ on: "retrieve-stream", times: 2, drop: { afterEvents: 3 } });
 * ```
 */
export class FaultRules implements FaultQueue {
  #rules: PendingRule[] = [];

  add(rule: FaultRule): void {
    validateFaultRule(rule);
    const kinds = new Set(Array.isArray(rule.on) ? rule.on : [rule.on]);
    this.#rules.push({ rule, kinds, remaining: rule.times ?? 1 });
  }

  clear(): void {
    this.#rules = [];
  }

  /** The rules still waiting, with `times` showing what is left of each. */
  get pending(): readonly FaultRule[] {
    return this.#rules.map(({ rule, remaining }) => ({ ...rule, times: remaining }));
  }

  /**
   * Consumes and returns the first action rule matching this request. Drop rules only match SSE
   * replies and script rules never match here (see `takeScript`), so neither is wasted on a
   * request it cannot affect.
   */
  take(kind: RequestKind, responseId: string | undefined): FaultAction | undefined {
    const pending = this.#find(kind, responseId, (rule) => {
      if (rule.script !== undefined) return false;
      return rule.drop === undefined || SSE_KINDS.has(kind);
    });
    return pending === undefined ? undefined : actionOf(pending.rule);
  }

  /** Consumes and returns the first script rule matching a create request. */
  takeScript(kind: RequestKind): GenerationScript | undefined {
    if (!CREATE_KINDS.has(kind)) return undefined;
    return this.#find(kind, undefined, (rule) => rule.script !== undefined)?.rule.script;
  }

  #find(
    kind: RequestKind,
    responseId: string | undefined,
    accepts: (rule: FaultRule) => boolean,
  ): PendingRule | undefined {
    const index = this.#rules.findIndex(
      ({ rule, kinds }) =>
        kinds.has(kind) &&
        (rule.responseId === undefined || rule.responseId === responseId) &&
        accepts(rule),
    );
    const pending = this.#rules[index];
    if (pending === undefined) return undefined;
    pending.remaining--;
    if (pending.remaining <= 0) this.#rules.splice(index, 1);
    return pending;
  }
}

/**
 * Parses an `x-emulator-fault` header: a JSON fault rule without `on`, applied to that request.
 * A bad header is the caller's mistake, so it answers 400 rather than being ignored.
 */
export function parseFaultHeader(value: string): Omit<FaultRule, "on"> {
  let rule: unknown;
  try {
    rule = JSON.parse(value);
  } catch {
    throw invalidRequest("The x-emulator-fault header is not valid JSON.", "x-emulator-fault");
  }
  if (rule === null || typeof rule !== "object" || Array.isArray(rule)) {
    throw invalidRequest("The x-emulator-fault header must be a JSON object.", "x-emulator-fault");
  }
  try {
    validateFaultRule(rule as FaultRule, false);
  } catch (error) {
    throw invalidRequest((error as Error).message, "x-emulator-fault");
  }
  return rule as Omit<FaultRule, "on">;
}

/** Most deltas a generation script may ask for (each is kept in the response's event log). */
export const MAX_SCRIPT_OUTPUT_TOKENS = 100_000;
/** Longest delay a script may ask for: the largest node timers take (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Parses a generation script from the `x-emulator-script` header or `metadata.emulator_script`.
 */
export function parseScript(value: string, param: string): GenerationScript {
  let script: unknown;
  try {
    script = JSON.parse(value);
  } catch {
    throw invalidRequest(`${param} is not valid JSON.`, param);
  }
  if (script === null || typeof script !== "object" || Array.isArray(script)) {
    throw invalidRequest(`${param} must be a JSON object.`, param);
  }
  const numeric = ["outputTokens", "tokenDelayMs", "queuedMs", "failAfterDeltas", "keepaliveEvery"];
  for (const key of numeric) {
    const field = (script as Record<string, unknown>)[key];
    if (field !== undefined && (typeof field !== "number" || !(field >= 0))) {
      throw invalidRequest(`${param}: "${key}" must be a non-negative number.`, param);
    }
    // A client's script must not exhaust the emulator (a billion deltas, all kept in the event
    // log) nor overflow a timer (node turns a delay past 2^31-1 ms into 1 ms, with a warning).
    const max = key === "outputTokens" ? MAX_SCRIPT_OUTPUT_TOKENS : MAX_TIMER_MS;
    if (typeof field === "number" && field > max) {
      throw invalidRequest(`${param}: "${key}" must be at most ${max}, got ${field}.`, param);
    }
  }
  return script as GenerationScript;
}
