/**
 * The client port over a user-supplied `openai` client instance: OpenAI, Azure OpenAI, or any
 * OpenAI-compatible server reached through `baseURL`.
 *
 * Every call is made with `maxRetries: 0`. The SDK retries a failed POST without an idempotency
 * key, which can start a second, billed background response; and retries of reads belong in
 * the machine, where they are visible, bounded and survive a restore.
 */
import { type StreamResponse, sseEventStream } from "../sse/reader.js";
import {
  ClientFailureError,
  classifyClientError,
  ProtocolError,
  parseServerWaitMs,
} from "./client-failure.js";
import { clientSecrets, keptText } from "./redact.js";
import type {
  CreateRequest,
  InputMessage,
  ResponseEventStream,
  ResponseState,
  ResponseStatus,
  ResponseStreamEvent,
  ResponsesClient,
} from "./responses-client.js";

/** The per-request options baton passes to the SDK (its `RequestOptions`, as far as baton uses them). */
export interface RequestOptionsLike {
  maxRetries?: number;
  signal?: AbortSignal;
  fetchOptions?: { redirect?: "follow" | "manual" | "error" };
}

/** What the SDK's request methods return (its `APIPromise`), as far as baton reads it. */
export interface APIPromiseLike extends PromiseLike<unknown> {
  asResponse(): Promise<StreamResponse>;
  withResponse(): Promise<{
    data: unknown;
    response: { headers: { get(name: string): string | null } };
  }>;
}

/** The body of a create call as baton sends it. */
export interface CreateBodyLike {
  [field: string]: unknown;
  model: string;
  input: string | InputMessage[];
  background: true;
  stream: boolean;
}

/** The query of a retrieve call as baton sends it. */
export interface RetrieveQueryLike {
  stream?: boolean;
  starting_after?: number;
}

/**
 * The part of an `openai` client instance baton uses: the three `responses` methods it calls,
 * and the key, read only to redact it from failures. Structural on purpose: an `OpenAI` from
 * another copy of the `openai` package (different private fields, so a different class to
 * TypeScript), an `AzureOpenAI`, or a hand-written client all fit.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const client: OpenAIResponsesLike = new OpenAI();
 * ```
 */
export interface OpenAIResponsesLike {
  readonly responses: {
    create(body: CreateBodyLike, options?: RequestOptionsLike): APIPromiseLike;
    retrieve(
      responseId: string,
      query?: RetrieveQueryLike,
      options?: RequestOptionsLike,
    ): APIPromiseLike;
    cancel(responseId: string, options?: RequestOptionsLike): APIPromiseLike;
  };
  readonly apiKey?: string | null;
}

const STATUSES: ReadonlySet<string> = new Set<ResponseStatus>([
  "queued",
  "in_progress",
  "completed",
  "failed",
  "cancelled",
  "incomplete",
]);

const NO_RETRIES = { maxRetries: 0 } as const;
/**
 * A create is never redirected: `fetch` re-sends the body of a 307/308 (and would do so up to
 * 20 times), and each POST may start a billed response. With "manual", the 3xx comes back as
 * the SDK's error, which the classifier turns into a `rejected` failure naming the address.
 * Reads and cancels (no body, idempotent) follow redirects inside `fetch`, which bounds them at
 * 20 hops and drops `Authorization` when one leads to another origin; a redirected read that
 * answers another response is refused by the id check below.
 */
const CREATE_OPTIONS = { maxRetries: 0, fetchOptions: { redirect: "manual" } } as const;

/** Longer ids are not ids: refused before a request is made. */
const MAX_RESPONSE_ID_LENGTH = 1024;

/**
 * Wraps an `openai` client as baton's {@link ResponsesClient}.
 *
 * Every failure is thrown as a {@link ClientFailureError}: classified, with the client's key and
 * anything shaped like a key removed from its message. Server text baton keeps (a failed
 * response's `error`, a stream's `error` event) is redacted the same way; a reply about another
 * response than the one asked for is a `protocol` failure.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const client = openAIResponsesClient(new OpenAI());
 * const machine = createRunMachine(client);
 * ```
 */
export function openAIResponsesClient(openai: OpenAIResponsesLike): ResponsesClient {
  const secrets = () => clientSecrets(openai);
  const failed = (err: unknown) => new ClientFailureError(classifyClientError(err, secrets()));
  const guarded = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      throw failed(err);
    }
  };
  /** Checks, then redacts, each event; a create's stream takes its id from its first event. */
  const eventReader = (expectedId: string | undefined) => {
    let id = expectedId;
    return (raw: unknown): ResponseStreamEvent => {
      const event = toStreamEvent(raw);
      if (event.kind === "lifecycle" || event.kind === "terminal") {
        id ??= event.response.id;
        expectResponseId(event.response, id);
        return { ...event, response: redactState(event.response, secrets()) };
      }
      if (event.kind === "error") {
        return {
          ...event,
          message: keptText(event.message, secrets()),
          code: event.code === null ? null : keptText(event.code, secrets(), 200),
        };
      }
      return event;
    };
  };

  return {
    create(request, signal) {
      return guarded(async () => {
        const body = { ...toCreateBody(request), background: true, stream: false } as const;
        const response = await openai.responses.create(body, { ...CREATE_OPTIONS, signal });
        return redactState(toResponseState(response), secrets());
      });
    },
    createStream(request, signal) {
      return guarded(() => {
        const body = { ...toCreateBody(request), background: true, stream: true } as const;
        return openEventStream(
          signal,
          (closing) => openai.responses.create(body, { ...CREATE_OPTIONS, signal: closing }),
          eventReader(undefined),
          failed,
        );
      });
    },
    retrieve(responseId, signal) {
      return guarded(async () => {
        checkResponseId(responseId);
        const { data, response } = await openai.responses
          .retrieve(responseId, {}, { ...NO_RETRIES, signal })
          .withResponse();
        const state = expectResponseId(toResponseState(data), responseId);
        const pollAfterMs = parseServerWaitMs(response.headers.get("openai-poll-after-ms"), 1);
        return {
          response: redactState(state, secrets()),
          ...(pollAfterMs !== undefined ? { pollAfterMs } : {}),
        };
      });
    },
    streamFrom(responseId, startingAfter, signal) {
      return guarded(() => {
        checkResponseId(responseId);
        const query =
          startingAfter === undefined
            ? ({ stream: true } as const)
            : ({ stream: true, starting_after: startingAfter } as const);
        return openEventStream(
          signal,
          (closing) =>
            openai.responses.retrieve(responseId, query, { ...NO_RETRIES, signal: closing }),
          eventReader(responseId),
          failed,
        );
      });
    },
    cancel(responseId, signal) {
      return guarded(async () => {
        checkResponseId(responseId);
        const response = await openai.responses.cancel(responseId, { ...NO_RETRIES, signal });
        return redactState(expectResponseId(toResponseState(response), responseId), secrets());
      });
    },
  };
}

/**
 * A response id the SDK cannot put in a path (`.`, `..`, empty), or that is no id at all, is
 * refused at once as `rejected`: no request is made, and retrying cannot help.
 */
function checkResponseId(responseId: string): void {
  let problem: string | undefined;
  if (typeof responseId !== "string" || responseId.length === 0) problem = "it is empty";
  else if (responseId === "." || responseId === "..") problem = "it is a path segment";
  else if (responseId.length > MAX_RESPONSE_ID_LENGTH) {
    problem = `it is longer than ${MAX_RESPONSE_ID_LENGTH} characters`;
  } else if (hasSpaceOrControl(responseId)) {
    problem = "it holds spaces or control characters";
  }
  if (problem === undefined) return;
  throw new ClientFailureError({
    kind: "rejected",
    message: `response id ${JSON.stringify(String(responseId).slice(0, 80))} was not sent: ${problem}`,
  });
}

function hasSpaceOrControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/** A reply about another response than the one asked for is not ours to act on. */
function expectResponseId(state: ResponseState, responseId: string): ResponseState {
  if (state.id !== responseId) {
    throw new ProtocolError(
      `asked about response '${responseId.slice(0, 100)}', the server answered about '${state.id.slice(0, 100)}'`,
    );
  }
  return state;
}

/**
 * The server-given text of a response with secrets removed, cut to a bounded length. Not
 * `outputText`: that is the model's answer, whose length is the delivery cursor.
 */
function redactState(state: ResponseState, secrets: readonly string[]): ResponseState {
  if (state.error === null && state.incompleteReason === null) return state;
  return {
    ...state,
    error:
      state.error === null
        ? null
        : {
            code: keptText(state.error.code, secrets, 200),
            message: keptText(state.error.message, secrets),
          },
    incompleteReason:
      state.incompleteReason === null ? null : keptText(state.incompleteReason, secrets, 200),
  };
}

function toCreateBody(request: CreateRequest) {
  return {
    ...request.extra,
    model: request.model,
    input: typeof request.input === "string" ? request.input : request.input.map((m) => ({ ...m })),
    ...(request.instructions !== undefined ? { instructions: request.instructions } : {}),
    ...(request.maxOutputTokens !== undefined
      ? { max_output_tokens: request.maxOutputTokens }
      : {}),
    ...(request.metadata !== undefined ? { metadata: request.metadata } : {}),
    ...(request.previousResponseId !== undefined
      ? { previous_response_id: request.previousResponseId }
      : {}),
  };
}

/**
 * Makes a streamed request with the SDK and reads its body with baton's own reader. The request
 * gets a signal of its own: the caller's `signal` closes it (a connection timeout, a stopped
 * actor), and so does the stream's `abort()`. A failure while reading is thrown as `fail` makes it.
 */
async function openEventStream(
  signal: AbortSignal,
  request: (closing: AbortSignal) => { asResponse(): Promise<StreamResponse> },
  toEvent: (raw: unknown) => ResponseStreamEvent,
  fail: (err: unknown) => Error,
): Promise<ResponseEventStream> {
  const controller = new AbortController();
  if (signal.aborted) controller.abort();
  else signal.addEventListener("abort", () => controller.abort(), { once: true });
  const response = await request(controller.signal).asResponse();
  return sseEventStream(response, controller, toEvent, fail);
}

/** Reduces one SDK stream event to baton's {@link ResponseStreamEvent}. */
export function toStreamEvent(raw: unknown): ResponseStreamEvent {
  if (typeof raw !== "object" || raw === null) {
    throw new ProtocolError(`stream event is not an object: ${preview(raw)}`);
  }
  const event = raw as Record<string, unknown>;
  const type = event.type;
  const sequenceNumber = event.sequence_number;
  if (typeof type !== "string" || !isCount(sequenceNumber)) {
    // A negative, fractional or infinite (`1e400`) number would break deduplication and gaps.
    throw new ProtocolError(`stream event without type or sequence_number: ${preview(raw)}`);
  }
  switch (type) {
    case "response.output_text.delta":
      if (typeof event.delta !== "string") throw new ProtocolError("delta event without delta");
      return { kind: "delta", sequenceNumber, text: event.delta };
    case "response.created":
    case "response.queued":
    case "response.in_progress":
      return { kind: "lifecycle", sequenceNumber, response: toResponseState(event.response) };
    case "response.completed":
    case "response.failed":
    case "response.incomplete":
      return { kind: "terminal", sequenceNumber, response: toResponseState(event.response) };
    case "error": {
      // The spec puts code/message at the top level; the service sometimes nests them.
      const nested = (
        typeof event.error === "object" && event.error !== null ? event.error : event
      ) as Record<string, unknown>;
      return {
        kind: "error",
        sequenceNumber,
        code: typeof nested.code === "string" ? nested.code : null,
        message: typeof nested.message === "string" ? nested.message : "stream error",
      };
    }
    default:
      return { kind: "other", sequenceNumber, type };
  }
}

/** Checks the shape of a Response object and keeps what a run needs. */
export function toResponseState(raw: unknown): ResponseState {
  if (typeof raw !== "object" || raw === null) {
    throw new ProtocolError(`expected a Response object, got ${preview(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  if (typeof r.id !== "string" || typeof r.status !== "string" || !STATUSES.has(r.status)) {
    throw new ProtocolError(`expected a Response object with id and status, got ${preview(raw)}`);
  }
  const usage = r.usage as Record<string, unknown> | null | undefined;
  const error = r.error as Record<string, unknown> | null | undefined;
  const incomplete = r.incomplete_details as Record<string, unknown> | null | undefined;
  return {
    id: r.id,
    status: r.status as ResponseStatus,
    outputText: outputTextOf(r.output),
    usage:
      usage && typeof usage === "object"
        ? {
            inputTokens: countOf(usage.input_tokens),
            outputTokens: countOf(usage.output_tokens),
            totalTokens: countOf(usage.total_tokens),
          }
        : null,
    error:
      error && typeof error === "object"
        ? { code: String(error.code ?? "error"), message: String(error.message ?? "") }
        : null,
    incompleteReason:
      incomplete && typeof incomplete === "object" && typeof incomplete.reason === "string"
        ? incomplete.reason
        : null,
    createdAt:
      typeof r.created_at === "number" && Number.isFinite(r.created_at) ? r.created_at : null,
  };
}

/** A non-negative integer JSON can hold exactly: a sequence number, a token count. */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A token count as the server gave it; anything else (a string, NaN, -1) counts as 0. */
function countOf(value: unknown): number {
  return isCount(value) ? value : 0;
}

/** The SDK's `output_text`, computed here because `cancel()` and stream events lack it. */
function outputTextOf(output: unknown): string {
  if (!Array.isArray(output)) return "";
  let text = "";
  for (const item of output) {
    if (item?.type !== "message" || !Array.isArray(item.content)) continue;
    for (const part of item.content) {
      if (part?.type === "output_text" && typeof part.text === "string") text += part.text;
    }
  }
  return text;
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return (text ?? String(value)).slice(0, 80);
}
