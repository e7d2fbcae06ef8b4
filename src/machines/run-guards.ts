/**
 * The run machine's guards, registered by name in its `setup`. Each reads the context and, for
 * a decision on an actor's answer, the params the transition maps from its event (see
 * `run-params.ts`): a guard never digs in an event itself, so the machine file says what each
 * decision looks at.
 */
import {
  type ClientFailure,
  isTransient,
  provesNothingCreated,
} from "../services/client-failure.js";
import {
  isTerminalStatus,
  type ResponseState,
  type ResponseStatus,
} from "../services/responses-client.js";
import { cancelGraceEnd } from "./run-context.js";
import type { RunContext } from "./run-types.js";
import type { BatchReading } from "./stream-batch.js";

/** What a guard is given by XState and reads: the context. */
interface GuardArgs {
  context: RunContext;
}

/**
 * The guards by name, as the machine's `setup({ guards })` registers them.
 *
 * @example
 * ```ts
 * { guard: { type: "canRetry", params: failureParams }, target: "backoff" } // in a state's onError
 * ```
 */
export const runGuards = {
  isStreamMode: ({ context }: GuardArgs) => context.mode === "stream",
  hasResponse: ({ context }: GuardArgs) => context.responseId !== null,
  isCancelRequested: ({ context }: GuardArgs) => context.cancelRequested !== null,
  isQueued: ({ context }: GuardArgs) => context.status === "queued",
  isTerminal: (_: GuardArgs, params: { status: ResponseStatus }) => isTerminalStatus(params.status),
  isFinalWithUsage: (_: GuardArgs, params: { response: ResponseState }) =>
    isTerminalStatus(params.response.status) && params.response.usage !== null,
  hasProvisionalResult: ({ context }: GuardArgs) => context.result !== null,
  /** Still queued past the queued deadline, and configured to `action` on it. */
  isStuckQueued: (
    { context }: GuardArgs,
    params: { status: ResponseStatus; action: "cancel" | "fail" },
  ) =>
    params.status === "queued" &&
    context.options.onStuckQueued === params.action &&
    context.queuedDeadlineAt !== null &&
    Date.now() >= context.queuedDeadlineAt,
  stuckQueuedCancels: ({ context }: GuardArgs) => context.options.onStuckQueued === "cancel",
  stuckQueuedFails: ({ context }: GuardArgs) => context.options.onStuckQueued === "fail",
  cancelsOnDeadline: ({ context }: GuardArgs) => context.options.onDeadline === "cancel",
  deadlineCancels: ({ context }: GuardArgs) =>
    context.options.onDeadline === "cancel" && context.responseId !== null,
  canRetry: ({ context }: GuardArgs, params: { failure: ClientFailure }) =>
    isTransient(params.failure) && context.attempts + 1 < context.options.retry.maxAttempts,
  /** A create may be retried only when the failure proves nothing was created. */
  canRetryCreate: ({ context }: GuardArgs, params: { failure: ClientFailure }) =>
    isTransient(params.failure) &&
    provesNothingCreated(params.failure) &&
    context.attempts + 1 < context.options.retry.maxAttempts,
  /** A failed create that may have created a response on the server. */
  mayHaveCreated: (_: GuardArgs, params: { failure: ClientFailure }) =>
    !provesNothingCreated(params.failure),
  isNotFound: (_: GuardArgs, params: { failure: ClientFailure }) =>
    params.failure.kind === "not-found",
  isTransientFailure: (_: GuardArgs, params: { failure: ClientFailure }) =>
    isTransient(params.failure),
  cannotStream: (_: GuardArgs, params: { failure: ClientFailure }) =>
    params.failure.kind === "replay-expired" || params.failure.kind === "not-streamable",
  isAlreadyFinished: (_: GuardArgs, params: { failure: ClientFailure }) =>
    params.failure.kind === "already-finished",
  /** Every event of the batch was processed before (a replay from an earlier cursor). */
  isReplayedBatch: (_: GuardArgs, params: { reading: BatchReading }) =>
    params.reading.accepted.length === 0 && params.reading.end === null,
  /** The batch reaches the terminal event in order: the service's verdict. */
  reachesTerminalEvent: (_: GuardArgs, params: { reading: BatchReading }) =>
    params.reading.end?.kind === "terminal",
  /** The batch skips an event: what follows the gap is not trusted. */
  reachesGap: (_: GuardArgs, params: { reading: BatchReading }) =>
    params.reading.end?.kind === "gap",
  resumesExhausted: ({ context }: GuardArgs) =>
    context.resumeAttempts >= context.options.maxResumeAttempts,
  /** A cancel the deadline asked for has had its grace: the run ends, confirmed or not. */
  cancelGraceOver: ({ context }: GuardArgs) => {
    const end = cancelGraceEnd(context);
    return end !== null && Date.now() >= end;
  },
  recreatesOnRestore: ({ context }: GuardArgs) =>
    context.options.onUnknownCreate === "recreate" && context.request !== null,
};
