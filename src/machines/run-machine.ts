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
 * - A stream is opened in one state (`started`, `resumed`) and read in the next (`streaming`):
 *   the opening actor's done event carries it, the reader's invoke takes it from that event,
 *   and neither persists it (see `run-actors.ts`). A transition that does not read it closes it.
 * - Every actor is registered by name and invoked with an explicit id, so that
 *   `machine.provide({ actors: createRunActors(client) })` swaps the client.
 *
 * The pieces the states name live beside this file: guards in `run-guards.ts`, actions in
 * `run-actions.ts`, the params and inputs they are mapped from in `run-params.ts`, the context
 * in `run-context.ts`, the actors in `run-actors.ts`.
 */
import { and, setup } from "xstate";
import { isTransient } from "../services/client-failure.js";
import type { ResponsesClient } from "../services/responses-client.js";
import { MAX_TIMER_MS } from "./backoff.js";
import { runActions } from "./run-actions.js";
import { createRunActors } from "./run-actors.js";
import {
  cancelGraceEnd,
  createTimeout,
  initialContext,
  optionOf,
  withRunTag,
} from "./run-context.js";
import { runGuards } from "./run-guards.js";
import {
  answeredResponse,
  answeredStatus,
  failureOf,
  failureParams,
  giveUpParams,
  openedStreamOf,
  readingOf,
  requestInput,
  retrievedResponse,
  retrievedStatus,
  verdictOf,
} from "./run-params.js";
import type { RunContext, RunEmitted, RunInput, RunMachineEvent, RunResult } from "./run-types.js";

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

/** The consumer cancels a run whose response exists: ask the server. */
const cancelOnServer = {
  target: "#run.cancelling",
  actions: { type: "requestCancel", params: { cause: "consumer" } },
} as const;

/** The consumer cancels a run before anything was created: nothing to tell the server. */
const cancelLocally = { target: "#run.done", actions: "finishCancelledLocally" } as const;

/** The consumer stops reading the stream; the response goes on, and `run.resume` reopens it. */
const disconnectConsumer = {
  target: "#run.interrupted.detached",
  actions: { type: "markInterrupted", params: { reason: "consumer" } },
} as const;

/** The response is gone (deleted, expired, never there): there is nothing more to follow. */
const endWhenNotFound = {
  guard: { type: "isNotFound", params: failureParams },
  target: "#run.done",
  actions: { type: "giveUp", params: giveUpParams("not-found") },
} as const;

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

/**
 * The run machine, without a client: what a saved run is checked and restored against, and
 * what `createRunMachine` binds to one. Its actors reject until a client is provided.
 *
 * @example
 * ```ts
 * import { createActor } from "xstate";
 * const machine = runMachine.provide({ actors: createRunActors(openAIResponsesClient(openai)) });
 * const actor = createActor(machine, { input: { runId: "run_1", mode: "poll", request } });
 * actor.start();
 * actor.send({ type: "run.start" });
 * ```
 */
export const runMachine = setup({
  types: {
    context: {} as RunContext,
    events: {} as RunMachineEvent,
    input: {} as RunInput,
    output: {} as RunResult,
    emitted: {} as RunEmitted,
  },
  actors: createRunActors(noClient),
  guards: runGuards,
  actions: runActions,
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
        "run.cancel": cancelLocally,
      },
    },
    /** The create call. Persisting here is safe: restoring never creates twice by accident. */
    started: {
      on: {
        // Cancelled once the response id is known: there is nothing to cancel before.
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
                actions: { type: "recordCreated", params: answeredResponse },
              },
              {
                guard: { type: "isTerminal", params: answeredStatus },
                target: "#run.done",
                actions: [
                  { type: "recordCreated", params: answeredResponse },
                  { type: "finish", params: answeredResponse },
                ],
              },
              {
                target: "#run.polling",
                actions: { type: "recordCreated", params: answeredResponse },
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
              request: withRunTag(context),
              timeoutMs: createTimeout(context),
            }),
            onDone: [
              {
                guard: "isCancelRequested",
                target: "#run.cancelling",
                actions: [
                  { type: "recordCreated", params: retrievedResponse },
                  // Nobody reads the stream the create opened: close it now.
                  "closeOpenedStream",
                ],
              },
              {
                // The done event carries the opened stream on to the streaming state's reader.
                target: "#run.streaming",
                actions: [
                  { type: "recordCreated", params: retrievedResponse },
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
            "run.cancel": cancelLocally,
            // Nothing was created (a backoff follows only a failure that proves it): restored,
            // the run waits out the rest of its wait (absolute, in context) and creates then,
            // whatever `onUnknownCreate` says of a create that may have gone out.
            "run.restored": { target: "backoff", reenter: true },
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
        "run.cancel": cancelOnServer,
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
                  { type: "recordStatus", params: retrievedStatus },
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
              endWhenNotFound,
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
    /** Reading the stream the state before opened: each batch, read once against the cursor. */
    streaming: {
      invoke: {
        id: "stream",
        src: "consumeStream",
        input: ({ context, event }) => ({
          responseId: context.responseId as string,
          startingAfter: context.sequenceNumber,
          firstEventTimeoutMs: context.options.firstEventTimeoutMs,
          idleTimeoutMs: context.options.idleTimeoutMs,
          queuedDeadlineAt: context.status === "queued" ? context.queuedDeadlineAt : null,
          stream: openedStreamOf(event),
        }),
      },
      on: {
        "stream.events": [
          { guard: { type: "isReplayedBatch", params: readingOf } },
          {
            guard: { type: "reachesTerminalEvent", params: readingOf },
            target: "done",
            actions: [
              { type: "acceptStreamEvents", params: readingOf },
              {
                type: "recordStreamStart",
                params: ({ event }) => ({ sequenceNumber: verdictOf({ event }).sequenceNumber }),
              },
              {
                type: "finish",
                params: ({ event }) => ({ response: verdictOf({ event }).response }),
              },
            ],
          },
          {
            guard: { type: "reachesGap", params: readingOf },
            target: "interrupted",
            actions: [
              { type: "acceptStreamEvents", params: readingOf },
              { type: "markInterrupted", params: { reason: "gap" } },
            ],
          },
          { actions: { type: "acceptStreamEvents", params: readingOf } },
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
        "run.disconnect": disconnectConsumer,
        "run.cancel": cancelOnServer,
        "run.restored": "resumed",
      },
    },
    /**
     * The stream broke. Check (one retrieve), wait (backoff), then resume; a consumer's
     * disconnect waits for it.
     */
    interrupted: {
      on: {
        "run.cancel": cancelOnServer,
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
              endWhenNotFound,
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
          responseId: context.responseId as string,
          startingAfter: context.sequenceNumber,
          headersTimeoutMs: Math.min(
            context.options.firstEventTimeoutMs,
            optionOf(context, "requestTimeoutMs"),
          ),
        }),
        // The done event carries the opened stream on to the streaming state's reader.
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
          endWhenNotFound,
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
        // Leaving before the stream opened stops the opener, which closes what it opened.
        "run.cancel": cancelOnServer,
        "run.disconnect": disconnectConsumer,
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
                guard: { type: "isFinalWithUsage", params: answeredResponse },
                target: "#run.done",
                actions: { type: "finish", params: answeredResponse },
              },
              {
                // Cancelled, but the reply has no usage (as the spec's example): read it back
                // once for the final usage, keeping this reply should that read fail.
                guard: { type: "isTerminal", params: answeredStatus },
                target: "confirming",
                actions: { type: "keepProvisionalResult", params: answeredResponse },
              },
              { target: "confirming" },
            ],
            onError: [
              {
                guard: { type: "isAlreadyFinished", params: failureParams },
                target: "confirming",
              },
              endWhenNotFound,
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

/**
 * The run machine bound to a client: its actors call the Responses API through it. A host
 * builds one per client and shares it between that client's runs (see `machineFor`).
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * import { createActor } from "xstate";
 * const machine = createRunMachine(openAIResponsesClient(new OpenAI()));
 * const actor = createActor(machine, { input: { runId: "run_1", mode: "stream", request } });
 * actor.on("delta", (delta) => process.stdout.write(delta.text));
 * actor.start();
 * actor.send({ type: "run.start" });
 * ```
 */
export function createRunMachine(client: ResponsesClient) {
  return runMachine.provide({ actors: createRunActors(client) });
}

export type RunMachine = typeof runMachine;
