/**
 * The client port: the four calls the run machine makes to a Responses API (create, retrieve,
 * stream from a sequence number, cancel), in baton's own small types.
 *
 * The machine never sees SDK objects. `openai-responses-client.ts` implements this port over a
 * user-supplied `openai` client; a test or another transport can implement it too and hand it
 * to `createRunMachine`. Every type here is plain data, so everything the machine keeps in its
 * context can be persisted as JSON.
 */

/** The statuses of a Response, as the service reports them. */
export type ResponseStatus =
  | "queued"
  | "in_progress"
  | "completed"
  | "failed"
  | "cancelled"
  | "incomplete";

/** Token usage of a finished response (`null` on the wire until it is terminal). */
export interface ResponseUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

/** What baton keeps of a Response object: the parts a run needs, never the whole payload. */
export interface ResponseState {
  id: string;
  status: ResponseStatus;
  /** Concatenated `output_text` parts of every message item (partial while in progress). */
  outputText: string;
  usage: ResponseUsage | null;
  error: { code: string; message: string } | null;
  incompleteReason: string | null;
  /** `created_at` of the response, unix seconds. */
  createdAt: number | null;
}

/**
 * One server-sent event of a Responses stream, reduced to what a run acts on. Every event
 * carries its `sequenceNumber`; the machine deduplicates and detects gaps with it.
 */
export type ResponseStreamEvent =
  | { kind: "delta"; sequenceNumber: number; text: string }
  | {
      /** `response.created`, `response.queued`, `response.in_progress`. */
      kind: "lifecycle";
      sequenceNumber: number;
      response: ResponseState;
    }
  | {
      /** `response.completed`, `response.failed`, `response.incomplete`. */
      kind: "terminal";
      sequenceNumber: number;
      response: ResponseState;
    }
  | { kind: "error"; sequenceNumber: number; code: string | null; message: string }
  | {
      /** Anything else (`keepalive`, item and part events, other output types). */
      kind: "other";
      sequenceNumber: number;
      type: string;
    };

/** An open event stream: iterate it once; `abort()` closes the connection. */
export interface ResponseEventStream extends AsyncIterable<ResponseStreamEvent> {
  abort(): void;
}

/** The body of a create call, minus `background` and `stream`, which the machine sets. */
export interface CreateRequest {
  model: string;
  input: string | ReadonlyArray<InputMessage>;
  instructions?: string;
  maxOutputTokens?: number;
  metadata?: Record<string, string>;
  previousResponseId?: string;
  /** Any further body fields, passed through unchanged (`reasoning`, `tools`, ...). */
  extra?: Record<string, unknown>;
}

/** A message of a create call's `input`. */
export interface InputMessage {
  role: "user" | "assistant" | "system" | "developer";
  content: string;
}

/** A retrieve call's answer, with the server's polling hint when it sent one. */
export interface RetrieveResult {
  response: ResponseState;
  /** From the `openai-poll-after-ms` header, when present. */
  pollAfterMs?: number;
}

/**
 * The client port. Each call takes an `AbortSignal` that the machine aborts when it leaves the
 * state that made the call. Failures are thrown; `classifyClientError` turns them into a
 * {@link ClientFailure}.
 */
export interface ResponsesClient {
  /** `POST /responses` with `background: true`; must not retry by itself (no second create). */
  create(request: CreateRequest, signal: AbortSignal): Promise<ResponseState>;
  /** `POST /responses` with `background: true, stream: true`. */
  createStream(request: CreateRequest, signal: AbortSignal): Promise<ResponseEventStream>;
  /** `GET /responses/{id}`. */
  retrieve(responseId: string, signal: AbortSignal): Promise<RetrieveResult>;
  /** `GET /responses/{id}?stream=true[&starting_after=N]`: events after N, or all of them. */
  streamFrom(
    responseId: string,
    startingAfter: number | undefined,
    signal: AbortSignal,
  ): Promise<ResponseEventStream>;
  /** `POST /responses/{id}/cancel`. */
  cancel(responseId: string, signal: AbortSignal): Promise<ResponseState>;
}

/** Statuses after which a response never changes again. */
export function isTerminalStatus(status: ResponseStatus): boolean {
  return status !== "queued" && status !== "in_progress";
}
