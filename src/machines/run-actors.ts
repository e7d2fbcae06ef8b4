/**
 * The actors the run machine invokes, built over a {@link ResponsesClient}. Each is registered
 * by name in the machine's `setup`, so `machine.provide({ actors: createRunActors(client) })`
 * swaps the client (another process, another key, the emulator, a test double).
 *
 * Promise actors reject with a classified {@link ClientFailure}, never with an SDK error, so the
 * machine's guards decide on plain data.
 *
 * A stream is opened by one actor (`createStream` in `started`, `resume` in `resumed`) and read
 * by another (`stream`, in `streaming`). It is handed over the XState way: in the opening
 * actor's output, which the done event carries to the transition into `streaming`, whose
 * invoke takes it as input. Each run reads the stream it opened, whatever else runs alongside.
 * What XState keeps of those actors in a snapshot leaves the stream out
 * ({@link persistedWithoutStream}): a save is plain data, and a restored run opens its stream
 * again.
 */
import { type AnyActorLogic, type EventObject, fromCallback, fromPromise } from "xstate";
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
import { cursorAfter, readBatch } from "./stream-batch.js";

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

/** A stream opened and handed over to the state that reads it (in a done event's output). */
export interface OpenedStream {
  /** Never persisted: see {@link persistedWithoutStream}. */
  stream: ResponseEventStream;
}

/** The create stream, read up to `response.created`, which names the response. */
export interface CreatedStream extends OpenedStream {
  response: ResponseState;
  sequenceNumber: number;
}

export interface ConsumeStreamInput {
  responseId: string;
  /** The run's cursor: the reader reads each batch against it, and moves it as the run does. */
  startingAfter: number | null;
  firstEventTimeoutMs: number;
  idleTimeoutMs: number;
  /** Epoch ms after which a response still `queued` trips the watchdog (null: never). */
  queuedDeadlineAt: number | null;
  /** The stream the state before opened; opened here when there is none. Never persisted. */
  stream?: ResponseEventStream;
}

/**
 * `logic` whose persisted snapshot leaves out the live stream of its input or output. XState
 * keeps a child's input (and a done child's output) in the snapshot it persists, and a handed-
 * over stream lives there; a save must stay plain data.
 */
function persistedWithoutStream<TLogic extends AnyActorLogic>(logic: TLogic): TLogic {
  return {
    ...logic,
    getPersistedSnapshot: (snapshot: unknown, options: unknown) => {
      const persisted = logic.getPersistedSnapshot(snapshot, options as never) as object;
      if (!holdsStream(persisted, "input") && !holdsStream(persisted, "output")) return persisted;
      const plain: Record<string, unknown> = { ...persisted };
      for (const key of ["input", "output"] as const) {
        if (!holdsStream(plain, key)) continue;
        const { stream: _stream, ...rest } = plain[key] as Record<string, unknown>;
        plain[key] = rest;
      }
      return plain;
    },
  };
}

function holdsStream(snapshot: object, key: "input" | "output"): boolean {
  const value = (snapshot as Record<string, unknown>)[key];
  return typeof value === "object" && value !== null && "stream" in value;
}

/**
 * A stream an opening actor hands over in its output. Until the output is delivered it is the
 * actor's: stopped before that (its state left: a cancel, a disconnect, the deadline), the actor
 * closes it. Once the output is delivered XState no longer aborts the actor's signal, and the
 * stream is the next state's (or the transition's, which closes it if it does not read it).
 */
function handOver(stream: ResponseEventStream, signal: AbortSignal): ResponseEventStream {
  if (signal.aborted) stream.abort();
  else signal.addEventListener("abort", () => stream.abort(), { once: true });
  return stream;
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
 * handed to the next state, see {@link handOver}) and only its own abort closes it.
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
     * given up on when that event has not come within `timeoutMs`. The rest of the stream is
     * handed over in the output.
     */
    createResponseStream: persistedWithoutStream(
      fromPromise<CreatedStream, { request: CreateRequest; timeoutMs: number }>(
        ({ input, signal }) =>
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
            // The rest of the same iterator is the streaming state's to read.
            const rest: ResponseEventStream = {
              abort: () => stream.abort(),
              [Symbol.asyncIterator]: () => iterator,
            };
            return {
              response: first.value.response,
              sequenceNumber: first.value.sequenceNumber,
              stream: handOver(rest, signal),
            };
          }),
      ),
    ),

    /** A poll (or a check, or a cancel's confirmation), given up on after `timeoutMs`. */
    retrieveResponse: fromPromise<RetrieveResult, { responseId: string; timeoutMs: number }>(
      ({ input, signal }) =>
        bounded("poll", signal, input.timeoutMs, (bounded) =>
          client.retrieve(input.responseId, bounded),
        ),
    ),

    /**
     * Reopens the stream after the cursor (or from the start when there is none), handed over
     * in the output. A server that accepts the connection but never answers is given up on
     * after `headersTimeoutMs`.
     */
    openStream: persistedWithoutStream(
      fromPromise<
        OpenedStream,
        { responseId: string; startingAfter: number | null; headersTimeoutMs: number }
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
          return { stream: handOver(stream, signal) };
        }),
      ),
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
     * machine: each batch with its reading against the run's cursor, which this reader moves
     * as the machine does (the machine takes what the reading accepts; a reading that ends the
     * batch ends the stream). Also the idle and first-event watchdogs: the SDK's timeout covers
     * only the wait for headers, so a silent body would otherwise hang forever.
     */
    consumeStream: persistedWithoutStream(
      fromCallback<EventObject, ConsumeStreamInput>(({ input, sendBack }) => {
        const send = (event: StreamActorEvent) => sendBack(event);
        let stream = input.stream;
        let cursor = input.startingAfter;
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
          const reading = readBatch(cursor, events);
          cursor = cursorAfter(cursor, reading);
          send({ type: "stream.events", events, reading });
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
    ),
  };
}

export type RunActors = ReturnType<typeof createRunActors>;
