/**
 * Server-sent events. A frame is serialized exactly once (`frame`) and the string is stored in
 * the response's event log; every connection that follows that log is an `SseWriter` holding a
 * cursor into it. Writing "everything from my cursor to the end of the log" serves replay,
 * live following, batching (several frames → one `write`) and back-pressure (stop at a full
 * socket buffer, resume on `drain`) with the same few lines.
 */
import type { ServerResponse } from "node:http";

/**
 * Serializes one SSE frame: `event: <type>\ndata: <json>\n\n` (no `id:` lines, no `[DONE]`).
 *
 * @example
 * ```ts
 * frame("keepalive", '{"type":"keepalive","sequence_number":7}');
 * // 'event: keepalive\ndata: {"type":"keepalive","sequence_number":7}\n\n'
 * ```
 */
export function frame(type: string, json: string): string {
  return `event: ${type}\ndata: ${json}\n\n`;
}

/** Something that follows an event log: told when frames were appended and when the log closed. */
export interface LogListener {
  onAppend(): void;
  onClose(): void;
}

/**
 * The append-only event log of one response. Index `i` holds the frame whose `sequence_number`
 * is `i`. `closed` means no frame will ever be appended again (terminal event written, cancelled
 * with `streamOnCancel: "close"`, deleted or expired); followers end once they reach the end.
 */
export class EventLog {
  readonly frames: string[] = [];
  closed = false;
  readonly #listeners = new Set<LogListener>();

  /** Frames were dropped to save memory (see `release`); the log can no longer be replayed. */
  released = false;

  /**
   * Drops the frames of a finished log nobody follows. Called once the replay window is over:
   * from then on the frames can never be sent again, and they are most of an emulator's memory.
   */
  release(): void {
    if (!this.closed || this.#listeners.size > 0) return;
    this.frames.length = 0;
    this.released = true;
  }

  /** The sequence number the next appended frame gets. */
  get nextSequence(): number {
    return this.frames.length;
  }

  /** Appends frames without telling listeners; call `publish()` once the batch is complete. */
  push(frameText: string): void {
    this.frames.push(frameText);
  }

  /** Tells every listener that frames were appended. */
  publish(): void {
    for (const listener of this.#listeners) listener.onAppend();
  }

  /** Marks the log finished and tells every listener. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const listener of [...this.#listeners]) listener.onClose();
  }

  subscribe(listener: LogListener): void {
    this.#listeners.add(listener);
  }

  unsubscribe(listener: LogListener): void {
    this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}

/** Fault behaviour of one SSE connection. */
export interface SseWriterOptions {
  /** Index of the first frame to send (`starting_after + 1`). */
  start: number;
  /** Destroy the socket after this many frames were written on this connection. */
  dropAfter?: number;
  /** Stop writing after this many frames… */
  stallAfter?: number;
  /** …for this long (undefined = until the client goes away). */
  stallMs?: number;
  /** Remove `obfuscation` from delta frames (a replay that asked `include_obfuscation=false`). */
  stripObfuscation?: boolean;
}

const OBFUSCATION_FIELD = /,"obfuscation":"[A-Za-z0-9]*"/g;

/**
 * Streams an event log to one HTTP reply whose SSE headers were already set.
 *
 * @example
 * ```ts
 * res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
 * new SseWriter(res, record.log, { start: startingAfter + 1 }).begin();
 * ```
 */
export class SseWriter implements LogListener {
  #cursor: number;
  #written = 0;
  #waitingForDrain = false;
  #stalled = false;
  #stallDone = false;
  #stallTimer: NodeJS.Timeout | undefined;
  #finished = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly log: EventLog,
    private readonly options: SseWriterOptions,
  ) {
    this.#cursor = Math.max(0, options.start);
  }

  /** Writes what the log already holds, then follows it live until it closes. */
  begin(): void {
    this.res.on("close", () => this.#detach());
    if (this.options.dropAfter !== undefined && this.options.dropAfter <= 0) {
      // Headers, then a dead connection before the first frame.
      this.#finished = true;
      this.res.flushHeaders();
      setImmediate(() => this.res.destroy());
      return;
    }
    this.log.subscribe(this);
    this.#flush();
    // Nothing to send yet (or stalled before the first frame): make the headers go out now so
    // the client's request resolves, as the real server does.
    // (`headersSent` is already true after writeHead, though nothing went out: hence our count.)
    if (!this.#finished && this.#written === 0 && !this.#stalled) this.res.flushHeaders();
  }

  onAppend(): void {
    this.#flush();
  }

  onClose(): void {
    this.#flush();
  }

  #flush(): void {
    if (this.#finished || this.#waitingForDrain || this.#stalled) return;
    const frames = this.log.frames;
    const { dropAfter, stallAfter } = this.options;
    while (this.#cursor < frames.length) {
      if (stallAfter !== undefined && !this.#stallDone && this.#written >= stallAfter) {
        this.#beginStall();
        return;
      }
      let end = frames.length;
      if (dropAfter !== undefined) end = Math.min(end, this.#cursor + dropAfter - this.#written);
      if (stallAfter !== undefined && !this.#stallDone) {
        end = Math.min(end, this.#cursor + stallAfter - this.#written);
      }
      const chunk = this.#chunk(this.#cursor, end);
      this.#written += end - this.#cursor;
      this.#cursor = end;
      const complete = this.log.closed && this.#cursor >= frames.length;
      if (dropAfter !== undefined && this.#written >= dropAfter && !complete) {
        // Destroy only once the last allowed frame has reached the socket, so the client
        // really sees N frames and then a dead connection (not a truncated frame).
        this.#finished = true;
        this.log.unsubscribe(this);
        this.res.write(chunk, () => this.res.destroy());
        return;
      }
      if (!this.res.write(chunk)) {
        this.#waitingForDrain = true;
        this.res.once("drain", () => {
          this.#waitingForDrain = false;
          this.#flush();
        });
        return;
      }
    }
    if (this.log.closed) {
      this.#finished = true;
      this.log.unsubscribe(this);
      this.res.end();
    }
  }

  #chunk(from: number, to: number): string {
    const frames = this.log.frames;
    const chunk = to - from === 1 ? (frames[from] ?? "") : frames.slice(from, to).join("");
    return this.options.stripObfuscation ? chunk.replace(OBFUSCATION_FIELD, "") : chunk;
  }

  #beginStall(): void {
    this.#stalled = true;
    if (this.#written === 0) this.res.flushHeaders();
    if (this.options.stallMs === undefined) return; // until the client goes away
    this.#stallTimer = setTimeout(() => {
      this.#stalled = false;
      this.#stallDone = true;
      this.#flush();
    }, this.options.stallMs);
  }

  #detach(): void {
    this.#finished = true;
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.log.unsubscribe(this);
  }
}
