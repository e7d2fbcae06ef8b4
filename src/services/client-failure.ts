/**
 * Turns whatever a client call threw into a {@link ClientFailure}: plain, persistable data the
 * machine's guards decide on (retry, back off, fall back to polling, give up).
 *
 * It reads the `openai` SDK's errors by shape (`status`, `headers`, `error`), not by class, so a
 * second copy of the SDK in node_modules, or an OpenAI-compatible client, classifies the same.
 *
 * This is the one place where failures enter the machine, so every message is redacted here
 * (the client's key, anything shaped like a key or a bearer token): a server that echoes the
 * `Authorization` header gets nothing written down.
 */
import { type ClientFailure, ClientFailureError, ProtocolError } from "../errors.js";
import { keptText } from "./redact.js";

/**
 * The longest wait baton accepts from a server (`retry-after`, `retry-after-ms`,
 * `openai-poll-after-ms`): 10 minutes. A longer plausible ask is clamped to it; nonsense (see
 * {@link parseServerWaitMs}) is treated as if the header were absent.
 */
export const MAX_SERVER_WAIT_MS = 600_000;

/**
 * A server-given wait beyond this (a day) is not a wait but a broken or hostile header
 * (`retry-after: 999999999`, `openai-poll-after-ms: 1e308`, a date in 2099): it is ignored, and
 * the machine's own backoff or poll interval applies.
 */
export const NONSENSE_SERVER_WAIT_MS = 86_400_000;

/**
 * A wait a server asked for, bounded: `undefined` when absent or nonsense (not a finite number,
 * negative, beyond {@link NONSENSE_SERVER_WAIT_MS}); otherwise at most {@link MAX_SERVER_WAIT_MS}.
 * The port applies it when it parses a header, and the machine again where it computes a wake
 * time, so that a run's waits stay bounded whatever a client port reports.
 *
 * @example
 * ```ts
 * serverWait(20); // 20
 * serverWait(999_999_999_000); // undefined (31 years: nonsense)
 * serverWait(3_600_000); // 600000 (an hour: cut to 10 minutes)
 * serverWait(-5); // undefined
 * ```
 */
export function serverWait(ms: unknown): number | undefined {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return undefined;
  if (ms > NONSENSE_SERVER_WAIT_MS) return undefined;
  return Math.min(ms, MAX_SERVER_WAIT_MS);
}

export type { ClientFailure, ClientFailureKind } from "../errors.js";

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
 * Failures that prove a create call did nothing on the server, so that creating again cannot
 * start a second (billed) response: a connection never made, and any 4xx answer (the server
 * refused the request: a 404 is a wrong path, not a response that may exist) except 408,
 * a request the server gave up reading.
 */
export function provesNothingCreated(failure: ClientFailure): boolean {
  if (failure.kind === "unreachable") return true;
  if (failure.status !== undefined) {
    return failure.status >= 400 && failure.status < 500 && failure.status !== 408;
  }
  return (
    failure.kind === "rate-limited" ||
    failure.kind === "unauthorized" ||
    failure.kind === "rejected"
  );
}

export { ClientFailureError, ProtocolError } from "../errors.js";

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
 * Classifies an error thrown by a client call, with every secret removed from its message:
 * each of `secrets` (the client's key) and anything shaped like a key or a bearer token.
 *
 * @example
 * ```ts
 * try { await client.retrieve(id, signal) }
 * catch (err) { const failure = classifyClientError(err); if (failure.kind === "not-found") ... }
 * ```
 */
export function classifyClientError(err: unknown, secrets: readonly string[] = []): ClientFailure {
  if (err instanceof ClientFailureError) return err.failure;
  const failure = classify(err);
  // Every string here came from the server or the SDK: the body's message and code, the
  // request id header, previews of a garbage reply. Kept redacted and bounded.
  failure.message = keptText(failure.message, secrets);
  if (failure.code !== undefined) failure.code = keptText(failure.code, secrets, 200);
  if (failure.requestId !== undefined) {
    failure.requestId = keptText(failure.requestId, secrets, 200);
  }
  return failure;
}

function classify(err: unknown): ClientFailure {
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
    if (isLocalSdkError(err)) {
      // The SDK refused to send the request (a response id of `.` or `..`, a missing key):
      // nothing reached the server and trying again cannot help.
      return { kind: "rejected", message: `the request was not sent: ${message}` };
    }
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
    const retryAfterMs = readRetryAfterMs(e.headers) ?? readRateLimitResetMs(e.headers);
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
  if (status >= 300 && status < 400) {
    // Only a create is made with `redirect: "manual"` (the port's choice), so this is a create
    // the server wanted elsewhere; other calls follow redirects inside `fetch`.
    const location = readHeader(e.headers, "location");
    return {
      ...base,
      kind: "rejected",
      message:
        `the server answered ${status}, a redirect to ${location ? `'${location.slice(0, 200)}'` : "an address it did not give"}; ` +
        "baton refused to follow it, because following a create re-sends it and could start a second response " +
        "(set the client's baseURL to the address the server points to)",
    };
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

/**
 * An error the SDK threw before sending anything: its base class `OpenAIError`, never one of
 * the `APIError` family (which all carry a `status` property, `undefined` for a broken link).
 * By constructor name, so that a second copy of the SDK is recognised too.
 */
function isLocalSdkError(err: unknown): boolean {
  if (!(err instanceof Error) || "status" in err) return false;
  return err.constructor?.name === "OpenAIError";
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

/** A plain non-negative decimal: no sign, no exponent, no trailing garbage (`"5abc"`). */
const DECIMAL = /^\s*(\d{1,15}(?:\.\d+)?)\s*$/;
/** An HTTP date in one of its three forms (RFC 9110 §5.6.7): they all start with a day name. */
const HTTP_DATE = /^\s*(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /i;

/**
 * Parses a server-given wait header into milliseconds. `unit` is 1000 for `retry-after`
 * (seconds, or an HTTP date) and 1 for `retry-after-ms` and `openai-poll-after-ms`.
 * Nonsense is `undefined`, as if the header were absent: not a plain decimal (negative, NaN,
 * `1e3`, `5abc`), not a date, or more than a day away. A sensible wait is clamped to
 * {@link MAX_SERVER_WAIT_MS}; a date in the past is 0.
 *
 * @example
 * ```ts
 * parseServerWaitMs("2", 1000); // 2000
 * parseServerWaitMs("-5", 1); // undefined
 * parseServerWaitMs("3600", 1000); // 600000 (clamped)
 * parseServerWaitMs("1e308", 1); // undefined
 * ```
 */
export function parseServerWaitMs(
  raw: string | null | undefined,
  unit: 1 | 1000,
): number | undefined {
  if (raw === null || raw === undefined || raw.length > 100) return undefined;
  let ms: number | undefined;
  const decimal = DECIMAL.exec(raw);
  if (decimal) ms = Number(decimal[1]) * unit;
  else if (unit === 1000 && HTTP_DATE.test(raw)) {
    const date = Date.parse(raw);
    if (Number.isFinite(date)) ms = Math.max(0, date - Date.now());
  }
  return serverWait(ms);
}

/** A duration as OpenAI's `x-ratelimit-reset-*` headers give it: `1s`, `6m0s`, `59.88s`, `12ms`. */
const RESET_DURATION =
  /^\s*(?:(\d{1,6})h)?(?:(\d{1,6})m(?!s))?(?:(\d{1,9}(?:\.\d+)?)s)?(?:(\d{1,9}(?:\.\d+)?)ms)?\s*$/;

/**
 * Parses an `x-ratelimit-reset-*` duration (`6m0s`, `1.5s`, `20ms`, `1h2m`) into milliseconds,
 * bounded as every server wait is ({@link serverWait}); anything else is `undefined`.
 *
 * @example
 * ```ts
 * parseResetDuration("6m0s"); // 360000
 * parseResetDuration("soon"); // undefined
 * ```
 */
export function parseResetDuration(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || raw.length > 40) return undefined;
  const match = RESET_DURATION.exec(raw);
  if (!match || match.slice(1).every((part) => part === undefined)) return undefined;
  const [, h, m, sec, ms] = match;
  const total =
    Number(h ?? 0) * 3_600_000 +
    Number(m ?? 0) * 60_000 +
    Number(sec ?? 0) * 1_000 +
    Number(ms ?? 0);
  return serverWait(total);
}

/**
 * For a 429 without `retry-after`: when the `x-ratelimit-remaining-requests` or `-tokens`
 * header says that limit is spent (`0`), the wait until its `x-ratelimit-reset-*` (the longer
 * of the two when both are spent). A limit not spent names no wait (the 429 is another one's).
 *
 * @example
 * ```ts
 * readRateLimitResetMs(new Headers({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s" })); // 2000
 * ```
 */
export function readRateLimitResetMs(headers: unknown): number | undefined {
  let wait: number | undefined;
  for (const limit of ["requests", "tokens"]) {
    if (readHeader(headers, `x-ratelimit-remaining-${limit}`)?.trim() !== "0") continue;
    const ms = parseResetDuration(readHeader(headers, `x-ratelimit-reset-${limit}`));
    if (ms !== undefined) wait = Math.max(wait ?? 0, ms);
  }
  return wait;
}

/**
 * Reads `retry-after-ms` (ms) or, when that is absent or nonsense, `retry-after` (seconds or an
 * HTTP date), through {@link parseServerWaitMs}: at most {@link MAX_SERVER_WAIT_MS}.
 *
 * @example
 * ```ts
 * readRetryAfterMs(new Headers({ "retry-after": "1" })); // 1000
 * ```
 */
export function readRetryAfterMs(headers: unknown): number | undefined {
  return (
    parseServerWaitMs(readHeader(headers, "retry-after-ms"), 1) ??
    parseServerWaitMs(readHeader(headers, "retry-after"), 1000)
  );
}
