/**
 * The Responses API semantics, free of HTTP: create, retrieve, cancel and delete, each turning a
 * parsed request into a `Reply` description (or throwing an `ApiError`). The HTTP layer decides
 * how and when that reply goes out, which is where faults hook in.
 */
import type { Clock } from "./clock.js";
import { ApiError, invalidRequest, responseNotFound } from "./errors.js";
import { lifecycleFrame } from "./events.js";
import { parseScript } from "./faults.js";
import { DEFAULT_FAIL_MESSAGE, type GenerationPlan, startGeneration } from "./generation.js";
import { estimateTokens, extractInputText } from "./generator.js";
import { newId } from "./random.js";
import { toResponseObject } from "./response-object.js";
import {
  isTerminal,
  newRecord,
  type ResponseEcho,
  type ResponseRecord,
  type ResponseStore,
} from "./store.js";
import type { GenerationScript } from "./types.js";

/** Emulator options with every default filled in (the subset the API semantics need). */
export interface ApiSettings {
  clock: Clock;
  seed: number;
  tokenDelayMs: number;
  queuedMs: number;
  outputTokens: number;
  replayWindowMs: number;
  cancelCompleted: "error" | "return";
  streamOnCancel: "failed-event" | "close";
  rejectBackgroundWithoutStore: boolean;
  obfuscation: boolean;
  /** Sent as `openai-poll-after-ms` on polls of a response still running; none when null. */
  pollAfterMs: number | null;
}

/** What to send back; the HTTP layer writes it. */
export type Reply =
  | { type: "json"; status: number; body: unknown; headers?: Record<string, string> }
  | { type: "sse"; record: ResponseRecord; start: number; stripObfuscation: boolean }
  /** Foreground JSON create: send the Response object once the response is terminal. */
  | { type: "await"; record: ResponseRecord };

/** The body of `DELETE /v1/responses/{id}` (the spec's example). */
export interface DeletedResponse {
  id: string;
  object: "response";
  deleted: true;
}

/** A create request after validation; `echo` is what the Response object repeats of it. */
interface CreateRequest {
  background: boolean;
  stream: boolean;
  store: boolean;
  inputText: string;
  obfuscation: boolean;
  echo: ResponseEcho;
}

/**
 * The four endpoints over one `ResponseStore`.
 *
 * @example
 * ```ts
 * const api = new ResponsesApi(settings, store);
 * const reply = api.create({ model: "gpt-4o-mini", input: "hi", background: true }, []);
 * ```
 */
export class ResponsesApi {
  constructor(
    private readonly settings: ApiSettings,
    private readonly store: ResponseStore,
  ) {}

  /**
   * `POST /v1/responses`. `scripts` are the generation scripts that apply, weakest first
   * (fault queue, header); `metadata.emulator_script` is merged in between. Returns the reply
   * and the id of the new response.
   */
  create(
    body: unknown,
    scripts: readonly (GenerationScript | undefined)[],
  ): { reply: Reply; responseId: string } {
    const request = this.#parseCreate(body);
    const { echo } = request;
    const metadataScript = echo.metadata.emulator_script;
    const [queued, header] = scripts;
    const script: GenerationScript = {
      ...queued,
      ...(metadataScript === undefined
        ? {}
        : parseScript(metadataScript, "metadata.emulator_script")),
      ...header,
    };
    const { clock, seed } = this.settings;
    const record = newRecord({
      id: newId("resp"),
      itemId: newId("msg"),
      createdAtMs: clock.now(),
      background: request.background,
      stream: request.stream,
      store: request.store,
      echo,
      inputTokens: estimateTokens(request.inputText) + estimateTokens(echo.instructions ?? ""),
      obfuscation: request.obfuscation,
      status: request.background ? "queued" : "in_progress",
    });
    this.store.add(record);
    const forgetWhenDone = !request.store && !request.background;
    startGeneration(record, this.#plan(script), {
      clock,
      seed,
      inputText: request.inputText,
      // A foreground response with store:false can never be retrieved: free it at once.
      onFinished: forgetWhenDone ? (done) => this.store.remove(done) : undefined,
    });
    const reply: Reply = request.stream
      ? { type: "sse", record, start: 0, stripObfuscation: false }
      : request.background
        ? { type: "json", status: 200, body: toResponseObject(record) }
        : { type: "await", record };
    return { reply, responseId: record.id };
  }

  /** `GET /v1/responses/{id}`, JSON or (with `stream=true`) replay-then-follow SSE. */
  retrieve(id: string, query: URLSearchParams): Reply {
    const record = this.#find(id);
    if (query.get("stream") !== "true") {
      const body = toResponseObject(record);
      const running = body.status === "queued" || body.status === "in_progress";
      const { pollAfterMs } = this.settings;
      return {
        type: "json",
        status: 200,
        body,
        ...(running && pollAfterMs !== null
          ? { headers: { "openai-poll-after-ms": String(pollAfterMs) } }
          : {}),
      };
    }
    if (!record.background) {
      throw invalidRequest(
        "Response cannot be streamed, it was not created with background=true.",
        "stream",
      );
    }
    if (!record.stream) {
      throw invalidRequest(
        "Response cannot be streamed, it was not created with stream=true.",
        "stream",
      );
    }
    const createdAtMs = Math.floor(record.createdAtMs / 1000) * 1000;
    const windowOver = this.settings.clock.now() - createdAtMs > this.settings.replayWindowMs;
    if (windowOver || record.log.released) {
      const minutes = Math.round(this.settings.replayWindowMs / 60_000);
      throw invalidRequest(
        `This response can no longer be streamed because it is more than ${minutes} minutes old`,
        "stream",
      );
    }
    const startingAfter = query.get("starting_after");
    let start = 0;
    if (startingAfter !== null && startingAfter !== "") {
      const parsed = Number(startingAfter);
      if (!Number.isInteger(parsed)) {
        throw invalidRequest(
          `Invalid 'starting_after': expected an integer, but got '${startingAfter}' instead.`,
          "starting_after",
          "invalid_type",
        );
      }
      start = Math.max(0, parsed + 1);
    }
    const stripObfuscation = query.get("include_obfuscation") === "false";
    return { type: "sse", record, start, stripObfuscation };
  }

  /** `POST /v1/responses/{id}/cancel`. */
  cancel(id: string): Reply {
    const record = this.#find(id);
    if (!record.background) throw invalidRequest("Cannot cancel a synchronous response.");
    if (record.status === "cancelled") {
      return { type: "json", status: 200, body: toResponseObject(record) };
    }
    if (isTerminal(record.status)) {
      if (this.settings.cancelCompleted === "return") {
        return { type: "json", status: 200, body: toResponseObject(record) };
      }
      throw invalidRequest("Cannot cancel a completed response.");
    }
    record.stop();
    record.status = "cancelled";
    const { log } = record;
    if (this.settings.streamOnCancel === "failed-event") {
      // Never `response.cancelled`: it is not in the spec and SDK helpers throw on it.
      log.push(lifecycleFrame("response.failed", record, log.length));
      log.publish();
    }
    log.close();
    return { type: "json", status: 200, body: toResponseObject(record) };
  }

  /** `DELETE /v1/responses/{id}`: stops generation, ends live streams, forgets the response. */
  delete(id: string): Reply {
    const record = this.#find(id);
    this.store.remove(record);
    const body: DeletedResponse = { id: record.id, object: "response", deleted: true };
    return { type: "json", status: 200, body };
  }

  #find(id: string): ResponseRecord {
    const record = this.store.lookup(id);
    if (record === undefined) throw responseNotFound(id);
    return record;
  }

  #plan(script: GenerationScript): GenerationPlan {
    const { settings } = this;
    return {
      outputTokens: Math.floor(script.outputTokens ?? settings.outputTokens),
      tokenDelayMs: script.tokenDelayMs ?? settings.tokenDelayMs,
      queuedMs: script.queuedMs ?? settings.queuedMs,
      stuckQueued: script.stuckQueued === true,
      failAfterDeltas: script.failAfterDeltas ?? null,
      failCode: script.failCode ?? "server_error",
      failMessage: script.failMessage ?? DEFAULT_FAIL_MESSAGE,
      keepaliveEvery:
        script.keepaliveEvery !== undefined && script.keepaliveEvery >= 1
          ? Math.floor(script.keepaliveEvery)
          : null,
    };
  }

  #parseCreate(body: unknown): CreateRequest {
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw invalidRequest("The request body must be a JSON object.", null, "invalid_type");
    }
    const b = body as Record<string, unknown>;
    const background = optionalBoolean(b, "background") ?? false;
    const stream = optionalBoolean(b, "stream") ?? false;
    const store = optionalBoolean(b, "store") ?? true;
    if (b.model === undefined || b.model === null || b.model === "") {
      throw invalidRequest(
        "Missing required parameter: 'model'.",
        "model",
        "missing_required_parameter",
      );
    }
    if (typeof b.model !== "string") throw invalidType("model", "a string", b.model);
    const input = b.input;
    if (input !== undefined && input !== null && typeof input !== "string") {
      if (!Array.isArray(input)) throw invalidType("input", "a string or an array", input);
      input.forEach((item: unknown, index) => {
        if (item === null || typeof item !== "object" || Array.isArray(item)) {
          throw invalidType(`input[${index}]`, "an object", item);
        }
        const content = (item as { content?: unknown }).content;
        if (content !== undefined && typeof content !== "string" && !Array.isArray(content)) {
          throw invalidType(`input[${index}].content`, "a string or an array", content);
        }
      });
    }
    const temperature = optionalNumber(b, "temperature", 0, 2);
    const topP = optionalNumber(b, "top_p", 0, 1);
    const streamOptionsValue = b.stream_options;
    if (
      streamOptionsValue !== undefined &&
      streamOptionsValue !== null &&
      (typeof streamOptionsValue !== "object" || Array.isArray(streamOptionsValue))
    ) {
      throw invalidType("stream_options", "an object", streamOptionsValue);
    }
    if (background && !store && this.settings.rejectBackgroundWithoutStore) {
      throw invalidRequest(
        "Background mode requires store=true; stateless (store=false) background requests are rejected.",
        "background",
        "unsupported_parameter",
      );
    }
    const maxOutputTokens = b.max_output_tokens ?? null;
    if (maxOutputTokens !== null) {
      if (typeof maxOutputTokens !== "number" || !Number.isInteger(maxOutputTokens)) {
        throw invalidRequest(
          "Invalid type for 'max_output_tokens': expected an integer.",
          "max_output_tokens",
          "invalid_type",
        );
      }
      if (maxOutputTokens < 16) {
        throw invalidRequest(
          `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got ${maxOutputTokens} instead.`,
          "max_output_tokens",
          "integer_below_min_value",
        );
      }
    }
    const instructions = b.instructions ?? null;
    if (instructions !== null && typeof instructions !== "string") {
      throw invalidRequest(
        "Invalid type for 'instructions': expected a string.",
        "instructions",
        "invalid_type",
      );
    }
    const metadata = b.metadata ?? {};
    if (
      typeof metadata !== "object" ||
      metadata === null ||
      Array.isArray(metadata) ||
      Object.values(metadata).some((value) => typeof value !== "string")
    ) {
      throw invalidRequest(
        "Invalid 'metadata': expected an object with string values.",
        "metadata",
        "invalid_type",
      );
    }
    const previousResponseId = b.previous_response_id ?? null;
    if (previousResponseId !== null) {
      if (typeof previousResponseId !== "string" || !this.store.lookup(previousResponseId)) {
        throw new ApiError(
          400,
          `Previous response with id '${String(previousResponseId)}' not found.`,
          "invalid_request_error",
          "previous_response_id",
          "previous_response_not_found",
        );
      }
    }
    const streamOptions = streamOptionsValue as
      | { include_obfuscation?: unknown }
      | null
      | undefined;
    const obfuscationOff =
      streamOptions?.include_obfuscation === false || b.include_obfuscation === false;
    return {
      background,
      stream,
      store,
      inputText: extractInputText(input),
      obfuscation: this.settings.obfuscation && !obfuscationOff,
      echo: {
        model: b.model,
        instructions,
        maxOutputTokens,
        metadata: metadata as Record<string, string>,
        previousResponseId,
        temperature: temperature ?? 1,
        topP: topP ?? 1,
      },
    };
  }
}

/** How the API names the JSON type of a value in its error messages. */
function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** 400 `invalid_type` in the API's wording. */
function invalidType(param: string, expected: string, value: unknown): ApiError {
  return invalidRequest(
    `Invalid type for '${param}': expected ${expected}, but got ${jsonTypeName(value)} instead.`,
    param,
    "invalid_type",
  );
}

/** A number in [min, max], or undefined when absent (null counts as absent). */
function optionalNumber(
  body: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number") throw invalidType(key, "a decimal", value);
  if (value < min) {
    throw invalidRequest(
      `Invalid '${key}': decimal below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
      key,
      "decimal_below_min_value",
    );
  }
  if (value > max) {
    throw invalidRequest(
      `Invalid '${key}': decimal above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
      key,
      "decimal_above_max_value",
    );
  }
  return value;
}

function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") {
    throw invalidRequest(
      `Invalid type for '${key}': expected a boolean, but got ${jsonTypeName(value)} instead.`,
      key,
      "invalid_type",
    );
  }
  return value;
}
