/**
 * The run machine: the lifecycle of one background response, from the create call to the
 * service's verdict, through any number of broken connections, restarts and processes.
 *
 *   idle → started → polling | streaming ⇄ interrupted → resumed → streaming … → done
 *                                  any state → cancelling → done
 *
 * Design rules (see docs/xstate-notes in the project's shared material):
 * - Everything needed to carry on is in context: the response id, the cursor (last sequence
 *   number processed) and absolute deadlines. Invokes take their input from context.
 * - Waits are `after` transitions whose delay (`untilWake`) is computed from an absolute time
 *   in context: XState drops `after` timers on restore, and the restored state's re-entry
 *   arms them again for the time left. A delayed transition, not a child actor: a child costs
 *   about 2.5 KB, and thousands of polling runs spend their life waiting.
 * - The overall deadline is a `sleepUntil` child with an absolute input, spawned only when the
 *   run has a deadline; restored with the snapshot.
 * - Restoring does not restart stale children: `restoreRunActor` drops them and sends
 *   `run.restored`, which each state answers by starting its work again from context.
 * - Every actor is registered by name and invoked with an explicit id, so that
 *   `machine.provide({ actors: createRunActors(client) })` swaps the client.
 */
import { and, assign, type DoneActorEvent, emit, enqueueActions, setup } from "xstate";
import {
  type ClientFailure,
  isTransient,
  provesNothingCreated,
  serverWait,
} from "../services/client-failure.js";
import {
  isTerminalStatus,
  type ResponseState,
  type ResponseStatus,
  type ResponseStreamEvent,
  type ResponsesClient,
  type RetrieveResult,
} from "../services/responses-client.js";
import { backoffDelay, resumeDelay } from "./backoff.js";
import { createRunActors, MAX_TIMER_MS } from "./run-actors.js";
import {
  type CancelCause,
  DEFAULT_RUN_OPTIONS,
  type GiveUpReason,
  type InterruptionReason,
  type RunContext,
  type RunEmitted,
  type RunEvent,
  type RunInput,
  type RunOptions,
  type RunResult,
} from "./run-types.js";
import { readBatch } from "./stream-batch.js";

export { RUN_MACHINE_VERSION } from "./run-state.js";

const notConfigured = (): Promise<never> =>
  Promise.reject(
    new Error("the run machine has no client: use createRunMachine(client) or machine.provide()"),
  );

/** The placeholder client of the bare machine; `createRunMachine` provides a real one. */
const noClient: ResponsesClient = {
  create: notConfigured,
  createStream: notConfigured,
  retrieve: notConfigured,
  streamFrom: notConfigured,
  cancel: notConfigured,
};

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

/**
 * An option of the run, or its default when the run's options predate it (a snapshot saved
 * by an older baton holds the options of its day; see `RUN_MACHINE_VERSION`).
 */
function optionOf<K extends keyof RunOptions>(context: RunContext, key: K): RunOptions[K] {
  return context.options[key] ?? DEFAULT_RUN_OPTIONS[key];
}

/** How long a single request (poll, check, cancel, confirm) may take. */
function requestTimeout(context: RunContext): number {
  return optionOf(context, "requestTimeoutMs");
}

/** When a cancel asked for by the deadline has had its time (null: no such cancel). */
function cancelGraceEnd(context: RunContext): number | null {
  if (context.cancelRequested !== "deadline" || context.deadlineAt === null) return null;
  return context.deadlineAt + optionOf(context, "cancelGraceMs");
}

function initialContext(input: RunInput): RunContext {
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
 * How long a create may take to answer (its JSON reply, or `response.created`): `createTimeoutMs`,
 * and past the run's deadline no more than `firstEventTimeoutMs`, the grace in which the
 * response id may still arrive and the response be cancelled rather than left running.
 */
function createTimeout(context: RunContext): number {
  const { createTimeoutMs, firstEventTimeoutMs } = context.options;
  if (context.deadlineAt === null) return createTimeoutMs;
  const untilDeadline = Math.max(0, context.deadlineAt - Date.now());
  return Math.min(createTimeoutMs, untilDeadline + firstEventTimeoutMs);
}

function withRunTag(context: RunContext) {
  const request = context.request;
  if (!request) throw new Error("no create request in context");
  // The run id in metadata lets a duplicate response be recognised as this run's.
  return { ...request, metadata: { ...request.metadata, baton_run_id: context.runId } };
}

function resultOf(
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

/** A read (poll or confirm) found the service's verdict: the run is done. */
const finishOnVerdict = {
  guard: { type: "isTerminal", params: retrievedStatus },
  target: "#run.done",
  actions: { type: "finish", params: retrievedResponse },
} as const;

/**
 * Where a failed create goes: retried only after a failure that proves nothing was created;
 * otherwise the run ends, `create-unknown` when the server may have created a response.
 */
const createFailed = [
  {
    guard: { type: "canRetryCreate", params: failureParams },
    target: "backoff",
    actions: { type: "scheduleRetry", params: failureParams },
  },
  {
    guard: { type: "mayHaveCreated", params: failureParams },
    target: "#run.done",
    actions: { type: "giveUp", params: giveUpParams("create-unknown") },
  },
  { target: "#run.done", actions: { type: "giveUp", params: giveUpParams("create-failed") } },
] as const;

/**
 * The deadline asked for a cancel and its grace is over: the run ends whatever the server still
 * says, and its result says the cancel was not confirmed.
 */
const deadlineEndsCancel = {
  guard: "cancelGraceOver",
  target: "#run.done",
  actions: { type: "giveUp", params: { reason: "deadline", cancelConfirmed: false } },
} as const;

export const runMachine = setup({
  types: {
    context: {} as RunContext,
    // The deadline child is spawned (only runs with a deadline have one), so its done event is
    // declared here rather than inferred from an invoke.
    events: {} as RunEvent | DoneActorEvent<void, "deadline">,
    input: {} as RunInput,
    output: {} as RunResult,
    emitted: {} as RunEmitted,
  },
  actors: createRunActors(noClient),
  guards: {
    isStreamMode: ({ context }) => context.mode === "stream",
    hasResponse: ({ context }) => context.responseId !== null,
    isCancelRequested: ({ context }) => context.cancelRequested !== null,
    isQueued: ({ context }) => context.status === "queued",
    isTerminal: (_, params: { status: ResponseStatus }) => isTerminalStatus(params.status),
    isFinalWithUsage: (_, params: { response: ResponseState }) =>
      isTerminalStatus(params.response.status) && params.response.usage !== null,
    hasProvisionalResult: ({ context }) => context.result !== null,
    /** Still queued past the queued deadline, and configured to `action` on it. */
    isStuckQueued: ({ context }, params: { status: ResponseStatus; action: "cancel" | "fail" }) =>
      params.status === "queued" &&
      context.options.onStuckQueued === params.action &&
      context.queuedDeadlineAt !== null &&
      Date.now() >= context.queuedDeadlineAt,
    stuckQueuedCancels: ({ context }) => context.options.onStuckQueued === "cancel",
    stuckQueuedFails: ({ context }) => context.options.onStuckQueued === "fail",
    cancelsOnDeadline: ({ context }) => context.options.onDeadline === "cancel",
    deadlineCancels: ({ context }) =>
      context.options.onDeadline === "cancel" && context.responseId !== null,
    canRetry: ({ context }, params: { failure: ClientFailure }) =>
      isTransient(params.failure) && context.attempts + 1 < context.options.retry.maxAttempts,
    /** A create may be retried only when the failure proves nothing was created. */
    canRetryCreate: ({ context }, params: { failure: ClientFailure }) =>
      isTransient(params.failure) &&
      provesNothingCreated(params.failure) &&
      context.attempts + 1 < context.options.retry.maxAttempts,
    /** A failed create that may have created a response on the server. */
    mayHaveCreated: (_, params: { failure: ClientFailure }) =>
      !provesNothingCreated(params.failure),
    isNotFound: (_, params: { failure: ClientFailure }) => params.failure.kind === "not-found",
    isTransientFailure: (_, params: { failure: ClientFailure }) => isTransient(params.failure),
    cannotStream: (_, params: { failure: ClientFailure }) =>
      params.failure.kind === "replay-expired" || params.failure.kind === "not-streamable",
    isAlreadyFinished: (_, params: { failure: ClientFailure }) =>
      params.failure.kind === "already-finished",
    /** Every event of the batch was processed before (a replay from an earlier cursor). */
    isReplayedBatch: ({ context }, params: { events: readonly ResponseStreamEvent[] }) => {
      const reading = readBatch(context.sequenceNumber, params.events);
      return reading.accepted.length === 0 && reading.end === null;
    },
    /** The batch reaches the terminal event in order: the service's verdict. */
    reachesTerminalEvent: ({ context }, params: { events: readonly ResponseStreamEvent[] }) =>
      readBatch(context.sequenceNumber, params.events).end?.kind === "terminal",
    /** The batch skips an event: what follows the gap is not trusted. */
    reachesGap: ({ context }, params: { events: readonly ResponseStreamEvent[] }) =>
      readBatch(context.sequenceNumber, params.events).end?.kind === "gap",
    resumesExhausted: ({ context }) => context.resumeAttempts >= context.options.maxResumeAttempts,
    /** A cancel the deadline asked for has had its grace: the run ends, confirmed or not. */
    cancelGraceOver: ({ context }) => {
      const end = cancelGraceEnd(context);
      return end !== null && Date.now() >= end;
    },
    recreatesOnRestore: ({ context }) =>
      context.options.onUnknownCreate === "recreate" && context.request !== null,
  },
  delays: {
    /** Until `wakeAt` (absolute): a restored state waits only the time left. */
    untilWake: ({ context }) => {
      // A cancel for the deadline waits no longer than its grace (then it ends the run).
      const graceEnd = cancelGraceEnd(context);
      const at =
        graceEnd === null
          ? context.wakeAt
          : Math.min(context.wakeAt ?? Number.POSITIVE_INFINITY, graceEnd);
      return at === null ? MAX_TIMER_MS : Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS);
    },
  },
  actions: {
    /** A run with a deadline gets its timer (a child: it must survive a restore). */
    armDeadline: enqueueActions(({ context, enqueue }) => {
      if (context.deadlineAt === null) return;
      enqueue.spawnChild("sleepUntil", { id: "deadline", input: { until: context.deadlineAt } });
    }),
    /** The response id is known: keep it (the moment to persist), drop the request. */
    recordCreated: enqueueActions(({ context, enqueue }, params: { response: ResponseState }) => {
      const now = Date.now();
      enqueue.assign({
        responseId: params.response.id,
        status: params.response.status,
        request: null,
        attempts: 0,
        lastFailure: null,
        wakeAt: now + context.options.pollIntervalMs,
        queuedDeadlineAt:
          context.options.queuedTimeoutMs === null ? null : now + context.options.queuedTimeoutMs,
      });
      enqueue.emit({ type: "status", status: params.response.status });
    }),
    recordStreamStart: assign((_, params: { sequenceNumber: number }) => ({
      sequenceNumber: params.sequenceNumber,
    })),
    countCreate: assign({ creates: ({ context }) => context.creates + 1 }),
    /** Emits the output text not yet delivered (polling sees it grow between polls). */
    deliverPolledText: enqueueActions(
      ({ context, enqueue }, params: { response: ResponseState; source: "poll" | "final" }) => {
        const text = params.response.outputText;
        const delivered = context.deliveredChars;
        if (delivered !== null && text.length > delivered) {
          enqueue.emit({
            type: "delta",
            text: text.slice(delivered),
            chars: text.length,
            source: params.source,
          });
          enqueue.assign({ deliveredChars: text.length });
        }
      },
    ),
    recordStatus: enqueueActions(({ context, enqueue }, params: { status: ResponseStatus }) => {
      if (params.status === context.status) return;
      enqueue.assign({ status: params.status });
      enqueue.emit({ type: "status", status: params.status });
    }),
    schedulePoll: assign(({ context }, params: { pollAfterMs?: number }) => ({
      attempts: 0,
      lastFailure: null,
      // The server's hint is bounded here, whatever the port parsed (serverWait).
      wakeAt:
        Date.now() + Math.max(context.options.pollIntervalMs, serverWait(params.pollAfterMs) ?? 0),
    })),
    pollNow: assign({ wakeAt: () => Date.now() }),
    scheduleRetry: assign(({ context }, params: { failure: ClientFailure }) => {
      const at =
        Date.now() +
        backoffDelay(context.attempts, context.options.retry, params.failure.retryAfterMs);
      return {
        attempts: context.attempts + 1,
        lastFailure: params.failure,
        wakeAt: at,
      };
    }),
    /**
     * Takes a batch's events in order (replays skipped, up to a gap or the terminal event) and
     * advances the cursor once. Consecutive deltas are handed to consumers as one piece, tagged
     * with its last sequence number (resume after it).
     */
    acceptStreamEvents: enqueueActions(
      ({ context, enqueue }, params: { events: readonly ResponseStreamEvent[] }) => {
        const { accepted } = readBatch(context.sequenceNumber, params.events);
        const last = accepted.at(-1);
        if (!last) return;
        let delivered = context.deliveredChars;
        let status = context.status;
        let text = "";
        let textEnd = -1;
        const emitText = () => {
          if (textEnd < 0) return;
          enqueue.emit({
            type: "delta",
            text,
            sequenceNumber: textEnd,
            ...(delivered !== null ? { chars: delivered } : {}),
            source: "stream",
          });
          text = "";
          textEnd = -1;
        };
        for (const event of accepted) {
          if (event.kind === "delta") {
            if (delivered !== null) delivered += event.text.length;
            text += event.text;
            textEnd = event.sequenceNumber;
          } else if (event.kind === "lifecycle" && event.response.status !== status) {
            emitText();
            status = event.response.status;
            enqueue.emit({ type: "status", status });
          }
        }
        emitText();
        enqueue.assign({
          sequenceNumber: last.sequenceNumber,
          deliveredChars: delivered,
          status,
          resumeAttempts: 0,
          attempts: 0,
        });
      },
    ),
    markInterrupted: assign(
      (_, params: { reason: InterruptionReason; failure?: ClientFailure }) => ({
        interruption: params.reason,
        ...(params.failure ? { lastFailure: params.failure } : {}),
      }),
    ),
    scheduleResume: assign(({ context }) => ({
      wakeAt:
        Date.now() +
        resumeDelay(
          context.resumeAttempts,
          context.options.retry,
          // Only a failed resume's own answer may ask for a wait: an older failure's does not.
          context.interruption === "resume-failed" ? context.lastFailure?.retryAfterMs : undefined,
        ),
    })),
    countResume: assign(({ context }) => ({
      resumes: context.resumes + 1,
      resumeAttempts: context.resumeAttempts + 1,
    })),
    emitSegment: emit(
      (
        _,
        params: {
          kind: "initial" | "continuation" | "replay" | "poll-fallback";
          startingAfter: number | null;
        },
      ) => ({
        type: "segment" as const,
        kind: params.kind,
        ...(params.startingAfter !== null ? { startingAfter: params.startingAfter } : {}),
      }),
    ),
    requestCancel: assign((_, params: { cause: CancelCause }) => ({
      cancelRequested: params.cause,
    })),
    /** The service gave its verdict: deliver what text is missing and keep the result. */
    finish: enqueueActions(({ context, enqueue }, params: { response: ResponseState }) => {
      const text = params.response.outputText;
      const delivered = context.deliveredChars;
      if (delivered !== null && text.length > delivered) {
        enqueue.emit({
          type: "delta",
          text: text.slice(delivered),
          chars: text.length,
          source: "final",
        });
      }
      if (params.response.status !== context.status) {
        enqueue.emit({ type: "status", status: params.response.status });
      }
      enqueue.assign({
        status: params.response.status,
        deliveredChars: delivered === null ? null : Math.max(delivered, text.length),
        result: resultOf(context, params.response, context.cancelRequested),
      });
    }),
    keepProvisionalResult: assign(({ context }, params: { response: ResponseState }) => ({
      result: resultOf(context, params.response, context.cancelRequested),
    })),
    /** A cancel before anything was created: nothing to tell the server. */
    finishCancelledLocally: assign(({ context }) => ({
      result: {
        outcome: "cancelled" as const,
        runId: context.runId,
        text: "",
        usage: null,
        error: null,
        incompleteReason: null,
        cancelledBy: "consumer" as const,
      },
    })),
    giveUp: assign(
      (
        { context },
        params: { reason: GiveUpReason; failure?: ClientFailure; cancelConfirmed?: boolean },
      ) => {
        const failure = params.failure ?? context.lastFailure ?? undefined;
        return {
          result: {
            outcome: "gave-up" as const,
            runId: context.runId,
            ...(context.responseId !== null ? { responseId: context.responseId } : {}),
            text: "",
            usage: null,
            error: null,
            incompleteReason: null,
            reason: params.reason,
            ...(failure ? { failure } : {}),
            ...(params.cancelConfirmed !== undefined
              ? { cancelConfirmed: params.cancelConfirmed }
              : {}),
          },
        };
      },
    ),
    /** A finished run never creates: the prompt is not kept (nor saved) past this point. */
    dropRequest: assign({ request: null }),
  },
}).createMachine({
  id: "run",
  context: ({ input }) => initialContext(input),
  output: ({ context }) => {
    if (!context.result) throw new Error("run finished without a result");
    return context.result;
  },
  // The overall deadline: one timer for the whole run, restored with its absolute input.
  entry: "armDeadline",
  on: {
    "xstate.done.actor.deadline": [
      {
        guard: "deadlineCancels",
        target: ".cancelling",
        actions: { type: "requestCancel", params: { cause: "deadline" } },
      },
      { target: ".done", actions: { type: "giveUp", params: { reason: "deadline" } } },
    ],
  },
  initial: "idle",
  states: {
    idle: {
      on: {
        "run.start": [
          // A run from a continuation token follows an existing response: no create.
          { guard: and(["hasResponse", "isStreamMode"]), target: "resumed" },
          { guard: "hasResponse", target: "polling" },
          { guard: "isStreamMode", target: "started.creatingStream" },
          { target: "started.creating" },
        ],
        "run.cancel": { target: "done", actions: "finishCancelledLocally" },
      },
    },
    /** The create call. Persisting here is safe: restoring never creates twice by accident. */
    started: {
      on: {
        "run.cancel": { actions: { type: "requestCancel", params: { cause: "consumer" } } },
        // The deadline passed while the create is in flight: cancel once the id is known,
        // rather than leave a response running that nobody follows.
        "xstate.done.actor.deadline": [
          {
            guard: "cancelsOnDeadline",
            actions: { type: "requestCancel", params: { cause: "deadline" } },
          },
          { target: "done", actions: { type: "giveUp", params: { reason: "deadline" } } },
        ],
        "run.restored": [
          {
            guard: "recreatesOnRestore",
            target: "started",
            reenter: true,
          },
          { target: "done", actions: { type: "giveUp", params: { reason: "create-unknown" } } },
        ],
      },
      initial: "creating",
      states: {
        creating: {
          entry: "countCreate",
          invoke: {
            id: "create",
            src: "createResponse",
            input: ({ context }) => ({
              request: withRunTag(context),
              timeoutMs: createTimeout(context),
            }),
            onDone: [
              {
                guard: "isCancelRequested",
                target: "#run.cancelling",
                actions: {
                  type: "recordCreated",
                  params: ({ event }) => ({ response: event.output }),
                },
              },
              {
                guard: {
                  type: "isTerminal",
                  params: ({ event }) => ({ status: event.output.status }),
                },
                target: "#run.done",
                actions: [
                  { type: "recordCreated", params: ({ event }) => ({ response: event.output }) },
                  { type: "finish", params: ({ event }) => ({ response: event.output }) },
                ],
              },
              {
                target: "#run.polling",
                actions: {
                  type: "recordCreated",
                  params: ({ event }) => ({ response: event.output }),
                },
              },
            ],
            onError: createFailed,
          },
        },
        creatingStream: {
          entry: "countCreate",
          invoke: {
            id: "createStream",
            src: "createResponseStream",
            input: ({ context }) => ({
              runId: context.runId,
              request: withRunTag(context),
              timeoutMs: createTimeout(context),
            }),
            onDone: [
              {
                guard: "isCancelRequested",
                target: "#run.cancelling",
                actions: {
                  type: "recordCreated",
                  params: retrievedResponse,
                },
              },
              {
                target: "#run.streaming",
                actions: [
                  {
                    type: "recordCreated",
                    params: retrievedResponse,
                  },
                  {
                    type: "recordStreamStart",
                    params: ({ event }) => ({ sequenceNumber: event.output.sequenceNumber }),
                  },
                  { type: "emitSegment", params: { kind: "initial", startingAfter: null } },
                ],
              },
            ],
            onError: createFailed,
          },
        },
        /** Waiting to create again: only after a failure that proves nothing was created. */
        backoff: {
          on: {
            "run.cancel": { target: "#run.done", actions: "finishCancelledLocally" },
            // Nothing was created: there is nothing to cancel.
            "xstate.done.actor.deadline": {
              target: "#run.done",
              actions: { type: "giveUp", params: { reason: "deadline" } },
            },
          },
          after: {
            untilWake: [
              { guard: "isStreamMode", target: "creatingStream" },
              { target: "creating" },
            ],
          },
        },
      },
    },
    polling: {
      on: {
        "run.cancel": {
          target: "cancelling",
          actions: { type: "requestCancel", params: { cause: "consumer" } },
        },
        "run.restored": { target: "polling", reenter: true },
      },
      initial: "waiting",
      states: {
        waiting: {
          after: { untilWake: "fetching" },
        },
        fetching: {
          invoke: {
            id: "poll",
            src: "retrieveResponse",
            input: requestInput,
            onDone: [
              finishOnVerdict,
              {
                guard: {
                  type: "isStuckQueued",
                  params: ({ event }) => ({
                    status: event.output.response.status,
                    action: "cancel" as const,
                  }),
                },
                target: "#run.cancelling",
                actions: { type: "requestCancel", params: { cause: "stuck-queued" } },
              },
              {
                guard: {
                  type: "isStuckQueued",
                  params: ({ event }) => ({
                    status: event.output.response.status,
                    action: "fail" as const,
                  }),
                },
                target: "#run.done",
                actions: { type: "giveUp", params: { reason: "stuck-queued" } },
              },
              {
                target: "waiting",
                actions: [
                  {
                    type: "recordStatus",
                    params: retrievedStatus,
                  },
                  {
                    type: "deliverPolledText",
                    params: ({ event }) => ({ response: event.output.response, source: "poll" }),
                  },
                  {
                    type: "schedulePoll",
                    params: ({ event }) =>
                      event.output.pollAfterMs === undefined
                        ? {}
                        : { pollAfterMs: event.output.pollAfterMs },
                  },
                ],
              },
            ],
            onError: [
              {
                guard: { type: "isNotFound", params: failureParams },
                target: "#run.done",
                actions: { type: "giveUp", params: giveUpParams("not-found") },
              },
              {
                guard: { type: "canRetry", params: failureParams },
                target: "waiting",
                actions: { type: "scheduleRetry", params: failureParams },
              },
              {
                target: "#run.done",
                actions: {
                  type: "giveUp",
                  params: ({ event }) => ({
                    reason: isTransient(failureOf(event.error)) ? "retries-exhausted" : "rejected",
                    failure: failureOf(event.error),
                  }),
                },
              },
            ],
          },
        },
      },
    },
    streaming: {
      invoke: {
        id: "stream",
        src: "consumeStream",
        input: ({ context }) => ({
          runId: context.runId,
          responseId: context.responseId as string,
          startingAfter: context.sequenceNumber,
          firstEventTimeoutMs: context.options.firstEventTimeoutMs,
          idleTimeoutMs: context.options.idleTimeoutMs,
          queuedDeadlineAt: context.status === "queued" ? context.queuedDeadlineAt : null,
        }),
      },
      on: {
        "stream.events": [
          { guard: { type: "isReplayedBatch", params: batchOf } },
          {
            guard: { type: "reachesTerminalEvent", params: batchOf },
            target: "done",
            actions: [
              { type: "acceptStreamEvents", params: batchOf },
              {
                type: "recordStreamStart",
                params: ({ event }) => ({
                  sequenceNumber: terminalEventOf(event.events).sequenceNumber,
                }),
              },
              {
                type: "finish",
                params: ({ event }) => ({
                  response: terminalEventOf(event.events).response,
                }),
              },
            ],
          },
          {
            guard: { type: "reachesGap", params: batchOf },
            target: "interrupted",
            actions: [
              { type: "acceptStreamEvents", params: batchOf },
              { type: "markInterrupted", params: { reason: "gap" } },
            ],
          },
          { actions: { type: "acceptStreamEvents", params: batchOf } },
        ],
        "stream.closed": {
          target: "interrupted",
          actions: { type: "markInterrupted", params: { reason: "ended-early" } },
        },
        "stream.failed": {
          target: "interrupted",
          actions: {
            type: "markInterrupted",
            params: ({ event }) => ({ reason: "dropped", failure: event.failure }),
          },
        },
        "stream.stalled": {
          target: "interrupted",
          actions: { type: "markInterrupted", params: ({ event }) => ({ reason: event.reason }) },
        },
        "watchdog.queued": [
          {
            guard: and(["isQueued", "stuckQueuedCancels"]),
            target: "cancelling",
            actions: { type: "requestCancel", params: { cause: "stuck-queued" } },
          },
          {
            guard: and(["isQueued", "stuckQueuedFails"]),
            target: "done",
            actions: { type: "giveUp", params: { reason: "stuck-queued" } },
          },
        ],
        "run.disconnect": {
          target: "interrupted.detached",
          actions: { type: "markInterrupted", params: { reason: "consumer" } },
        },
        "run.cancel": {
          target: "cancelling",
          actions: { type: "requestCancel", params: { cause: "consumer" } },
        },
        "run.restored": "resumed",
      },
    },
    /**
     * The stream broke. Check (one retrieve), wait (backoff), then resume; a consumer's
     * disconnect waits for it.
     */
    interrupted: {
      on: {
        "run.cancel": {
          target: "cancelling",
          actions: { type: "requestCancel", params: { cause: "consumer" } },
        },
        "run.restored": { target: "interrupted", reenter: true },
      },
      initial: "checking",
      states: {
        /**
         * One cheap `retrieve` before resuming: a response that ended meanwhile is finished
         * here, with the text the consumer has not had, rather than resumed again and again (a
         * cancel from another client ends live streams with no terminal event).
         */
        checking: {
          invoke: {
            id: "check",
            src: "retrieveResponse",
            input: requestInput,
            onDone: [finishOnVerdict, { target: "backoff" }],
            onError: [
              {
                guard: { type: "isNotFound", params: failureParams },
                target: "#run.done",
                actions: { type: "giveUp", params: giveUpParams("not-found") },
              },
              // Any other failure: the resume finds out (or fails, and is counted).
              { target: "backoff" },
            ],
          },
          on: { "run.disconnect": "detached" },
        },
        backoff: {
          entry: "scheduleResume",
          always: {
            guard: "resumesExhausted",
            target: "#run.polling",
            actions: [
              "pollNow",
              { type: "emitSegment", params: { kind: "poll-fallback", startingAfter: null } },
            ],
          },
          after: { untilWake: "#run.resumed" },
          on: { "run.disconnect": "detached" },
        },
        detached: {
          on: { "run.resume": "#run.resumed" },
        },
      },
    },
    /** Reopening the stream after the cursor: a continuation, never a second create. */
    resumed: {
      entry: "countResume",
      invoke: {
        id: "resume",
        src: "openStream",
        input: ({ context }) => ({
          runId: context.runId,
          responseId: context.responseId as string,
          startingAfter: context.sequenceNumber,
          headersTimeoutMs: Math.min(
            context.options.firstEventTimeoutMs,
            optionOf(context, "requestTimeoutMs"),
          ),
        }),
        onDone: {
          target: "streaming",
          actions: {
            type: "emitSegment",
            params: ({ context }) => ({
              kind: context.sequenceNumber === null ? "replay" : "continuation",
              startingAfter: context.sequenceNumber,
            }),
          },
        },
        onError: [
          {
            guard: { type: "cannotStream", params: failureParams },
            target: "polling",
            actions: [
              "pollNow",
              { type: "emitSegment", params: { kind: "poll-fallback", startingAfter: null } },
            ],
          },
          {
            guard: { type: "isNotFound", params: failureParams },
            target: "done",
            actions: { type: "giveUp", params: giveUpParams("not-found") },
          },
          {
            guard: { type: "isTransientFailure", params: failureParams },
            target: "interrupted",
            actions: {
              type: "markInterrupted",
              params: ({ event }) => ({
                reason: "resume-failed" as const,
                ...failureParams({ event }),
              }),
            },
          },
          {
            target: "done",
            actions: { type: "giveUp", params: giveUpParams("rejected") },
          },
        ],
      },
      on: {
        "run.cancel": {
          target: "cancelling",
          actions: { type: "requestCancel", params: { cause: "consumer" } },
        },
        "run.disconnect": {
          target: "interrupted.detached",
          actions: { type: "markInterrupted", params: { reason: "consumer" } },
        },
        "run.restored": { target: "resumed", reenter: true },
      },
    },
    /** `responses.cancel`: idempotent; a response that finished meanwhile reports as finished. */
    cancelling: {
      on: { "run.restored": { target: "cancelling", reenter: true } },
      initial: "requesting",
      states: {
        requesting: {
          invoke: {
            id: "cancel",
            src: "cancelResponse",
            input: requestInput,
            onDone: [
              {
                guard: {
                  type: "isFinalWithUsage",
                  params: ({ event }) => ({ response: event.output }),
                },
                target: "#run.done",
                actions: { type: "finish", params: ({ event }) => ({ response: event.output }) },
              },
              {
                // Cancelled, but the reply has no usage (as the spec's example): read it back
                // once for the final usage, keeping this reply should that read fail.
                guard: {
                  type: "isTerminal",
                  params: ({ event }) => ({ status: event.output.status }),
                },
                target: "confirming",
                actions: {
                  type: "keepProvisionalResult",
                  params: ({ event }) => ({ response: event.output }),
                },
              },
              { target: "confirming" },
            ],
            onError: [
              {
                guard: { type: "isAlreadyFinished", params: failureParams },
                target: "confirming",
              },
              {
                guard: { type: "isNotFound", params: failureParams },
                target: "#run.done",
                actions: { type: "giveUp", params: giveUpParams("not-found") },
              },
              deadlineEndsCancel,
              {
                guard: { type: "canRetry", params: failureParams },
                target: "backoff",
                actions: { type: "scheduleRetry", params: failureParams },
              },
              {
                target: "#run.done",
                actions: { type: "giveUp", params: giveUpParams("cancel-failed") },
              },
            ],
          },
        },
        backoff: {
          // A cancel for the deadline waits no longer than its grace (see untilWake): the
          // answer of the next cancel or read ends the run if the server has not confirmed.
          after: { untilWake: "requesting" },
        },
        /** Read the final state: cancel raced with completion, or the cancel is still landing. */
        confirming: {
          invoke: {
            id: "confirm",
            src: "retrieveResponse",
            input: requestInput,
            onDone: [
              finishOnVerdict,
              deadlineEndsCancel,
              { target: "backoff", actions: { type: "schedulePoll", params: {} } },
            ],
            onError: [
              { guard: "hasProvisionalResult", target: "#run.done" },
              deadlineEndsCancel,
              {
                guard: { type: "canRetry", params: failureParams },
                target: "backoff",
                actions: { type: "scheduleRetry", params: failureParams },
              },
              {
                target: "#run.done",
                actions: { type: "giveUp", params: giveUpParams("cancel-failed") },
              },
            ],
          },
        },
      },
    },
    done: { type: "final", entry: "dropRequest" },
  },
});

/** Input of the actors that act on the run's response (retrieve, cancel), with their timeout. */
function requestInput({ context }: { context: RunContext }) {
  return { responseId: context.responseId as string, timeoutMs: requestTimeout(context) };
}

/** Params of a guard on a retrieve's answer: the response's status. */
function retrievedStatus({ event }: { event: { output: RetrieveResult } }) {
  return { status: event.output.response.status };
}

/** Params of an action on a retrieve's answer: the response. */
function retrievedResponse({ event }: { event: { output: RetrieveResult } }) {
  return { response: event.output.response };
}

/** Params of a guard or action on a promise actor's rejection: the failure it carries. */
function failureParams({ event }: { event: { error: unknown } }) {
  return { failure: failureOf(event.error) };
}

/** Params of `giveUp` on a promise actor's rejection. */
function giveUpParams(reason: GiveUpReason) {
  return ({ event }: { event: { error: unknown } }) => ({
    reason,
    failure: failureOf(event.error),
  });
}

/** A promise actor's rejection, as the `ClientFailure` the run actors throw. */
function failureOf(error: unknown): ClientFailure {
  if (typeof error === "object" && error !== null && "kind" in error && "message" in error) {
    return error as ClientFailure;
  }
  return { kind: "protocol", message: error instanceof Error ? error.message : String(error) };
}

/** A `stream.events` batch, as the params of its guards and actions. */
function batchOf({ event }: { event: RunEvent }): { events: readonly ResponseStreamEvent[] } {
  return { events: event.type === "stream.events" ? event.events : [] };
}

/**
 * The terminal event of a batch the `reachesTerminalEvent` guard let through (a batch holds at
 * most one: the stream ends with it).
 */
function terminalEventOf(
  events: readonly ResponseStreamEvent[],
): Extract<ResponseStreamEvent, { kind: "terminal" }> {
  for (const event of events) if (event.kind === "terminal") return event;
  throw new Error("the batch has no terminal event");
}

/**
 * The run machine bound to a client.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const machine = createRunMachine(openAIResponsesClient(new OpenAI()));
 * const actor = createActor(machine, { input: { runId: "run_1", mode: "stream", request } });
 * actor.start();
 * actor.send({ type: "run.start" });
 * ```
 */
export function createRunMachine(client: ResponsesClient) {
  return runMachine.provide({ actors: createRunActors(client) });
}

export type RunMachine = typeof runMachine;
