/**
 * The actors the run machine invokes, built over a {@link ResponsesClient}. Each is registered
 * by name in the machine's `setup`, so `machine.provide({ actors: createRunActors(client) })`
 * swaps the client (another process, another key, the emulator, a test double).
 *
 * Promise actors reject with a classified {@link ClientFailure}, never with an SDK error, so the
 * machine's guards decide on plain data.
 */
import { type EventObject, fromCallback, fromPromise } from "xstate";
import {
  type ClientFailure,
  classifyClientError,
  ProtocolError,
} from "../services/client-failure.js";
import type {
  CreateRequest,
  ResponseEventStream,
  ResponseState,
  ResponseStreamEvent,
  ResponsesClient,
  RetrieveResult,
} from "../services/responses-client.js";
import type { StreamActorEvent } from "./run-types.js";

/** The longest single `setTimeout` Node accepts; longer waits are chained. */
export const MAX_TIMER_MS = 2_147_483_647;
/**
 * The most events handed to the machine at once: bounds how long a backlog (a replay of a long
 * answer) holds back its first text, and the size of one delta.
 */
const MAX_STREAM_BATCH = 256;
/**
 * Events at or before the furthest sequence number a stream has reached that it may send
 * (beyond a full replay from 0, which a server ignoring `starting_after` sends once) before it
 * is taken as broken: a stream that repeats old events forever never ends otherwise.
 */
export const MAX_REPEATED_EVENTS = 100;
/** An opened stream not picked up by the streaming state within this time is closed. */
const PARKED_STREAM_TTL_MS = 30_000;

export interface CreatedStream {
  response: ResponseState;
  sequenceNumber: number;
}

export interface ConsumeStreamInput {
  runId: string;
  responseId: string;
  startingAfter: number | null;
  firstEventTimeoutMs: number;
  idleTimeoutMs: number;
  /** Epoch ms after which a response still `queued` trips the watchdog (null: never). */
  queuedDeadlineAt: number | null;
}

/**
 * Streams opened by one actor (`started`, `resumed`) and read by another (`streaming`): an
 * HTTP stream cannot outlive the state that invoked it, so it is parked here, keyed by run id,
 * for the next state to take. Nothing parked here is ever persisted.
 */
class ParkedStreams {
  readonly #streams = new Map<string, { stream: ResponseEventStream; timer: NodeJS.Timeout }>();

  park(runId: string, stream: ResponseEventStream): void {
    this.take(runId)?.abort();
    const timer = setTimeout(() => this.take(runId)?.abort(), PARKED_STREAM_TTL_MS);
    timer.unref();
    this.#streams.set(runId, { stream, timer });
  }

  take(runId: string): ResponseEventStream | undefined {
    const parked = this.#streams.get(runId);
    if (!parked) return undefined;
    clearTimeout(parked.timer);
    this.#streams.delete(runId);
    return parked.stream;
  }
}

/** Resolves at `until` (epoch ms); never, when `until` is null. Survives restore: absolute. */
export const sleepUntil = fromPromise<void, { until: number | null }>(({ input, signal }) => {
  return new Promise<void>((resolve) => {
    if (input.until === null) return;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const left = (input.until as number) - Date.now();
      if (left <= 0) return resolve();
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
    arm();
  });
});

/**
 * A connection that must answer within `ms`: its signal aborts when `outer` does or when the
 * time is up, until `answered()` is called. After that the connection lives on (a stream
 * handed to the next state) and only its own abort closes it.
 */
function boundedConnection(outer: AbortSignal, ms: number) {
  const connection = new AbortController();
  let timedOut = false;
  const answered = () => {
    clearTimeout(timer);
    outer.removeEventListener("abort", abort);
  };
  // An abort also ends the wait: a timer left behind would keep the process alive.
  const abort = () => {
    answered();
    connection.abort();
  };
  const timer = setTimeout(
    () => {
      timedOut = !outer.aborted;
      abort();
    },
    Math.min(Math.max(0, ms), MAX_TIMER_MS),
  );
  outer.addEventListener("abort", abort, { once: true });
  return {
    signal: connection.signal,
    answered,
    /** True once the time ran out (not when the caller aborted). */
    get timedOut() {
      return timedOut;
    },
  };
}

/**
 * A request that did not answer in time: a `timeout` failure (transient; it says "timed out",
 * not "cannot reach": the server may well be reachable, and may have acted on the request).
 */
function timedOut(what: string, ms: number): ClientFailure {
  return { kind: "timeout", message: `the ${what} timed out: no answer within ${ms} ms` };
}

async function classified<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isTimeoutFailure(err)) throw err;
    throw classifyClientError(err) satisfies ClientFailure;
  }
}

/** A failure this module made for a request that timed out: passed on as it is. */
function isTimeoutFailure(err: unknown): err is ClientFailure {
  return (
    typeof err === "object" &&
    err !== null &&
    !(err instanceof Error) &&
    (err as { kind?: unknown }).kind === "timeout"
  );
}

/** `call` over a connection bounded by `ms`; a timeout rejects as {@link timedOut}. */
async function bounded<T>(
  what: string,
  outer: AbortSignal,
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const connection = boundedConnection(outer, ms);
  try {
    return await call(connection.signal);
  } catch (err) {
    if (connection.timedOut) throw timedOut(what, ms);
    throw classifyClientError(err) satisfies ClientFailure;
  } finally {
    connection.answered();
  }
}

/**
 * The actors of the run machine, bound to a client.
 *
 * @example
 * ```ts
 * const machine = runMachine.provide({ actors: createRunActors(openAIResponsesClient(openai)) });
 * ```
 */
export function createRunActors(client: ResponsesClient) {
  const parked = new ParkedStreams();

  return {
    sleepUntil,

    /** The create call; a server that never answers is given up on after `timeoutMs`. */
    createResponse: fromPromise<ResponseState, { request: CreateRequest; timeoutMs: number }>(
      ({ input, signal }) =>
        bounded("create", signal, input.timeoutMs, (bounded) =>
          client.create(input.request, bounded),
        ),
    ),

    /**
     * Opens the create stream and reads up to `response.created`, which names the response;
     * given up on when that event has not come within `timeoutMs`.
     */
    createResponseStream: fromPromise<
      CreatedStream,
      { runId: string; request: CreateRequest; timeoutMs: number }
    >(({ input, signal }) =>
      classified(async () => {
        const connection = boundedConnection(signal, input.timeoutMs);
        let stream: ResponseEventStream;
        let first: IteratorResult<ResponseStreamEvent>;
        let iterator: AsyncIterator<ResponseStreamEvent>;
        try {
          stream = await client.createStream(input.request, connection.signal);
          iterator = stream[Symbol.asyncIterator]();
          first = await iterator.next();
        } catch (err) {
          if (connection.timedOut) throw timedOut("create", input.timeoutMs);
          throw err;
        } finally {
          connection.answered();
        }
        if (first.done || first.value.kind !== "lifecycle") {
          stream.abort();
          // An aborted SDK stream ends quietly: say why it ended.
          if (connection.timedOut) {
            throw {
              kind: "timeout",
              message: `the create timed out: no response.created within ${input.timeoutMs} ms`,
            } satisfies ClientFailure;
          }
          throw new ProtocolError("the stream did not start with response.created");
        }
        // Hand the rest of the same iterator to the streaming state.
        parked.park(input.runId, {
          abort: () => stream.abort(),
          [Symbol.asyncIterator]: () => iterator,
        });
        if (signal.aborted) parked.take(input.runId)?.abort();
        return { response: first.value.response, sequenceNumber: first.value.sequenceNumber };
      }),
    ),

    /** A poll (or a check, or a cancel's confirmation), given up on after `timeoutMs`. */
    retrieveResponse: fromPromise<RetrieveResult, { responseId: string; timeoutMs: number }>(
      ({ input, signal }) =>
        bounded("poll", signal, input.timeoutMs, (bounded) =>
          client.retrieve(input.responseId, bounded),
        ),
    ),

    /**
     * Reopens the stream after the cursor (or from the start when there is none). A server that
     * accepts the connection but never answers is given up on after `headersTimeoutMs`.
     */
    openStream: fromPromise<
      void,
      { runId: string; responseId: string; startingAfter: number | null; headersTimeoutMs: number }
    >(({ input, signal }) =>
      classified(async () => {
        // The connection outlives this actor (the streaming state reads it).
        const connection = boundedConnection(signal, input.headersTimeoutMs);
        let stream: ResponseEventStream;
        try {
          stream = await client.streamFrom(
            input.responseId,
            input.startingAfter ?? undefined,
            connection.signal,
          );
        } catch (err) {
          if (connection.timedOut) throw timedOut("resume", input.headersTimeoutMs);
          throw err;
        } finally {
          connection.answered();
        }
        if (signal.aborted) return stream.abort();
        parked.park(input.runId, stream);
      }),
    ),

    /** `responses.cancel`, given up on after `timeoutMs`. */
    cancelResponse: fromPromise<ResponseState, { responseId: string; timeoutMs: number }>(
      ({ input, signal }) =>
        bounded("cancel", signal, input.timeoutMs, (bounded) =>
          client.cancel(input.responseId, bounded),
        ),
    ),

    /**
     * Reads a stream to its end and reports every event, and how the stream stopped, to the
     * machine. Also the idle and first-event watchdogs: the SDK's timeout covers only the wait
     * for headers, so a silent body would otherwise hang forever.
     */
    consumeStream: fromCallback<EventObject, ConsumeStreamInput>(({ input, sendBack }) => {
      const send = (event: StreamActorEvent) => sendBack(event);
      let stream = parked.take(input.runId);
      let stopped = false;
      const connection = new AbortController();
      let sawEvent = false;
      let lastEventAt = Date.now();
      let queued = true;
      // Progress is a sequence number beyond any seen: only progress feeds the watchdogs.
      let furthest = input.startingAfter ?? -1;
      let progressed = false;
      let repeated = 0;
      const repeatsAllowed = furthest + 1 + MAX_REPEATED_EVENTS;

      const stop = () => {
        stopped = true;
        clearImmediate(flushing);
        clearTimeout(idleTimer);
        clearTimeout(queuedTimer);
        connection.abort();
        stream?.abort();
      };
      // One timer, re-armed only when it fires: cheaper than resetting it on every event.
      const checkIdle = () => {
        const limit = sawEvent ? input.idleTimeoutMs : input.firstEventTimeoutMs;
        const left = lastEventAt + limit - Date.now();
        if (left > 0) {
          idleTimer = setTimeout(checkIdle, left);
          return;
        }
        if (stopped) return;
        stop();
        send({ type: "stream.stalled", reason: sawEvent ? "stalled" : "no-first-event" });
      };
      let idleTimer = setTimeout(
        checkIdle,
        Math.min(input.firstEventTimeoutMs, input.idleTimeoutMs),
      );
      let queuedTimer: NodeJS.Timeout | undefined;
      if (input.queuedDeadlineAt !== null) {
        queuedTimer = setTimeout(
          () => {
            if (queued && !stopped) send({ type: "watchdog.queued" });
          },
          Math.min(Math.max(0, input.queuedDeadlineAt - Date.now()), MAX_TIMER_MS),
        );
      }

      // Events are handed over in batches: every event already received when the event loop
      // comes round goes in one `stream.events`, one machine transition per batch rather than
      // per token. While the model is slower than the reader that is one event per batch. A
      // backlog (a replay) is cut in batches of 1, 2, 4 … up to MAX_STREAM_BATCH events, so the
      // first text is not held back. A batch not yet handed over is not lost: the cursor stays
      // before it.
      let batch: ResponseStreamEvent[] = [];
      let batchLimit = 1;
      let flushing: NodeJS.Immediate | undefined;
      const flush = () => {
        clearImmediate(flushing);
        flushing = undefined;
        if (stopped || batch.length === 0) return;
        // Once per batch rather than per event: the watchdogs count in event-loop turns.
        if (progressed) lastEventAt = Date.now();
        progressed = false;
        const events = batch;
        batch = [];
        send({ type: "stream.events", events });
      };

      (async () => {
        if (!stream) {
          stream = await client.streamFrom(
            input.responseId,
            input.startingAfter ?? undefined,
            connection.signal,
          );
          if (stopped) return stream.abort();
        }
        for await (const event of stream) {
          if (stopped) return;
          if (event.sequenceNumber > furthest) {
            furthest = event.sequenceNumber;
            progressed = true;
            sawEvent = true;
          } else if (++repeated > repeatsAllowed) {
            flush();
            if (stopped) return;
            stop();
            send({
              type: "stream.failed",
              failure: {
                kind: "protocol",
                message: `the stream repeated ${repeated} events already received (last #${event.sequenceNumber}, reached #${furthest})`,
              },
            });
            return;
          }
          if (event.kind === "lifecycle" && event.response.status !== "queued") queued = false;
          if (event.kind === "delta") queued = false;
          batch.push(event);
          if (event.kind === "terminal") {
            flush();
            stop();
            return;
          }
          if (batch.length >= batchLimit) {
            batchLimit = Math.min(batchLimit * 2, MAX_STREAM_BATCH);
            flush();
          } else {
            flushing ??= setImmediate(flush);
          }
        }
        flush();
        if (!stopped) {
          stop();
          send({ type: "stream.closed" });
        }
      })().catch((err: unknown) => {
        // What was read before the failure is good: hand it over first.
        flush();
        if (stopped) return;
        stop();
        send({ type: "stream.failed", failure: classifyClientError(err) });
      });

      return stop;
    }),
  };
}

export type RunActors = ReturnType<typeof createRunActors>;
