/**
 * The actors the run machine invokes, built over a {@link ResponsesClient}. Each is registered
 * by name in the machine's `setup`, so `machine.provide({ actors: createRunActors(client) })`
 * swaps the client (another process, another key, the emulator, a test double).
 *
 * Promise actors reject with a classified {@link ClientFailure}, never with an SDK error, so the
 * machine's guards decide on plain data. The two that open a stream (`createResponseStream`,
 * `openStream`) hand it to the reader of the `streaming` state (`stream-reader.ts`) in their
 * output, as `stream-handoff.ts` describes.
 */
import { fromPromise } from "xstate";
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
import { MAX_TIMER_MS } from "./backoff.js";
import {
  type CreatedStream,
  handOver,
  type OpenedStream,
  persistedWithoutStream,
} from "./stream-handoff.js";
import { streamReader } from "./stream-reader.js";

export { MAX_TIMER_MS } from "./backoff.js";
export type { CreatedStream, OpenedStream } from "./stream-handoff.js";
export { type ConsumeStreamInput, MAX_REPEATED_EVENTS } from "./stream-reader.js";

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

    /** Reads the stream the state before opened: see `stream-reader.ts`. */
    consumeStream: streamReader(client),
  };
}

export type RunActors = ReturnType<typeof createRunActors>;
