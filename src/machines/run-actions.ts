/**
 * The run machine's actions, registered by name in its `setup`. They keep the context (the
 * cursor, the counters, the waits as absolute times, the result) and emit what consumers
 * receive (`delta`, `status`, `segment`). Like the guards, they take what they need of an
 * event as params, mapped by the transition (see `run-params.ts`).
 */
import {
  type Assigner,
  assign,
  type EventObject,
  emit,
  enqueueActions,
  type ParameterizedObject,
} from "xstate";
import { type ClientFailure, serverWait } from "../services/client-failure.js";
import type { ResponseState, ResponseStatus } from "../services/responses-client.js";
import { backoffDelay, resumeDelay } from "./backoff.js";
import type { RunActors } from "./run-actors.js";
import { resultOf } from "./run-context.js";
import { openedStreamOf } from "./run-params.js";
import type {
  CancelCause,
  GiveUpReason,
  InterruptionReason,
  RunContext,
  RunEmitted,
  RunMachineEvent,
} from "./run-types.js";
import type { BatchReading } from "./stream-batch.js";

type Params = ParameterizedObject["params"] | undefined;

/** A stream (re)opened, or given up for polling: what a `segment` says. */
export interface SegmentParams {
  kind: "initial" | "continuation" | "replay" | "poll-fallback";
  startingAfter: number | null;
}

/** The actors an action may spawn, as `setup({ actors })` provides them. */
type RunProvidedActor = {
  [K in keyof RunActors]: { src: K; logic: RunActors[K]; id: string | undefined };
}[keyof RunActors];

/** `assign` typed for the run machine; its params are the type of the assigner's second argument. */
function assignRun<P extends Params = undefined>(
  assigner: Assigner<RunContext, RunMachineEvent, P, RunMachineEvent, never>,
) {
  return assign<RunContext, RunMachineEvent, P, RunMachineEvent, never>(assigner);
}

type EnqueueArgs = Parameters<
  Parameters<
    typeof enqueueActions<
      RunContext,
      RunMachineEvent,
      undefined,
      RunMachineEvent,
      RunProvidedActor,
      never,
      never,
      never,
      RunEmitted
    >
  >[0]
>[0];

/**
 * Emits the part of `text` (the response's whole output so far) past what was delivered, with
 * its end offset; true when there was any. A run that does not know its offsets (attached by
 * token, `deliveredChars: null`) emits nothing here: its stream deltas carried the text.
 */
function emitUndelivered(
  { context, enqueue }: EnqueueArgs,
  text: string,
  source: "poll" | "final",
): boolean {
  const delivered = context.deliveredChars;
  if (delivered === null || text.length <= delivered) return false;
  enqueue.emit({ type: "delta", text: text.slice(delivered), chars: text.length, source });
  return true;
}

/** `enqueueActions` typed for the run machine (assign, emit, spawn; no named actions). */
function enqueueRun<P extends Params = undefined>(collect: (args: EnqueueArgs, params: P) => void) {
  return enqueueActions<
    RunContext,
    RunMachineEvent,
    P,
    RunMachineEvent,
    RunProvidedActor,
    never,
    never,
    never,
    RunEmitted
  >(collect);
}

/**
 * The actions by name, as the machine's `setup({ actions })` registers them.
 *
 * @example
 * ```ts
 * { target: "#run.cancelling", actions: { type: "requestCancel", params: { cause: "consumer" } } }
 * ```
 */
export const runActions = {
  /** A run with a deadline gets its timer (a child: it must survive a restore). */
  armDeadline: enqueueRun(({ context, enqueue }) => {
    if (context.deadlineAt === null) return;
    enqueue.spawnChild("sleepUntil", { id: "deadline", input: { until: context.deadlineAt } });
  }),
  /** The response id is known: keep it (the moment to persist), drop the request. */
  recordCreated: enqueueRun(({ context, enqueue }, params: { response: ResponseState }) => {
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
  recordStreamStart: assignRun((_, params: { sequenceNumber: number }) => ({
    sequenceNumber: params.sequenceNumber,
  })),
  /**
   * A stream opened for this run that the transition does not read (a cancel asked for while
   * the create was answering): closed here, not left open until the server ends it.
   */
  closeOpenedStream: ({ event }: { event: EventObject }) => openedStreamOf(event)?.abort(),
  countCreate: assignRun(({ context }) => ({ creates: context.creates + 1 })),
  /** Emits the output text not yet delivered (polling sees it grow between polls). */
  deliverPolledText: enqueueRun(
    (args, params: { response: ResponseState; source: "poll" | "final" }) => {
      const text = params.response.outputText;
      if (emitUndelivered(args, text, params.source)) {
        args.enqueue.assign({ deliveredChars: text.length });
      }
    },
  ),
  recordStatus: enqueueRun(({ context, enqueue }, params: { status: ResponseStatus }) => {
    if (params.status === context.status) return;
    enqueue.assign({ status: params.status });
    enqueue.emit({ type: "status", status: params.status });
  }),
  schedulePoll: assignRun(({ context }, params: { pollAfterMs?: number }) => ({
    attempts: 0,
    lastFailure: null,
    // The server's hint is bounded here, whatever the port parsed (serverWait).
    wakeAt:
      Date.now() + Math.max(context.options.pollIntervalMs, serverWait(params.pollAfterMs) ?? 0),
  })),
  pollNow: assignRun(() => ({ wakeAt: Date.now() })),
  scheduleRetry: assignRun(({ context }, params: { failure: ClientFailure }) => {
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
   * Takes a batch's accepted events (its one reading: replays skipped, up to a gap or the
   * terminal event) and advances the cursor once. Consecutive deltas are handed to consumers
   * as one piece, tagged with its last sequence number (resume after it).
   */
  acceptStreamEvents: enqueueRun(({ context, enqueue }, params: { reading: BatchReading }) => {
    const { accepted } = params.reading;
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
  }),
  markInterrupted: assignRun(
    (_, params: { reason: InterruptionReason; failure?: ClientFailure }) => ({
      interruption: params.reason,
      ...(params.failure ? { lastFailure: params.failure } : {}),
    }),
  ),
  scheduleResume: assignRun(({ context }) => ({
    wakeAt:
      Date.now() +
      resumeDelay(
        context.resumeAttempts,
        context.options.retry,
        // Only a failed resume's own answer may ask for a wait: an older failure's does not.
        context.interruption === "resume-failed" ? context.lastFailure?.retryAfterMs : undefined,
      ),
  })),
  countResume: assignRun(({ context }) => ({
    resumes: context.resumes + 1,
    resumeAttempts: context.resumeAttempts + 1,
  })),
  emitSegment: emit<RunContext, RunMachineEvent, SegmentParams, RunMachineEvent, RunEmitted>(
    (_, params) => ({
      type: "segment" as const,
      kind: params.kind,
      ...(params.startingAfter !== null ? { startingAfter: params.startingAfter } : {}),
    }),
  ),
  requestCancel: assignRun((_, params: { cause: CancelCause }) => ({
    cancelRequested: params.cause,
  })),
  /** The service gave its verdict: deliver what text is missing and keep the result. */
  finish: enqueueRun((args, params: { response: ResponseState }) => {
    const { context, enqueue } = args;
    const text = params.response.outputText;
    const delivered = context.deliveredChars;
    emitUndelivered(args, text, "final");
    if (params.response.status !== context.status) {
      enqueue.emit({ type: "status", status: params.response.status });
    }
    enqueue.assign({
      status: params.response.status,
      deliveredChars: delivered === null ? null : Math.max(delivered, text.length),
      result: resultOf(context, params.response, context.cancelRequested),
    });
  }),
  keepProvisionalResult: assignRun(({ context }, params: { response: ResponseState }) => ({
    result: resultOf(context, params.response, context.cancelRequested),
  })),
  /** A cancel before anything was created: nothing to tell the server. */
  finishCancelledLocally: assignRun(({ context }) => ({
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
  giveUp: assignRun(
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
  dropRequest: assignRun(() => ({ request: null })),
};
