/**
 * Writing server-sent events: the framing of one event (`id:` / `event:` / `data:` lines), of a
 * comment (heartbeats), the head of an SSE reply, and `SseWriter`, which streams an `EventLog`
 * to one connection. Writing "everything from my cursor to the end of the log" serves replay,
 * live following, batching (several frames → one `write`) and back-pressure (stop at a full
 * socket buffer, resume on `drain`) with the same few lines. Shared by the emulator and by any
 * HTTP surface of baton that streams to a browser.
 */
import type { ServerResponse } from "node:http";
import type { EventLog, LogListener } from "./event-log.js";

/** One event to frame. */
export interface SseEvent {
  /** `event:` line; absent means the client's default type, `message`. */
  event?: string;
  /** The payload; each of its lines becomes one `data:` line (the client joins them with `\n`). */
  data: string;
  /** `id:` line: what a browser's `EventSource` sends back as `Last-Event-ID` on reconnect. */
  id?: string | number;
  /** `retry:` line: how long (ms) a browser waits before reconnecting. */
  retry?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;

/** Whether `text` holds a line break (`includes` is several times faster than a regex). */
function hasLineBreak(text: string): boolean {
  return text.includes("\n") || text.includes("\r");
}

/**
 * Serializes one SSE frame. `data` may hold several lines (`\n`, `\r\n` or `\r`): each is sent
 * as its own `data:` line, which is how the spec carries them; `event` and `id` must be one line.
 *
 * @example
 * ```ts
 * formatEvent({ event: "greeting", data: "hi" }); // 'event: greeting\ndata: hi\n\n'
 * formatEvent({ id: 120, data: "two\nlines" }); // 'id: 120\ndata: two\ndata: lines\n\n'
 * ```
 */
export function formatEvent({ event, data, id, retry }: SseEvent): string {
  const body = hasLineBreak(data)
    ? `data: ${data.split(LINE_BREAK).join("\ndata: ")}\n`
    : `data: ${data}\n`;
  if (retry === undefined) return `${fieldLines(event, id)}${body}\n`;
  if (!Number.isInteger(retry) || retry < 0) {
    throw new RangeError("an SSE retry must be a non-negative integer of milliseconds");
  }
  return `${fieldLines(event, id)}${body}retry: ${retry}\n\n`;
}

/**
 * Serializes one SSE frame whose payload is JSON text, on the hot path: JSON never holds a raw
 * line break (`JSON.stringify` escapes them in strings and puts none between tokens unless asked
 * to indent), so the payload is one `data:` line, sent without scanning it. Pass only compact
 * JSON (no `JSON.stringify(value, null, 2)`): use {@link formatEvent} for anything else.
 *
 * @example
 * ```ts
 * formatJsonEvent('{"type":"keepalive","sequence_number":7}', { event: "keepalive" });
 * // 'event: keepalive\ndata: {"type":"keepalive","sequence_number":7}\n\n'
 * formatJsonEvent(JSON.stringify({ text: "hi" }), { id: 2 }); // 'id: 2\ndata: {"text":"hi"}\n\n'
 * ```
 */
export function formatJsonEvent(
  json: string,
  fields: { event?: string; id?: string | number } = {},
): string {
  return `${fieldLines(fields.event, fields.id)}data: ${json}\n\n`;
}

/** The `id:` and `event:` lines of a frame; either must be one line. */
function fieldLines(event: string | undefined, id: string | number | undefined): string {
  let lines = "";
  if (id !== undefined) {
    const text = String(id);
    // A NUL in `id` makes browsers ignore the field (HTML spec, "dispatch the event").
    if (typeof id === "string" && (hasLineBreak(text) || text.includes("\0"))) {
      throw new RangeError("an SSE id must be one line without NUL");
    }
    lines = `id: ${text}\n`;
  }
  if (event !== undefined) {
    if (hasLineBreak(event)) throw new RangeError("an SSE event type must be one line");
    lines += `event: ${event}\n`;
  }
  return lines;
}

/**
 * Serializes a comment: lines the client ignores, used as a heartbeat so that proxies and load
 * balancers do not close a stream that is quiet for a while.
 *
 * @example
 * ```ts
 * formatComment("heartbeat"); // ': heartbeat\n\n'
 * ```
 */
export function formatComment(text = ""): string {
  return `${text
    .split(LINE_BREAK)
    .map((line) => (line === "" ? ":" : `: ${line}`))
    .join("\n")}\n\n`;
}

/**
 * Writes the head of an SSE reply (status 200); the body follows through an `SseWriter`.
 *
 * @example
 * ```ts
 * writeSseHead(res);
 * new SseWriter(res, log).begin();
 * ```
 */
export function writeSseHead(
  res: ServerResponse,
  headers: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(200, {
    ...headers,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
}

/** Where an `SseWriter` writes: an HTTP reply whose head is set (`ServerResponse` is one). */
export interface SseSink {
  /** Returns false once the socket buffer is full; `drain` follows. */
  write(chunk: string, callback?: () => void): boolean;
  end(): void;
  /** Sends the head now, before any body. */
  flushHeaders(): void;
  destroy(): void;
  once(event: "drain", listener: () => void): unknown;
  on(event: "close", listener: () => void): unknown;
}

/**
 * Decides, for one connection, how many frames may go out: the hook through which the emulator
 * injects its stream faults (a connection dropped or stalled after N events). Without a gate a
 * writer writes everything, as fast as the socket takes it.
 */
export interface SseGate {
  /**
   * Called before each chunk with the frames written so far on this connection: the most frames
   * the next chunk may hold (`Infinity` for no limit), or 0 to hold: the writer then writes
   * nothing (no frame, no heartbeat) until `writer.resume()`.
   */
  allow(written: number, writer: SseWriter): number;
  /**
   * Called after each chunk: true cuts the connection once that chunk has reached the socket (the
   * client sees every frame written, then a dead connection, never a truncated frame).
   * `complete`: the log is closed and everything in it written.
   */
  cutAfter?(written: number, complete: boolean): boolean;
  /** The connection is over (ended, cut, or closed by the client): stop any timer. */
  detach?(): void;
}

/** Options of one `SseWriter`. */
export interface SseWriterOptions {
  /** Index of the first frame to send; default 0. */
  start?: number;
  /** Rewrites each chunk (one or more whole frames) before it is written. */
  transform?: (chunk: string) => string;
  /** Write a heartbeat comment when nothing was written for about this long (ms); default never. */
  heartbeatMs?: number;
  /** The comment a heartbeat carries; default `"heartbeat"`. */
  heartbeatText?: string;
  gate?: SseGate;
}

/**
 * Streams an event log to one connection whose SSE head was already written: what the log holds
 * from `start` on, then everything appended to it, until the log closes (the reply ends) or the
 * client goes away. A full socket buffer holds the writer until `drain`; frames appended
 * meanwhile go out together in the next `write`.
 *
 * @example
 * ```ts
 * writeSseHead(res);
 * new SseWriter(res, log, { start: lastEventIndex + 1, heartbeatMs: 15_000 }).begin();
 * ```
 */
export class SseWriter implements LogListener {
  #cursor: number;
  #written = 0;
  #waitingForDrain = false;
  #held = false;
  #finished = false;
  #wroteSinceBeat = false;
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #transform: ((chunk: string) => string) | undefined;
  readonly #gate: SseGate | undefined;

  constructor(
    private readonly sink: SseSink,
    private readonly log: EventLog,
    private readonly options: SseWriterOptions = {},
  ) {
    this.#cursor = Math.max(0, options.start ?? 0);
    this.#transform = options.transform;
    this.#gate = options.gate;
  }

  /** Frames written on this connection so far. */
  get written(): number {
    return this.#written;
  }

  /** Writes what the log already holds, then follows it live until it closes. */
  begin(): void {
    this.sink.on("close", () => this.#finish());
    this.log.subscribe(this);
    const { heartbeatMs } = this.options;
    if (heartbeatMs !== undefined && heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
      this.#heartbeat.unref();
    }
    this.#flush();
    // Nothing to send yet: make the head go out now so the client's request resolves.
    // (`headersSent` is already true after writeHead, though nothing went out: hence our count.)
    if (!this.#finished && this.#written === 0 && !this.#held) this.sink.flushHeaders();
  }

  /** Ends a hold (see {@link SseGate.allow}) and writes what is waiting. */
  resume(): void {
    this.#held = false;
    this.#flush();
  }

  onAppend(): void {
    this.#flush();
  }

  onClose(): void {
    this.#flush();
  }

  #flush(): void {
    if (this.#finished || this.#waitingForDrain || this.#held) return;
    const frames = this.log.frames;
    const gate = this.#gate;
    while (this.#cursor < frames.length) {
      const allowed =
        gate === undefined ? Number.POSITIVE_INFINITY : gate.allow(this.#written, this);
      if (allowed <= 0) {
        this.#hold();
        return;
      }
      const end = Math.min(frames.length, this.#cursor + allowed);
      const chunk = this.#chunk(this.#cursor, end);
      this.#written += end - this.#cursor;
      this.#cursor = end;
      this.#wroteSinceBeat = true;
      const complete = this.log.closed && this.#cursor >= frames.length;
      if (gate?.cutAfter?.(this.#written, complete)) {
        this.#finish();
        this.sink.write(chunk, () => this.sink.destroy());
        return;
      }
      if (!this.#write(chunk)) return;
    }
    if (this.log.closed) {
      this.#finish();
      this.sink.end();
    }
  }

  /** Writes; on a full buffer, holds every write until `drain`. Returns false then. */
  #write(chunk: string): boolean {
    if (this.sink.write(chunk)) return true;
    this.#waitingForDrain = true;
    this.sink.once("drain", () => {
      this.#waitingForDrain = false;
      this.#flush();
    });
    return false;
  }

  #chunk(from: number, to: number): string {
    const frames = this.log.frames;
    const chunk = to - from === 1 ? (frames[from] ?? "") : frames.slice(from, to).join("");
    return this.#transform === undefined ? chunk : this.#transform(chunk);
  }

  #hold(): void {
    this.#held = true;
    // Held before the first frame: the client's request must still resolve.
    if (this.#written === 0) this.sink.flushHeaders();
  }

  #beat(): void {
    if (this.#finished || this.#waitingForDrain || this.#held) return;
    if (this.#wroteSinceBeat) {
      this.#wroteSinceBeat = false;
      return;
    }
    this.#write(formatComment(this.options.heartbeatText ?? "heartbeat"));
  }

  /** No more writes on this connection: the reply ends, is cut, or the client went away. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#gate?.detach?.();
    this.log.unsubscribe(this);
  }
}
