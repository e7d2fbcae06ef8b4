/**
 * The reader of the `streaming` state: reads the stream the state before opened (see
 * `stream-handoff.ts`) and hands its events to the machine in batches, each read once against
 * the run's cursor (`readBatch`), with how the stream stopped. It also keeps the watchdogs the
 * SDK does not: no first event, a stalled stream, a response stuck `queued`, a stream that
 * repeats itself forever.
 */
import { type EventObject, fromCallback } from "xstate";
import { classifyClientError } from "../services/client-failure.js";
import type {
  ResponseEventStream,
  ResponseStreamEvent,
  ResponsesClient,
} from "../services/responses-client.js";
import { MAX_TIMER_MS } from "./backoff.js";
import type { StreamActorEvent } from "./run-types.js";
import { cursorAfter, readBatch } from "./stream-batch.js";
import { persistedWithoutStream } from "./stream-handoff.js";

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
 * Reads a stream to its end and reports every event, and how the stream stopped, to the
 * machine: each batch with its reading against the run's cursor, which this reader moves
 * as the machine does (the machine takes what the reading accepts; a reading that ends the
 * batch ends the stream). Also the idle and first-event watchdogs: the SDK's timeout covers
 * only the wait for headers, so a silent body would otherwise hang forever.
 *
 * @example
 * ```ts
 * const actors = { consumeStream: streamReader(client) }; // what createRunActors registers
 * ```
 */
export function streamReader(client: ResponsesClient) {
  return persistedWithoutStream(
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
  );
}
