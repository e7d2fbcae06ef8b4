/**
 * The continuation token: `{ responseId, sequenceNumber? }` as an opaque, versioned string.
 *
 * It carries everything needed to carry on in a process that has no snapshot: the response to
 * follow and, for a stream, the last sequence number delivered, so that the stream resumes
 * server-side with `starting_after` (no replay, no duplicate, no second create). Like .NET's
 * token it is base64 JSON; a `bt1.` prefix names its format and version, so a token from
 * elsewhere, or from a future baton, is refused with a clear reason instead of misread.
 *
 * Decoding is strict: the exact prefix `bt1.`, at most 1,024 characters, a response id of the
 * shape servers give (letters, digits, `_`, `-`), and a checksum (`c`, 48 bits of SHA-256 of
 * what the token says) so that a token mistyped by one character is `malformed` rather than
 * read as another response id and sent to the server. Tokens issued before the checksum (no
 * `c`) still decode: they were printed and stored, and refusing them would strand their runs.
 */
import { createHash } from "node:crypto";
import { InvalidContinuationTokenError } from "./errors.js";
import { isValidResponseId, RESPONSE_ID_RULE } from "./input-validation.js";

/** What a continuation token says. */
export interface ContinuationToken {
  responseId: string;
  /** Last sequence number delivered; present for streams. */
  sequenceNumber?: number;
}

const PREFIX = "bt";
const VERSION = 1;
/** Longer than any token baton makes (a 256-character response id gives about 420). */
export const MAX_TOKEN_LENGTH = 1_024;

/** 48 bits of SHA-256 over what the token says: catches typos, not forgery (it is no MAC). */
function checksum(responseId: string, sequenceNumber: number | undefined): string {
  return createHash("sha256")
    .update(`${responseId}\n${sequenceNumber ?? ""}`)
    .digest()
    .subarray(0, 6)
    .toString("base64url");
}

/**
 * Encodes a token as an opaque string.
 *
 * @example
 * ```ts
 * const token = encodeContinuationToken({ responseId: "resp_123", sequenceNumber: 17 });
 * // "bt1.eyJyZXNwb25zZUlkIjoicmVzcF8xMjMiLCJzZXF1ZW5jZU51bWJlciI6MTcsImMiOiJQdk9nMVZoYyJ9"
 * ```
 */
export function encodeContinuationToken(token: ContinuationToken): string {
  const body: ContinuationToken & { c?: string } = { responseId: token.responseId };
  if (token.sequenceNumber !== undefined) body.sequenceNumber = token.sequenceNumber;
  body.c = checksum(token.responseId, token.sequenceNumber);
  return `${PREFIX}${VERSION}.${Buffer.from(JSON.stringify(body)).toString("base64url")}`;
}

/**
 * Decodes a token; throws {@link InvalidContinuationTokenError} saying what is wrong.
 *
 * @example
 * ```ts
 * const { responseId, sequenceNumber } = decodeContinuationToken(token);
 * ```
 */
export function decodeContinuationToken(text: string): ContinuationToken {
  if (typeof text !== "string" || text.trim() === "") {
    throw new InvalidContinuationTokenError("malformed", "the continuation token is empty");
  }
  const trimmed = text.trim();
  if (trimmed.length > MAX_TOKEN_LENGTH) {
    throw new InvalidContinuationTokenError(
      "malformed",
      `the continuation token is too long (${trimmed.length} characters; at most ${MAX_TOKEN_LENGTH})`,
    );
  }
  // The version as written, digit for digit: `bt01.` is not `bt1.`.
  const match = /^bt([1-9][0-9]{0,5})\.([A-Za-z0-9_-]+)$/.exec(trimmed);
  if (!match) {
    throw new InvalidContinuationTokenError(
      "foreign",
      "not a baton continuation token (expected 'bt1.' followed by base64url)",
    );
  }
  const version = Number(match[1]);
  if (version !== VERSION) {
    throw new InvalidContinuationTokenError(
      "unsupported-version",
      `continuation token version ${version} is not supported by this baton (it reads version ${VERSION})`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(match[2] as string, "base64url").toString("utf8"));
  } catch {
    throw new InvalidContinuationTokenError(
      "malformed",
      "the continuation token is not valid base64 JSON",
    );
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidContinuationTokenError("malformed", "the continuation token holds no object");
  }
  const { responseId, sequenceNumber, c, ...rest } = body as Record<string, unknown>;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) {
    throw new InvalidContinuationTokenError(
      "malformed",
      `the continuation token has unknown fields: ${unknownKeys.join(", ")}`,
    );
  }
  if (typeof responseId !== "string" || responseId === "") {
    throw new InvalidContinuationTokenError(
      "malformed",
      "the continuation token has no responseId",
    );
  }
  if (!isValidResponseId(responseId)) {
    throw new InvalidContinuationTokenError(
      "malformed",
      `the continuation token's responseId ${RESPONSE_ID_RULE}`,
    );
  }
  if (
    sequenceNumber !== undefined &&
    (typeof sequenceNumber !== "number" ||
      !Number.isSafeInteger(sequenceNumber) ||
      sequenceNumber < 0)
  ) {
    throw new InvalidContinuationTokenError(
      "malformed",
      "the continuation token's sequenceNumber is not a non-negative integer",
    );
  }
  if (c !== undefined && c !== checksum(responseId, sequenceNumber as number | undefined)) {
    throw new InvalidContinuationTokenError(
      "malformed",
      "the continuation token's checksum does not match (mistyped or cut short?)",
    );
  }
  return sequenceNumber === undefined ? { responseId } : { responseId, sequenceNumber };
}
