/**
 * The emulator's public types: options, fault rules, recorded requests and the Response object it
 * serves. Kept in one file so that `index.ts` re-exports a single, documented surface.
 */
import type { Clock } from "./clock.js";

/** What a request does, as the emulator classifies it (used by fault rules and the request log). */
export type RequestKind =
  | "create"
  | "create-stream"
  | "retrieve"
  | "retrieve-stream"
  | "cancel"
  | "delete";

/** One request as the emulator saw it. `headers` never contains `authorization`. */
export interface RecordedRequest {
  kind: RequestKind | "other";
  method: string;
  path: string;
  query: Record<string, string>;
  /** The response the request is about; for a create, the response it created (if it did). */
  responseId?: string;
  headers: Record<string, string>;
  /** `clock.now()` when the request arrived. */
  at: number;
}

/** How one response generates. Every field overrides the emulator-wide default. */
export interface GenerationScript {
  outputTokens?: number;
  tokenDelayMs?: number;
  queuedMs?: number;
  /** Never leaves `queued` (until cancelled, deleted or expired). */
  stuckQueued?: boolean;
  /** Emit `response.failed` (error `{code, message}`) after this many deltas. */
  failAfterDeltas?: number;
  /** Default `"server_error"`. */
  failCode?: string;
  failMessage?: string;
  /** Emit `{"type":"keepalive","sequence_number":N}` after every N deltas. */
  keepaliveEvery?: number;
}

/** Reply with an error status and a proper error envelope. */
export interface StatusFault {
  code: number;
  /** `retry-after` header, in seconds. */
  retryAfter?: number;
  /** `retry-after-ms` header, in milliseconds. */
  retryAfterMs?: number;
  /** `x-should-retry` header. */
  shouldRetry?: boolean;
  message?: string;
  /** Carry out the request first (e.g. the response IS created), then send the error. */
  afterHandling?: boolean;
}

/**
 * A fault to inject. `on` selects the requests; exactly one action (`status`, `reset`, `drop`,
 * `stall`, `garbage`, `script`) says what happens to them.
 */
export interface FaultRule {
  on: RequestKind | RequestKind[];
  /** How many matching requests it affects; default 1 (`Infinity` allowed). */
  times?: number;
  /** Only requests about this response. */
  responseId?: string;
  status?: StatusFault;
  /** Destroy the socket with no reply, before or after carrying out the request. */
  reset?: { afterHandling?: boolean };
  /** SSE replies only: destroy the socket after N events were written (generation goes on). */
  drop?: { afterEvents: number };
  /**
   * SSE: write nothing more after N events (0 = right after the headers) for `ms`, default forever
   * (until the client goes away). JSON replies: `afterEvents` is ignored and the whole reply is
   * delayed by `ms`.
   */
  stall?: { afterEvents: number; ms?: number };
  /** Answer with a malformed body (default 200, `text/html`, `<html>oops</html>`). */
  garbage?: { status?: number; contentType?: string; body?: string };
  /** create / create-stream only: how this response generates. */
  script?: GenerationScript;
}

/** The fault rules waiting to fire; rules are consumed as they fire. */
export interface FaultQueue {
  add(rule: FaultRule): void;
  clear(): void;
  readonly pending: readonly FaultRule[];
}

/** Options of `startEmulator`; every field is optional. */
export interface EmulatorOptions {
  /** Default 0 (a free port). */
  port?: number;
  /** Default `"127.0.0.1"`. */
  host?: string;
  /** Default 1; text is deterministic for (input, instructions, seed). */
  seed?: number;
  /** Wall clock for timestamps, the replay window and retention; default `Date.now`. */
  clock?: Clock;
  /** Pause between deltas; default 15; 0 = as fast as possible. */
  tokenDelayMs?: number;
  /** Time spent queued before `in_progress`; default 50. */
  queuedMs?: number;
  /** Deltas per response (before `max_output_tokens`); default 40. */
  outputTokens?: number;
  /** Default 300 000 (5 min), measured from `created_at`. */
  replayWindowMs?: number;
  /** Default 600 000 (10 min); after it GET / cancel / delete answer 404. */
  retentionMs?: number;
  /** Default `"error"`: 400 "Cannot cancel a completed response."; `"return"`: 200 final object. */
  cancelCompleted?: "error" | "return";
  /**
   * Default `"failed-event"`: live streams get `response.failed` whose `response.status` is
   * `"cancelled"`, then close. `"close"`: they close without a terminal event.
   */
  streamOnCancel?: "failed-event" | "close";
  /** Default true: `background:true` + `store:false` answers 400. */
  rejectBackgroundWithoutStore?: boolean;
  /** Default true: delta events carry `obfuscation` unless the request turns it off. */
  obfuscation?: boolean;
  /** If set, polls of a running response carry `openai-poll-after-ms` with this value. */
  pollAfterMs?: number;
  /** If set, requests need `Authorization: Bearer <apiKey>`, else 401. Never logged or echoed. */
  apiKey?: string;
  /** Initial fault rules. */
  faults?: FaultRule[];
  /**
   * Largest request body accepted, in bytes; default 4 MiB (4 194 304). A larger one is
   * answered 413 `request_too_large` as soon as it is known (from `content-length`, or at the
   * chunk that crosses the limit), without buffering the rest.
   */
  maxBodyBytes?: number;
  /**
   * Bounds of `requests`: the most recent `maxEntries` (default 10 000) requests and about
   * `maxBytes` (default 32 MiB) of recorded paths, queries and headers; older ones are dropped,
   * a batch (1/16 of the bound) at a time. `Infinity` keeps everything.
   */
  requestLog?: { maxEntries?: number; maxBytes?: number };
  /** Time a client has to send a request's headers (node:http `headersTimeout`); default 10 000. */
  headersTimeoutMs?: number;
  /** Time a client has to send a whole request, body included (`requestTimeout`); default 30 000. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long (`keepAliveTimeout`); default 5 000. */
  keepAliveTimeoutMs?: number;
  /** Connections open at once; more are refused (closed at once). Default 10 000. */
  maxConnections?: number;
  /**
   * Responses held at once (each costs about 36 KB at 40 deltas); past it the oldest is
   * forgotten as if its retention had ended (404; streams following it close). Default 10 000.
   */
  maxResponses?: number;
}

/** A running emulator. */
export interface Emulator {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:4010/v1`; pass it as the SDK's `baseURL`. */
  readonly url: string;
  readonly port: number;
  readonly faults: FaultQueue;
  /**
   * The requests, in arrival order: every one, up to the bounds of `requestLog` (10 000 by
   * default), then the most recent ones. The same array for the emulator's whole life.
   */
  readonly requests: readonly RecordedRequest[];
  /** How many requests were dropped from `requests` to keep within its bounds. */
  droppedRequests(): number;
  /** Number of `POST /v1/responses` received, faulted ones included. */
  countCreates(): number;
  /** The current Response object of a stored response (for test introspection). */
  getResponse(id: string): ResponseObject | undefined;
  /** Closes the server and every open socket and stops all generation timers. */
  close(): Promise<void>;
}

/** Status of a Response. */
export type ResponseStatus =
  | "queued"
  | "in_progress"
  | "completed"
  | "failed"
  | "incomplete"
  | "cancelled";

/** The `output_text` content part of a message. */
export interface OutputTextPart {
  type: "output_text";
  annotations: never[];
  logprobs: never[];
  text: string;
}

/** The single assistant message the emulator generates. */
export interface OutputMessage {
  id: string;
  type: "message";
  status: "in_progress" | "completed" | "incomplete";
  content: OutputTextPart[];
  role: "assistant";
}

/** Token usage, present once the response is terminal. */
export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cache_write_tokens: number; cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** The Response object as the emulator sends it (no SDK-only `output_text`). */
export interface ResponseObject {
  id: string;
  object: "response";
  created_at: number;
  status: ResponseStatus;
  background: boolean;
  completed_at: number | null;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: "max_output_tokens" | "content_filter" } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  max_tool_calls: number | null;
  model: string;
  output: OutputMessage[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: null; summary: null };
  service_tier: "auto" | "default";
  store: boolean;
  temperature: number;
  text: { format: { type: "text" }; verbosity: "medium" };
  tool_choice: "auto";
  tools: never[];
  top_logprobs: number;
  top_p: number;
  truncation: "disabled";
  usage: ResponseUsage | null;
  metadata: Record<string, string>;
}
