/**
 * The wire form of a response: turns a response record into the Response object of the API
 * (what `GET /v1/responses/{id}` sends, and lifecycle events embed), with every field the spec
 * requires and in the order of a real capture (protocol.md §3). `output_text` is left out on
 * purpose: it is an SDK-only convenience property the SDK computes itself.
 */
import type { ResponseRecord } from "./store.js";
import { isTerminal } from "./store.js";
import type { OutputMessage, OutputTextPart, ResponseObject } from "./types.js";

/** The `output_text` content part holding `text`. */
export function textPart(text: string): OutputTextPart {
  return { type: "output_text", annotations: [], logprobs: [], text };
}

/** The message item as it currently stands (content empty until the part was added). */
export function outputItem(record: ResponseRecord): OutputMessage {
  return {
    id: record.itemId,
    type: "message",
    status: record.itemStatus ?? "in_progress",
    content: record.hasPart ? [textPart(record.text)] : [],
    role: "assistant",
  };
}

/**
 * The current Response object of a record.
 *
 * @example
 * ```ts
 * const body = JSON.stringify(toResponseObject(record)); // what GET /v1/responses/{id} sends
 * ```
 */
export function toResponseObject(record: ResponseRecord): ResponseObject {
  const { echo } = record;
  return {
    id: record.id,
    object: "response",
    created_at: Math.floor(record.createdAtMs / 1000),
    status: record.status,
    background: record.background,
    completed_at:
      record.status === "completed" && record.completedAtMs !== null
        ? Math.floor(record.completedAtMs / 1000)
        : null,
    error: record.error,
    incomplete_details:
      record.incompleteReason === null ? null : { reason: record.incompleteReason },
    instructions: echo.instructions,
    max_output_tokens: echo.maxOutputTokens,
    max_tool_calls: null,
    model: echo.model,
    output: record.itemStatus === null ? [] : [outputItem(record)],
    parallel_tool_calls: true,
    previous_response_id: echo.previousResponseId,
    reasoning: { effort: null, summary: null },
    // Captures show "auto" while the response runs and the tier actually used at the end.
    service_tier: isTerminal(record.status) ? "default" : "auto",
    store: record.store,
    temperature: echo.temperature,
    text: { format: { type: "text" }, verbosity: "medium" },
    tool_choice: "auto",
    tools: [],
    top_logprobs: 0,
    top_p: echo.topP,
    truncation: "disabled",
    usage: record.usage,
    metadata: echo.metadata,
  };
}
