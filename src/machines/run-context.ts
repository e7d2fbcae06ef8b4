/**
 * The run machine's context: how it is made from a run's input, and what the guards, actions
 * and invokes read from it (options with their defaults, timeouts, deadlines, the result).
 * Plain functions of plain data: nothing here runs an actor or knows a client.
 */
import type { ResponseState } from "../services/responses-client.js";
import {
  type CancelCause,
  DEFAULT_RUN_OPTIONS,
  type RunContext,
  type RunInput,
  type RunOptions,
  type RunResult,
} from "./run-types.js";

/**
 * Resolved options, shared by the runs that ask for the same ones (read-only): thousands of
 * polling runs started alike would otherwise each hold a copy (see bench/, heap per run).
 */
const resolvedOptions = new Map<string, Readonly<RunOptions>>();
const RESOLVED_OPTIONS_KEPT = 64;

function resolveOptions(partial: Partial<RunOptions> | undefined): RunOptions {
  // An option given as undefined takes its default (and the key, which JSON drops it from).
  const given = definedOnly(partial ?? {});
  const key = JSON.stringify(given);
  let options = resolvedOptions.get(key);
  if (!options) {
    options = Object.freeze({
      ...DEFAULT_RUN_OPTIONS,
      ...given,
      retry: Object.freeze({ ...DEFAULT_RUN_OPTIONS.retry, ...definedOnly(given.retry ?? {}) }),
    });
    // A bounded cache: a process that varies its options run after run keeps the last ones.
    if (resolvedOptions.size >= RESOLVED_OPTIONS_KEPT) resolvedOptions.clear();
    resolvedOptions.set(key, options);
  }
  return options;
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(values).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/** The context of a run about to start: a new response to create, or one to follow. */
export function initialContext(input: RunInput): RunContext {
  const options = resolveOptions(input.options);
  const now = input.now ?? Date.now();
  const attached = "responseId" in input;
  return {
    runId: input.runId,
    mode: input.mode,
    options,
    request: attached ? null : input.request,
    responseId: attached ? input.responseId : null,
    sequenceNumber: attached ? (input.sequenceNumber ?? null) : null,
    // A run attached to a stream by token cannot know how much text came before its cursor.
    deliveredChars: attached && input.sequenceNumber !== undefined ? null : 0,
    status: null,
    deadlineAt: options.deadlineMs === null ? null : now + options.deadlineMs,
    queuedDeadlineAt: null,
    wakeAt: attached ? now : null,
    attempts: 0,
    resumeAttempts: 0,
    resumes: 0,
    creates: 0,
    interruption: null,
    lastFailure: null,
    cancelRequested: null,
    result: null,
  };
}

/**
 * An option of the run, or its default when the run's options predate it (a snapshot saved
 * by an older baton holds the options of its day; see `RUN_MACHINE_VERSION`).
 */
export function optionOf<K extends keyof RunOptions>(context: RunContext, key: K): RunOptions[K] {
  return context.options[key] ?? DEFAULT_RUN_OPTIONS[key];
}

/** How long a single request (poll, check, cancel, confirm) may take. */
export function requestTimeout(context: RunContext): number {
  return optionOf(context, "requestTimeoutMs");
}

/** When a cancel asked for by the deadline has had its time (null: no such cancel). */
export function cancelGraceEnd(context: RunContext): number | null {
  if (context.cancelRequested !== "deadline" || context.deadlineAt === null) return null;
  return context.deadlineAt + optionOf(context, "cancelGraceMs");
}

/**
 * How long a create may take to answer (its JSON reply, or `response.created`): `createTimeoutMs`,
 * and past the run's deadline no more than `firstEventTimeoutMs`, the grace in which the
 * response id may still arrive and the response be cancelled rather than left running.
 */
export function createTimeout(context: RunContext): number {
  const { createTimeoutMs, firstEventTimeoutMs } = context.options;
  if (context.deadlineAt === null) return createTimeoutMs;
  const untilDeadline = Math.max(0, context.deadlineAt - Date.now());
  return Math.min(createTimeoutMs, untilDeadline + firstEventTimeoutMs);
}

/** The create request, tagged with the run id. */
export function withRunTag(context: RunContext) {
  const request = context.request;
  if (!request) throw new Error("no create request in context");
  // The run id in metadata lets a duplicate response be recognised as this run's.
  return { ...request, metadata: { ...request.metadata, baton_run_id: context.runId } };
}

/** The result of a run the service gave its verdict on (or that stops following it). */
export function resultOf(
  context: RunContext,
  response: ResponseState,
  cancelledBy: CancelCause | null,
): RunResult {
  return {
    outcome:
      response.status === "queued" || response.status === "in_progress"
        ? "gave-up"
        : response.status,
    runId: context.runId,
    responseId: response.id,
    text: response.outputText,
    usage: response.usage,
    error: response.error,
    incompleteReason: response.incompleteReason,
    ...(response.status === "cancelled" && cancelledBy ? { cancelledBy } : {}),
  };
}
