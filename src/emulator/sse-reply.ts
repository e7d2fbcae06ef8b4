/**
 * The emulator's SSE replies: a response's event log streamed by the shared `SseWriter`
 * (`src/sse`), plus what only the emulator does to a stream: its faults (a connection dropped
 * or stalled after N events) and a replay without `obfuscation`.
 */
import type { ServerResponse } from "node:http";
import type { EventLog } from "../sse/event-log.js";
import { type SseGate, SseWriter, writeSseHead } from "../sse/writer.js";

/** Fault behaviour of one SSE connection. */
export interface StreamFaults {
  /** Destroy the socket after this many frames were written on this connection. */
  dropAfter?: number;
  /** Stop writing after this many frames… */
  stallAfter?: number;
  /** …for this long (undefined = until the client goes away). */
  stallMs?: number;
}

/** One SSE reply: where in the log it starts, how it is written, its faults. */
export interface SseReplyOptions extends StreamFaults {
  /** Index of the first frame to send (`starting_after + 1`). */
  start: number;
  /** Remove `obfuscation` from delta frames (a replay that asked `include_obfuscation=false`). */
  stripObfuscation?: boolean;
}

const OBFUSCATION_FIELD = /,"obfuscation":"[A-Za-z0-9]*"/g;

function withoutObfuscation(chunk: string): string {
  return chunk.replace(OBFUSCATION_FIELD, "");
}

/**
 * Sends an SSE reply that streams `log` from `options.start` until the log closes.
 *
 * @example
 * ```ts
 * sendSse(res, record.log, { start: startingAfter + 1, dropAfter: 3 }); // 3 frames, then a reset
 * ```
 */
export function sendSse(res: ServerResponse, log: EventLog, options: SseReplyOptions): void {
  writeSseHead(res);
  if (options.dropAfter !== undefined && options.dropAfter <= 0) {
    // The head, then a dead connection before the first frame.
    res.flushHeaders();
    setImmediate(() => res.destroy());
    return;
  }
  new SseWriter(res, log, {
    start: options.start,
    transform: options.stripObfuscation ? withoutObfuscation : undefined,
    gate: faultGate(options),
  }).begin();
}

/** The gate that applies `faults` to one connection; none when there are none. */
function faultGate({ dropAfter, stallAfter, stallMs }: StreamFaults): SseGate | undefined {
  if (dropAfter === undefined && stallAfter === undefined) return undefined;
  let stallDone = false;
  let stallTimer: NodeJS.Timeout | undefined;
  return {
    allow(written, writer) {
      if (stallAfter !== undefined && !stallDone && written >= stallAfter) {
        // Stalled before the next frame; without `stallMs`, until the client goes away.
        if (stallMs !== undefined) {
          stallTimer = setTimeout(() => {
            stallDone = true;
            writer.resume();
          }, stallMs);
        }
        return 0;
      }
      let allowed = Number.POSITIVE_INFINITY;
      if (dropAfter !== undefined) allowed = Math.min(allowed, dropAfter - written);
      if (stallAfter !== undefined && !stallDone) allowed = Math.min(allowed, stallAfter - written);
      return allowed;
    },
    // Cut once the last allowed frame has gone out, unless that frame ended the stream anyway.
    cutAfter: (written, complete) => dropAfter !== undefined && written >= dropAfter && !complete,
    detach() {
      if (stallTimer !== undefined) clearTimeout(stallTimer);
    },
  };
}
