/**
 * The emulator's request log, bounded: the most recent requests, at most `maxEntries` of them
 * and about `maxBytes` of recorded text, the oldest dropped first. A long-running emulator (a
 * CI service taking hundreds of thousands of requests) then holds a fixed amount of memory,
 * while a test, which makes a few hundred requests, still sees every one.
 */
import type { RecordedRequest } from "./types.js";

/** Default bound on the number of requests kept. */
export const DEFAULT_REQUEST_LOG_ENTRIES = 10_000;
/** Default bound on the recorded text kept (paths, queries, headers), in UTF-16 code units. */
export const DEFAULT_REQUEST_LOG_BYTES = 32 * 1024 * 1024;

/** Rough size of one entry: its strings plus a fixed overhead for the object itself. */
function sizeOf(request: RecordedRequest): number {
  let size = 128 + request.path.length + request.method.length;
  for (const [key, value] of Object.entries(request.query)) size += key.length + value.length;
  for (const [key, value] of Object.entries(request.headers)) size += key.length + value.length;
  return size;
}

/**
 * A bounded log over one array, which callers read as `entries` (the same array object for the
 * log's whole life, so a reference taken early stays current).
 *
 * @example
 * ```ts
 * const log = new RequestLog({ maxEntries: 2 });
 * log.push(a); log.push(b); log.push(c);
 * log.entries; // [b, c]; log.dropped === 1
 * ```
 */
export class RequestLog {
  readonly entries: RecordedRequest[] = [];
  readonly #sizes: number[] = [];
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;
  #dropped = 0;

  constructor(limits: { maxEntries?: number; maxBytes?: number } = {}) {
    this.#maxEntries = Math.max(0, Math.floor(limits.maxEntries ?? DEFAULT_REQUEST_LOG_ENTRIES));
    this.#maxBytes = Math.max(0, limits.maxBytes ?? DEFAULT_REQUEST_LOG_BYTES);
  }

  push(request: RecordedRequest): void {
    const size = sizeOf(request);
    this.entries.push(request);
    this.#sizes.push(size);
    this.#bytes += size;
    const overCount = this.entries.length > this.#maxEntries;
    const overBytes = this.#bytes > this.#maxBytes;
    if (!overCount && !overBytes) return;
    // Drop down to 15/16 of the bound, not to the bound: `splice` moves the whole array, and
    // doing that on every request would make a full log cost O(n) per request.
    const keepCount = overCount ? this.#maxEntries - Math.ceil(this.#maxEntries / 16) : Infinity;
    const keepBytes = overBytes ? this.#maxBytes - this.#maxBytes / 16 : Infinity;
    let drop = 0;
    let freed = 0;
    while (
      drop < this.entries.length &&
      (this.entries.length - drop > keepCount || this.#bytes - freed > keepBytes)
    ) {
      freed += this.#sizes[drop] ?? 0;
      drop++;
    }
    this.entries.splice(0, drop);
    this.#sizes.splice(0, drop);
    this.#bytes -= freed;
    this.#dropped += drop;
  }

  /** Requests dropped so far to keep within the bounds. */
  get dropped(): number {
    return this.#dropped;
  }
}
