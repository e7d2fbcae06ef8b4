/**
 * The continuation token: `{ responseId, sequenceNumber? }` as an opaque, versioned string.
 *
 * It carries everything needed to carry on in a process that has no snapshot: the response to
 * follow and, for a stream, the last sequence number delivered, so that the stream resumes
 * server-side with `starting_after` (no replay, no duplicate, no second create). Like .NET's
 * token it is base64 JSON; a `bt1.` prefix names its format and version, so a token from
 * elsewhere, or from a future baton, is refused with a clear reason instead of misread.
 */
import { InvalidContinuationTokenError } from "./errors.js";

/** What a continuation token says. */
export interface ContinuationToken {
  responseId: string;
  /** Last sequence number delivered; present for streams. */
  sequenceNumber?: number;
}

const PREFIX = "bt";
const VERSION = 1;

/**
 * Encodes a token as an opaque string.
 *
 * @example
 * ```ts
 * const token = encodeContinuationToken({ responseId: "resp_123", sequenceNumber: 17 });
 * // "bt1.eyJyZXNwb25zZUlkIjoicmVzcF8xMjMiLCJzZXF1ZW5jZU51bWJlciI6MTd9"
 * ```
 */
export function encodeContinuationToken(token: ContinuationToken): string {
  const body: ContinuationToken = { responseId: token.responseId };
  if (token.sequenceNumber !== undefined) body.sequenceNumber = token.sequenceNumber;
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
  const match = /^bt(\d+)\.([A-Za-z0-9_-]+)$/.exec(text.trim());
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
  const { responseId, sequenceNumber, ...rest } = body as Record<string, unknown>;
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
  return sequenceNumber === undefined ? { responseId } : { responseId, sequenceNumber };
}
