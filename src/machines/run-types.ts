/**
 * The data of the run machine: its input, options, context, events and result. All of it is
 * plain JSON, so a snapshot persists as it is and holds no client and no secret.
 */
import type { DoneActorEvent } from "xstate";
import type { ClientFailure } from "../services/client-failure.js";
import type {
  CreateRequest,
  ResponseState,
  ResponseStatus,
  ResponseStreamEvent,
  ResponseUsage,
} from "../services/responses-client.js";
import type { BatchReading } from "./stream-batch.js";

/** How a run follows its response: polling `retrieve`, or consuming the event stream. */
export type RunMode = "poll" | "stream";

/** What to do when a watchdog fires. */
export type WatchdogAction = "cancel" | "fail" | "wait";

/** Retry and backoff policy for transient failures (429, 5xx, broken connections). */
export interface RetryPolicy {
  /** Consecutive failures tolerated before giving up. */
  maxAttempts: number;
  /** First backoff; doubles with each attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Fraction of each delay taken off at random, so that many runs do not retry in step. */
  jitter: number;
}

/** The options of a run. Everything has a default; see {@link DEFAULT_RUN_OPTIONS}. */
export interface RunOptions {
  /** Pause between two polls (a server's `openai-poll-after-ms` hint wins when larger). */
  pollIntervalMs: number;
  retry: RetryPolicy;
  /**
   * Consecutive failed resumptions of a stream before falling back to polling. Resumptions
   * back off more gently than `retry` (1.5× per attempt from `retry.baseDelayMs`, at most
   * 250 ms at first and 2 s in all): each is preceded by a retrieve that ends the run at once
   * if the response has finished.
   */
  maxResumeAttempts: number;
  /**
   * Longest wait for the answer of any other single request: a poll (`retrieve`), a `cancel`,
   * the headers of a resumed stream (there no more than `firstEventTimeoutMs` either). Past it
   * the request fails as `timeout` ("timed out"), a transient failure, retried as any other.
   * Default 30 s; a snapshot saved before this option existed reads the default.
   */
  requestTimeoutMs: number;
  /**
   * Once the run's deadline has passed and its cancel is under way, how long the server may
   * take to confirm it. Past it the run ends `gave-up` / `deadline` with
   * `cancelConfirmed: false`, whatever the server still answers. Default 10 s.
   */
  cancelGraceMs: number;
  /** Longest wait for a create's answer (its JSON reply, or a stream's `response.created`). */
  createTimeoutMs: number;
  /**
   * No event at all this long after a stream opens: interrupt and resume. Also the longest wait
   * for a resumed stream's headers.
   */
  firstEventTimeoutMs: number;
  /** No event this long in a flowing stream (the SDK's timeout does not cover a silent body). */
  idleTimeoutMs: number;
  /** Longest time a response may stay `queued` (null: no limit). */
  queuedTimeoutMs: number | null;
  onStuckQueued: WatchdogAction;
  /** Longest time the whole run may take, from its start (null: no limit). */
  deadlineMs: number | null;
  onDeadline: Exclude<WatchdogAction, "wait">;
  /**
   * A run restored from a snapshot taken while its create call was in flight cannot know
   * whether the response was created. "fail" (the default) ends it with `create-unknown`;
   * "recreate" creates again (the run id in `metadata` lets a duplicate be recognised).
   */
  onUnknownCreate: "fail" | "recreate";
}

/**
 * The options a run has unless it asks for others. A run's `options` are merged over these,
 * field by field (`retry` too), and a snapshot saved before an option existed reads its default.
 *
 * @example
 * ```ts
 * const patient = { ...DEFAULT_RUN_OPTIONS.retry, maxAttempts: 20 };
 * startRun(host, { model: "o3", input: "…" }, { options: { retry: patient, deadlineMs: 600_000 } });
 * ```
 */
export const DEFAULT_RUN_OPTIONS: RunOptions = {
  pollIntervalMs: 1_000,
  retry: { maxAttempts: 8, baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0.25 },
  maxResumeAttempts: 8,
  requestTimeoutMs: 30_000,
  cancelGraceMs: 10_000,
  createTimeoutMs: 60_000,
  firstEventTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  queuedTimeoutMs: null,
  onStuckQueued: "cancel",
  deadlineMs: null,
  onDeadline: "cancel",
  onUnknownCreate: "fail",
};

/** Input of a run that creates a new response. */
export interface NewRunInput {
  runId: string;
  mode: RunMode;
  request: CreateRequest;
  options?: Partial<RunOptions>;
  /** Epoch ms the run is considered started at (default: now). */
  now?: number;
}

/** Input of a run that follows an existing response (from a continuation token). */
export interface AttachedRunInput {
  runId: string;
  mode: RunMode;
  responseId: string;
  /** Last sequence number already delivered; stream mode resumes after it. */
  sequenceNumber?: number;
  options?: Partial<RunOptions>;
  now?: number;
}

/**
 * What a run machine actor starts from: a request to create (a new response), or a response
 * to follow (from a continuation token), in `poll` or `stream` mode.
 *
 * @example
 * ```ts
 * const fresh: RunInput = { runId: "run_1", mode: "stream", request: { model: "o3", input: "…" } };
 * const follow: RunInput = { runId: "run_2", mode: "stream", responseId: "resp_1", sequenceNumber: 41 };
 * createActor(createRunMachine(client), { input: fresh }).start().send({ type: "run.start" });
 * ```
 */
export type RunInput = NewRunInput | AttachedRunInput;

/** Why a stream stopped before its terminal event. */
export type InterruptionReason =
  | "dropped"
  | "ended-early"
  | "stalled"
  | "no-first-event"
  | "gap"
  | "consumer"
  | "resume-failed";

/** Why a run ended without the service's verdict. */
export type GiveUpReason =
  | "create-failed"
  | "create-unknown"
  | "not-found"
  | "retries-exhausted"
  | "rejected"
  | "stuck-queued"
  | "deadline"
  | "cancel-failed";

/** Who asked for a cancel. */
export type CancelCause = "consumer" | "stuck-queued" | "deadline";

/** How a run ended. `completed` … `incomplete` are the service's word; `gave-up` is baton's. */
export type RunOutcome = "completed" | "failed" | "cancelled" | "incomplete" | "gave-up";

/** The result of a finished run. */
export interface RunResult {
  outcome: RunOutcome;
  runId: string;
  /** Absent only when no response was ever created. */
  responseId?: string;
  /** The final `output_text` (what a consumer has received, in full, once the run is done). */
  text: string;
  usage: ResponseUsage | null;
  /** The service's error for `failed`. */
  error: { code: string; message: string } | null;
  incompleteReason: string | null;
  /** For `cancelled`: who asked. */
  cancelledBy?: CancelCause;
  /** For `gave-up`: why, and the last failure met. */
  reason?: GiveUpReason;
  failure?: ClientFailure;
  /**
   * For `gave-up` / `deadline`: false when the deadline ended the run while its cancel was not
   * confirmed (the server still said `queued` / `in_progress`, or did not answer): the response
   * may still be running, and billed, on the server.
   */
  cancelConfirmed?: boolean;
}

/** The continuation state: what is needed to carry on in another process. */
export interface RunCursor {
  responseId: string;
  /** Sequence number of the last stream event processed (stream mode). */
  sequenceNumber?: number;
}

/**
 * The run machine's context: everything needed to carry on, in another actor or process, and
 * nothing else (no client, no secret, no stream). Plain JSON: a snapshot persists as it is.
 *
 * @example
 * ```ts
 * const { responseId, sequenceNumber, deliveredChars } = actor.getSnapshot().context;
 * // resume after `sequenceNumber`: nothing before it is delivered again
 * ```
 */
export interface RunContext {
  runId: string;
  mode: RunMode;
  options: RunOptions;
  /**
   * The create request; dropped once the response id is known (saves stay small), and when the
   * run ends without one (a failed create that gave up: the prompt is not kept in the store).
   */
  request: CreateRequest | null;
  responseId: string | null;
  /** Last stream event processed, contiguous from 0: the cursor a resume starts after. */
  sequenceNumber: number | null;
  /**
   * Characters of output text delivered to consumers (UTF-16 units); null when unknown (a run
   * attached to a stream mid-way by token), and then no missing text is filled in at the end.
   */
  deliveredChars: number | null;
  status: ResponseStatus | null;
  /** Epoch ms deadlines: absolute, so that a restored run waits only the time left. */
  deadlineAt: number | null;
  queuedDeadlineAt: number | null;
  /** When the current wait ends: the next poll, retry or resumption (one field: one wait at a time). */
  wakeAt: number | null;
  /** Consecutive failures of the current kind of call. */
  attempts: number;
  /** Consecutive resumptions of the stream that did not deliver an event. */
  resumeAttempts: number;
  /** How many times the stream was resumed in all. */
  resumes: number;
  /** Create calls this run made (more than one only with `onUnknownCreate: "recreate"`). */
  creates: number;
  interruption: InterruptionReason | null;
  lastFailure: ClientFailure | null;
  cancelRequested: CancelCause | null;
  result: RunResult | null;
}

/** Events a user sends to a run. */
export type RunControlEvent =
  | { type: "run.start" }
  /** Cancel the response on the server (idempotent). */
  | { type: "run.cancel" }
  /** Stop reading the stream; the response keeps going on the server. */
  | { type: "run.disconnect" }
  /** Reconnect a disconnected stream. */
  | { type: "run.resume" }
  /** Sent by `restoreRunActor` after a snapshot is restored: restart work from context. */
  | { type: "run.restored" };

/** Events the stream actor sends to the machine. */
export type StreamActorEvent =
  /**
   * Events received together (one or more), in the order the stream sent them, and their one
   * reading against the run's cursor (`readBatch`), which the machine's guards and actions read.
   */
  | { type: "stream.events"; events: readonly ResponseStreamEvent[]; reading: BatchReading }
  | { type: "stream.closed" }
  | { type: "stream.failed"; failure: ClientFailure }
  | { type: "stream.stalled"; reason: "stalled" | "no-first-event" }
  | { type: "watchdog.queued" };

/**
 * The events the run machine takes: a user's controls (`run.*`) and its stream actor's reports
 * (`stream.*`, `watchdog.queued`). Its invoked actors' answers come as XState's own
 * `xstate.done.actor.<id>` / `xstate.error.actor.<id>`.
 *
 * @example
 * ```ts
 * actor.send({ type: "run.start" });
 * actor.send({ type: "run.disconnect" }); // stop reading; the response goes on
 * actor.send({ type: "run.resume" });
 * ```
 */
export type RunEvent = RunControlEvent | StreamActorEvent;

/**
 * The events the run machine declares: {@link RunEvent}, and the done event of its deadline
 * child, which is spawned (only runs with a deadline have one) rather than invoked, so XState
 * cannot infer it.
 */
export type RunMachineEvent = RunEvent | DoneActorEvent<void, "deadline">;

/** Events a run emits to its consumers (`actor.on(type, handler)`). */
export type RunEmitted =
  | {
      /**
       * Output text, in order, each piece exactly once: consecutive delta events received
       * together, or the growth polling found.
       */
      type: "delta";
      text: string;
      /** The last stream event the piece covers; text found by polling has none. */
      sequenceNumber?: number;
      /**
       * Characters (UTF-16 units) of the output text up to the end of this piece: the context's
       * `deliveredChars` after it, the one place the text is counted. Absent when the run does
       * not know what came before it (a stream attached by token alone).
       */
      chars?: number;
      source: "stream" | "poll" | "final";
    }
  | {
      /**
       * A stream (re)opened. `continuation`: events after `startingAfter`; `replay`: from the
       * start, with events already delivered skipped; `poll-fallback`: the stream cannot be
       * resumed, the rest comes by polling.
       */
      type: "segment";
      kind: "initial" | "continuation" | "replay" | "poll-fallback";
      startingAfter?: number;
    }
  | { type: "status"; status: ResponseStatus };

export type { ResponseState };
