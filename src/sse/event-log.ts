/**
 * A replayable, append-only log of serialized SSE frames. Each frame is serialized once (see
 * `formatEvent`) and stored as the string that goes on the wire; every connection following the
 * log is an `SseWriter` holding a cursor into it, so replay from any point, live following and
 * batching are the same few lines, and a thousand followers cost one copy of the text.
 *
 * What an index means is the owner's business: the emulator makes index `i` the frame whose
 * `sequence_number` is `i`.
 */

/** Something that follows an event log: told when frames were appended and when the log closed. */
export interface LogListener {
  onAppend(): void;
  onClose(): void;
}

/**
 * The append-only log of one stream. `closed` means no frame will ever be appended again;
 * followers end once they reach its end.
 *
 * @example
 * ```ts
 * const log = new EventLog();
 * log.push(formatEvent({ event: "greeting", data: '{"text":"hi"}' }));
 * log.push(formatEvent({ event: "greeting", data: '{"text":"again"}' }));
 * log.publish(); // followers write both frames in one `write`
 * log.close(); // followers end their replies once they have written everything
 * ```
 */
export class EventLog {
  readonly frames: string[] = [];
  closed = false;
  readonly #listeners = new Set<LogListener>();

  /** Frames were dropped to save memory (see `release`); the log can no longer be replayed. */
  released = false;

  /**
   * Drops the frames of a closed log nobody follows. For the owner to call once the frames can
   * never be asked for again (a replay window is over): they are most of a server's memory.
   */
  release(): void {
    if (!this.closed || this.#listeners.size > 0) return;
    this.frames.length = 0;
    this.released = true;
  }

  /** The number of frames appended so far: the index the next appended frame gets. */
  get length(): number {
    return this.frames.length;
  }

  /** Appends a frame without telling listeners; call `publish()` once the batch is complete. */
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
