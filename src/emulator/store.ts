/**
 * Responses and their event logs, keyed by id. A record holds the mutable state of one response
 * (status, text so far, usage…) plus its `EventLog`, where frame `i` is the event whose
 * `sequence_number` is `i`; `response-object.ts` turns a record into the wire object. Lookups
 * apply retention: past `retentionMs` a response is gone (404) everywhere.
 */

import { EventLog } from "../sse/event-log.js";
import type { Clock } from "./clock.js";
import type { ResponseStatus, ResponseUsage } from "./types.js";

/** The fields of a create request that its Response object echoes back. */
export interface ResponseEcho {
  model: string;
  instructions: string | null;
  maxOutputTokens: number | null;
  metadata: Record<string, string>;
  previousResponseId: string | null;
  temperature: number;
  topP: number;
}

/** The mutable state of one response. */
export interface ResponseRecord {
  readonly id: string;
  /** Id of the single output message. */
  readonly itemId: string;
  readonly createdAtMs: number;
  readonly background: boolean;
  /** Created with `stream: true` (a precondition of replay). */
  readonly stream: boolean;
  readonly store: boolean;
  readonly echo: ResponseEcho;
  readonly inputTokens: number;
  /** Whether delta frames carry `obfuscation`. */
  readonly obfuscation: boolean;
  status: ResponseStatus;
  /** The message item's status; null while there is no item yet. */
  itemStatus: "in_progress" | "completed" | "incomplete" | null;
  /** Whether the `output_text` content part exists yet. */
  hasPart: boolean;
  text: string;
  outputTokens: number;
  error: { code: string; message: string } | null;
  incompleteReason: "max_output_tokens" | null;
  completedAtMs: number | null;
  usage: ResponseUsage | null;
  readonly log: EventLog;
  /** Stops the generation timers, if any are running. */
  stop: () => void;
}

/** The fields a new record starts from. */
export type NewRecord = Pick<
  ResponseRecord,
  | "id"
  | "itemId"
  | "createdAtMs"
  | "background"
  | "stream"
  | "store"
  | "echo"
  | "inputTokens"
  | "obfuscation"
  | "status"
>;

/** Builds a fresh record (no output yet, empty log). */
export function newRecord(fields: NewRecord): ResponseRecord {
  return {
    ...fields,
    itemStatus: null,
    hasPart: false,
    text: "",
    outputTokens: 0,
    error: null,
    incompleteReason: null,
    completedAtMs: null,
    usage: null,
    log: new EventLog(),
    stop: () => {},
  };
}

/** Whether a status is terminal (no more events will follow). */
export function isTerminal(status: ResponseStatus): boolean {
  return status !== "queued" && status !== "in_progress";
}

/**
 * The responses of one emulator.
 *
 * @example
 * ```ts
 * const store = new ResponseStore(systemClock, 600_000);
 * store.add(record);
 * store.lookup(record.id); // the record, until retention ends
 * ```
 */
export class ResponseStore {
  readonly #records = new Map<string, ResponseRecord>();

  constructor(
    private readonly clock: Clock,
    private readonly retentionMs: number,
    /** After this long (from creation) event logs are released; see `EventLog.release`. */
    private readonly replayWindowMs: number = Number.POSITIVE_INFINITY,
    /**
     * Most responses held at once; past it the oldest is forgotten, as if it had expired.
     * Retention alone does not bound memory: a client creating a thousand responses a second
     * would make the emulator hold 600 000 of them (about 36 KB each) for ten minutes.
     */
    private readonly maxResponses: number = Number.POSITIVE_INFINITY,
  ) {}

  add(record: ResponseRecord): void {
    this.#records.set(record.id, record);
    while (this.#records.size > this.maxResponses) {
      const oldest = this.#records.values().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
  }

  /**
   * The record for `id` as the API sees it: undefined when unknown, deleted, expired, or a
   * foreground response created with `store: false` (never retrievable).
   */
  lookup(id: string): ResponseRecord | undefined {
    const record = this.#records.get(id);
    if (record === undefined) return undefined;
    if (this.#expired(record)) {
      this.remove(record);
      return undefined;
    }
    if (!record.store && !record.background) return undefined;
    return record;
  }

  /** Like `lookup`, but also returns unstored foreground responses (test introspection). */
  peek(id: string): ResponseRecord | undefined {
    const record = this.#records.get(id);
    if (record === undefined || this.#expired(record)) return undefined;
    return record;
  }

  /** Forgets a record: stops its generation and ends every stream following it. */
  remove(record: ResponseRecord): void {
    this.#records.delete(record.id);
    record.stop();
    record.log.close();
  }

  /**
   * Removes every expired record and releases the event logs whose replay window is over; run
   * now and then so that memory does not grow forever.
   */
  sweep(): void {
    const now = this.clock.now();
    for (const record of this.#records.values()) {
      if (this.#expired(record)) this.remove(record);
      else if (now - record.createdAtMs > this.replayWindowMs) record.log.release();
    }
  }

  /** Stops every generation and ends every stream (emulator shutdown). */
  clear(): void {
    for (const record of [...this.#records.values()]) this.remove(record);
  }

  get size(): number {
    return this.#records.size;
  }

  #expired(record: ResponseRecord): boolean {
    return this.clock.now() - record.createdAtMs > this.retentionMs;
  }
}
