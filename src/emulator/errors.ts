/**
 * The error envelope `{"error":{"message","type","param","code"}}` and the handful of API errors
 * the emulator answers with. Handlers throw `ApiError`; the HTTP layer turns it into a reply, so
 * the wording of every error lives here, next to its source in protocol.md.
 */
import { ApiError } from "../errors.js";

export { ApiError, type ApiErrorBody as ErrorBody } from "../errors.js";

/** 404 for an unknown (or expired, or deleted) response id. Wording widely emulated [protocol §2.5]. */
export function responseNotFound(id: string): ApiError {
  return new ApiError(404, `Response with id '${id}' not found.`, "invalid_request_error");
}

/** 400 for a malformed request. */
export function invalidRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

/** 404 for a path the emulator does not serve. */
export function unknownRoute(method: string, path: string): ApiError {
  return new ApiError(404, `Invalid URL (${method} ${path})`, "invalid_request_error");
}

/** 401 when an API key is configured and the request does not carry it. */
export function invalidApiKey(): ApiError {
  return new ApiError(
    401,
    "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    "invalid_request_error",
    null,
    "invalid_api_key",
  );
}

/** The default message, type and code for an injected status fault. */
export function faultError(
  status: number,
  message: string | undefined,
  headers: Record<string, string>,
): ApiError {
  if (status === 429) {
    return new ApiError(
      429,
      message ?? "Rate limit reached for requests. Please try again later.",
      "requests",
      null,
      "rate_limit_exceeded",
      headers,
    );
  }
  if (status >= 500) {
    return new ApiError(
      status,
      message ??
        "The server had an error while processing your request. Sorry about that! (emulated fault)",
      "server_error",
      null,
      null,
      headers,
    );
  }
  if (status === 401) {
    return new ApiError(
      401,
      message ?? "Unauthorized (emulated fault)",
      "invalid_request_error",
      null,
      "invalid_api_key",
      headers,
    );
  }
  return new ApiError(
    status,
    message ?? `Emulated fault with status ${status}.`,
    "invalid_request_error",
    null,
    null,
    headers,
  );
}

/** 413 for a body over the emulator's limit (refused while it comes in, never buffered whole). */
export function bodyTooLarge(bytes: number, maxBytes: number): ApiError {
  return new ApiError(
    413,
    `Request body too large: ${bytes} bytes, the limit is ${maxBytes} bytes.`,
    "invalid_request_error",
    null,
    "request_too_large",
  );
}

/** 503 when the bodies being read at once would exceed the emulator's memory budget. */
export function overloaded(): ApiError {
  return new ApiError(
    503,
    "The server is overloaded (too many request bodies in flight). Please retry your request.",
    "server_error",
    null,
    "server_overloaded",
  );
}

/** 400 for a request target that is not a valid URL (a malformed `%` escape, …). */
export function invalidUrl(method: string, target: string): ApiError {
  const shown = target.length > 200 ? `${target.slice(0, 200)}…` : target;
  return new ApiError(
    400,
    `Invalid URL (${method} ${shown}): the path is not a valid URL (malformed percent-encoding?).`,
    "invalid_request_error",
    null,
    "invalid_url",
  );
}
