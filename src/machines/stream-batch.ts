/**
 * How a batch of stream events meets the run's cursor. The stream actor hands the machine the
 * events received together as one `stream.events` batch (one transition per batch, not per
 * token), read against the cursor once, here: which events are taken, in order, and why the
 * batch stops. The machine's guards and its action read that one reading.
 */
import type { ResponseStreamEvent } from "../services/responses-client.js";

/** A batch read against the cursor. */
export interface BatchReading {
  /** The events that continue the cursor without ending the stream, in order. */
  readonly accepted: readonly ResponseStreamEvent[];
  /**
   * What stopped the reading: the in-order terminal event (the service's verdict), a gap (an
   * event after a missing one: the rest is not trusted), or nothing (every event was read).
   */
  readonly end:
    | { kind: "terminal"; event: Extract<ResponseStreamEvent, { kind: "terminal" }> }
    | { kind: "gap" }
    | null;
}

/**
 * Reads `events` after `cursor` (the last sequence number processed, null before the first):
 * events at or before the cursor are replays and skipped, the next one is taken, a later one
 * is a gap. Reading stops at a gap or at the terminal event.
 *
 * @example
 * ```ts
 * readBatch(3, [e3, e4, e6]); // { accepted: [e4], end: { kind: "gap" } }
 * ```
 */
export function readBatch(
  cursor: number | null,
  events: readonly ResponseStreamEvent[],
): BatchReading {
  let at = cursor ?? -1;
  let first = 0;
  while (first < events.length && (events[first] as ResponseStreamEvent).sequenceNumber <= at) {
    first++;
  }
  // From the first new event on, events normally follow each other one by one: one slice.
  for (let i = first; i < events.length; i++) {
    const event = events[i] as ResponseStreamEvent;
    if (event.sequenceNumber <= at) return readSkipping(cursor, events);
    if (event.sequenceNumber !== at + 1) {
      return { accepted: events.slice(first, i), end: { kind: "gap" } };
    }
    if (event.kind === "terminal") {
      return { accepted: events.slice(first, i), end: { kind: "terminal", event } };
    }
    at = event.sequenceNumber;
  }
  return { accepted: first === 0 ? events : events.slice(first), end: null };
}

/**
 * The cursor once the machine has taken `reading`: its last accepted event, or `cursor` when it
 * accepted none (a reading that ends the batch also ends the stream).
 *
 * @example
 * ```ts
 * cursorAfter(3, readBatch(3, [e4, e5])); // 5
 * ```
 */
export function cursorAfter(cursor: number | null, reading: BatchReading): number | null {
  return reading.accepted.at(-1)?.sequenceNumber ?? cursor;
}

/** The same reading, for a batch that repeats an event in its middle (skipped as a replay). */
function readSkipping(cursor: number | null, events: readonly ResponseStreamEvent[]): BatchReading {
  const accepted: ResponseStreamEvent[] = [];
  let at = cursor ?? -1;
  for (const event of events) {
    if (event.sequenceNumber <= at) continue;
    if (event.sequenceNumber !== at + 1) return { accepted, end: { kind: "gap" } };
    if (event.kind === "terminal") return { accepted, end: { kind: "terminal", event } };
    accepted.push(event);
    at = event.sequenceNumber;
  }
  return { accepted, end: null };
}
