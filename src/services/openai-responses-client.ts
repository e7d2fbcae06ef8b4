/**
 * The client port over a user-supplied `openai` client instance: OpenAI, Azure OpenAI, or any
 * OpenAI-compatible server reached through `baseURL`.
 *
 * Every call is made with `maxRetries: 0`. The SDK retries a failed POST without an idempotency
 * key, which can start a second, billed background response; and retries of reads belong in
 * the machine, where they are visible, bounded and survive a restore.
 */
import type OpenAI from "openai";
import { ProtocolError } from "./client-failure.js";
import type {
  CreateRequest,
  ResponseEventStream,
  ResponseState,
  ResponseStatus,
  ResponseStreamEvent,
  ResponsesClient,
} from "./responses-client.js";
import { sseEventStream } from "./sse-event-stream.js";

/** The part of an `openai` client instance baton uses. */
export type OpenAIResponsesLike = Pick<OpenAI, "responses">;

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
 * Wraps an `openai` client as baton's {@link ResponsesClient}.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const client = openAIResponsesClient(new OpenAI());
 * const machine = createRunMachine(client);
 * ```
 */
export function openAIResponsesClient(openai: OpenAIResponsesLike): ResponsesClient {
  return {
    async create(request, signal) {
      const body = { ...toCreateBody(request), background: true, stream: false } as const;
      const response = await openai.responses.create(body, { ...NO_RETRIES, signal });
      return toResponseState(response);
    },
    async createStream(request, signal) {
      const body = { ...toCreateBody(request), background: true, stream: true } as const;
      return openEventStream(signal, (closing) =>
        openai.responses.create(body, { ...NO_RETRIES, signal: closing }),
      );
    },
    async retrieve(responseId, signal) {
      const { data, response } = await openai.responses
        .retrieve(responseId, {}, { ...NO_RETRIES, signal })
        .withResponse();
      const pollAfter = Number.parseFloat(response.headers.get("openai-poll-after-ms") ?? "");
      return {
        response: toResponseState(data),
        ...(Number.isFinite(pollAfter) && pollAfter >= 0 ? { pollAfterMs: pollAfter } : {}),
      };
    },
    async streamFrom(responseId, startingAfter, signal) {
      const query =
        startingAfter === undefined
          ? ({ stream: true } as const)
          : ({ stream: true, starting_after: startingAfter } as const);
      return openEventStream(signal, (closing) =>
        openai.responses.retrieve(responseId, query, { ...NO_RETRIES, signal: closing }),
      );
    },
    async cancel(responseId, signal) {
      return toResponseState(await openai.responses.cancel(responseId, { ...NO_RETRIES, signal }));
    },
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
 * actor), and so does the stream's `abort()`.
 */
async function openEventStream(
  signal: AbortSignal,
  request: (closing: AbortSignal) => { asResponse(): Promise<Response> },
): Promise<ResponseEventStream> {
  const controller = new AbortController();
  if (signal.aborted) controller.abort();
  else signal.addEventListener("abort", () => controller.abort(), { once: true });
  const response = await request(controller.signal).asResponse();
  return sseEventStream(response, controller, toStreamEvent);
}

/** Reduces one SDK stream event to baton's {@link ResponseStreamEvent}. */
export function toStreamEvent(raw: unknown): ResponseStreamEvent {
  if (typeof raw !== "object" || raw === null) {
    throw new ProtocolError(`stream event is not an object: ${preview(raw)}`);
  }
  const event = raw as Record<string, unknown>;
  const type = event.type;
  const sequenceNumber = event.sequence_number;
  if (typeof type !== "string" || typeof sequenceNumber !== "number") {
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
            inputTokens: Number(usage.input_tokens ?? 0),
            outputTokens: Number(usage.output_tokens ?? 0),
            totalTokens: Number(usage.total_tokens ?? 0),
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
    createdAt: typeof r.created_at === "number" ? r.created_at : null,
  };
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
