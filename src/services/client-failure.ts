/**
 * Turns whatever a client call threw into a {@link ClientFailure}: plain, persistable data the
 * machine's guards decide on (retry, back off, fall back to polling, give up).
 *
 * It reads the `openai` SDK's errors by shape (`status`, `headers`, `error`), not by class, so a
 * second copy of the SDK in node_modules, or an OpenAI-compatible client, classifies the same.
 */

/** What kind of failure a client call met. */
export type ClientFailureKind =
  /** 429: nothing was done; wait `retryAfterMs` and try again. */
  | "rate-limited"
  /** 5xx: the server failed; it may or may not have acted on the request. */
  | "server"
  /** No connection could be made: the request never reached the server. */
  | "unreachable"
  /** The connection broke after the request may have been sent. */
  | "connection"
  /**
   * No answer within the request's own time limit (`RunOptions.requestTimeoutMs`,
   * `createTimeoutMs`): the server may be reachable, and may have acted on the request.
   */
  | "timeout"
  /** 404: the response does not exist, or has expired (about 10 minutes after creation). */
  | "not-found"
  /** 400 "more than 5 minutes old": the stream can no longer be replayed; poll instead. */
  | "replay-expired"
  /** 400: the response was not created with background and stream; poll instead. */
  | "not-streamable"
  /** 400 "Cannot cancel a completed response.". */
  | "already-finished"
  /** 401 / 403: the key is missing, wrong or not allowed. */
  | "unauthorized"
  /** Any other 4xx: the request itself is wrong; retrying will not help. */
  | "rejected"
  /** The server answered something that is not the Responses API (garbage, wrong shape). */
  | "protocol";

/** A classified client failure. Holds no secrets: messages come from the server or the SDK. */
export interface ClientFailure {
  kind: ClientFailureKind;
  message: string;
  status?: number;
  code?: string;
  requestId?: string;
  /** From `retry-after-ms` or `retry-after`, when the server sent one. */
  retryAfterMs?: number;
  /** From `x-should-retry`, when the server sent one: its word wins, as in the SDK. */
  shouldRetry?: boolean;
}

/** Failure kinds after which the same call may succeed if tried again later. */
export function isTransient(failure: ClientFailure): boolean {
  if (failure.shouldRetry !== undefined) return failure.shouldRetry;
  return (
    failure.kind === "rate-limited" ||
    failure.kind === "server" ||
    failure.kind === "unreachable" ||
    failure.kind === "connection" ||
    failure.kind === "timeout" ||
    failure.kind === "protocol"
  );
}

/**
 * Failure kinds that prove a create call did nothing on the server, so that creating again
 * cannot start a second (billed) response.
 */
export function provesNothingCreated(failure: ClientFailure): boolean {
  return (
    failure.kind === "rate-limited" ||
    failure.kind === "unreachable" ||
    failure.kind === "unauthorized" ||
    failure.kind === "rejected"
  );
}

/** Thrown by the client port when a reply does not have the shape of the Responses API. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

interface ErrorLike {
  status?: unknown;
  headers?: unknown;
  error?: unknown;
  message?: unknown;
  code?: unknown;
  requestID?: unknown;
  cause?: unknown;
  name?: unknown;
}

const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH"]);

/**
 * Classifies an error thrown by a client call.
 *
 * @example
 * ```ts
 * try { await client.retrieve(id, signal) }
 * catch (err) { const failure = classifyClientError(err); if (failure.kind === "not-found") ... }
 * ```
 */
export function classifyClientError(err: unknown): ClientFailure {
  if (err instanceof ProtocolError) return { kind: "protocol", message: err.message };
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorLike;
  const message = typeof e.message === "string" ? e.message : String(err);
  const status = typeof e.status === "number" ? e.status : undefined;
  const requestId = typeof e.requestID === "string" ? e.requestID : undefined;
  const body = (typeof e.error === "object" && e.error !== null ? e.error : {}) as {
    message?: unknown;
    code?: unknown;
  };
  const bodyMessage = typeof body.message === "string" ? body.message : message;
  const code = typeof body.code === "string" ? body.code : undefined;
  const shouldRetry = readHeader(e.headers, "x-should-retry");
  const base = {
    message: bodyMessage,
    ...(shouldRetry === "true" || shouldRetry === "false"
      ? { shouldRetry: shouldRetry === "true" }
      : {}),
    ...(status !== undefined ? { status } : {}),
    ...(code !== undefined ? { code } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
  };

  if (status === undefined) {
    if (e.name === "TypeError" && /Cannot use 'in' operator|is not iterable/.test(message)) {
      // The SDK parsed a non-JSON body as a string and then tripped over it: a garbage reply.
      return { kind: "protocol", message: `the server answered something that is not JSON` };
    }
    if (err instanceof SyntaxError) return { kind: "protocol", message };
    // The SDK's own `timeout` option: the server did not answer in time; it may be reachable.
    if (
      (err as { constructor?: { name?: unknown } } | null)?.constructor?.name ===
      "APIConnectionTimeoutError"
    ) {
      return { kind: "timeout", message: `timed out: ${message}` };
    }
    const causeCode = findCauseCode(err);
    if (causeCode !== undefined && UNREACHABLE_CODES.has(causeCode)) {
      return { kind: "unreachable", message: `${message} (${causeCode})` };
    }
    // APIConnectionError, APIConnectionTimeoutError, undici's `TypeError: terminated` of a
    // dropped stream, an `error` frame inside the stream: all of them are "the link broke".
    return { kind: "connection", message: causeCode ? `${message} (${causeCode})` : message };
  }
  if (status === 429) {
    const retryAfterMs = readRetryAfterMs(e.headers);
    return {
      kind: "rate-limited",
      ...base,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  if (status >= 500) {
    const retryAfterMs = readRetryAfterMs(e.headers);
    return { kind: "server", ...base, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  if (status === 404) return { kind: "not-found", ...base };
  if (status === 401 || status === 403) return { kind: "unauthorized", ...base };
  if (status === 400) {
    if (/no longer be streamed|more than 5 minutes old/i.test(bodyMessage)) {
      return { kind: "replay-expired", ...base };
    }
    if (/cannot be streamed/i.test(bodyMessage)) return { kind: "not-streamable", ...base };
    if (/cannot cancel a (completed|failed|incomplete)/i.test(bodyMessage)) {
      return { kind: "already-finished", ...base };
    }
  }
  return { kind: "rejected", ...base };
}

function findCauseCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Reads `retry-after-ms` (float ms) or `retry-after` (seconds or an HTTP date). */
function readHeader(headers: unknown, name: string): string | undefined {
  if (headers && typeof (headers as Headers).get === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  if (headers && typeof headers === "object") {
    const value = (headers as Record<string, unknown>)[name];
    return typeof value === "string" ? value : undefined;
  }
  return undefined;
}

export function readRetryAfterMs(headers: unknown): number | undefined {
  const get = (name: string) => readHeader(headers, name);
  const ms = Number.parseFloat(get("retry-after-ms") ?? "");
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = get("retry-after");
  if (raw) {
    const seconds = Number.parseFloat(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(raw);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  return undefined;
}
