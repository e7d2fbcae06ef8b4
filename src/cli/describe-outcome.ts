/**
 * How a run ended, as the CLI reports it: the summary line and exit code of a result, and the
 * words for a create the server refused (nothing was created, nothing to resume).
 */
import type { RunResult } from "../machines/run-types.js";
import { type ClientFailure, provesNothingCreated } from "../services/client-failure.js";
import { type Described, describeFailure } from "./describe-error.js";
import { EXIT } from "./exit-codes.js";

/**
 * A run whose create the server answered with a 4xx (but 408): the server's word that it did
 * not act on it, so nothing was created and there is nothing to resume.
 *
 * @example
 * ```ts
 * if (createWasRefused(result)) await forget(run);
 * ```
 */
export function createWasRefused(result: RunResult): boolean {
  const failure = result.failure;
  return (
    (result.reason === "create-unknown" || result.reason === "create-failed") &&
    failure?.status !== undefined &&
    provesNothingCreated(failure)
  );
}

/**
 * The exit code and summary line of a finished run.
 *
 * @example
 * ```ts
 * describeOutcome(result, connection.baseURL); // { code: 0, line: "completed" }
 * ```
 */
export function describeOutcome(
  result: RunResult,
  baseURL?: string,
): { code: number; line: string } {
  switch (result.outcome) {
    case "completed":
      return { code: EXIT.ok, line: "completed" };
    case "cancelled":
      return {
        code: EXIT.cancelled,
        line: `cancelled${result.cancelledBy && result.cancelledBy !== "consumer" ? ` (${result.cancelledBy})` : ""}`,
      };
    case "failed":
      return {
        code: EXIT.failed,
        line: `failed${result.error ? `: ${result.error.code}: ${result.error.message}` : ""}`,
      };
    case "incomplete":
      return {
        code: EXIT.failed,
        line: `incomplete${result.incompleteReason ? ` (${result.incompleteReason})` : ""}`,
      };
    case "gave-up": {
      const failure = result.failure;
      if (
        failure &&
        (failure.kind === "unreachable" ||
          failure.kind === "unauthorized" ||
          (failure.kind === "connection" && result.reason === "retries-exhausted"))
      ) {
        const described = describeFailure(failure, baseURL);
        return { code: described.code, line: `gave up (${result.reason}): ${described.message}` };
      }
      const detail = failure ? `: ${failure.message}` : "";
      if (createWasRefused(result)) {
        return {
          code: EXIT.failed,
          line: `the server refused the create call (${failure?.status})${detail}; nothing was created`,
        };
      }
      switch (result.reason) {
        case "create-unknown":
          return {
            code: EXIT.failed,
            line: `gave up: the create call broke off${detail}; the response may or may not exist, and creating again could pay twice`,
          };
        case "create-failed":
          return { code: EXIT.failed, line: `the create call failed${detail}` };
        case "not-found":
          return {
            code: EXIT.failed,
            line: "gave up: the response is no longer on the server (expired or deleted)",
          };
        default:
          return { code: EXIT.failed, line: `gave up (${result.reason ?? "unknown"})${detail}` };
      }
    }
  }
}

/**
 * The line for a create refused with a 4xx: what was called, and what may be wrong.
 *
 * @example
 * ```ts
 * describeRefusedCreate({ kind: "rejected", status: 404, message: "Not Found" }, "http://host");
 * // "POST http://host/responses answered 404: Not Found; nothing was created. Is the base URL right? …"
 * ```
 */
export function describeRefusedCreate(failure: ClientFailure, baseURL: string): Described {
  const url = `${baseURL.replace(/\/+$/, "")}/responses`;
  if (failure.kind === "unauthorized") {
    const described = describeFailure(failure, baseURL);
    return { code: described.code, message: `${described.message}; nothing was created` };
  }
  const answer = `POST ${url} answered ${failure.status}: ${failure.message}`;
  if (failure.status === 404) {
    const path = safePath(baseURL);
    const hint = path.endsWith("/v1") ? "" : " (an OpenAI base URL ends with /v1)";
    return {
      code: EXIT.failed,
      message: `${answer}; nothing was created. Is the base URL right?${hint}`,
    };
  }
  return {
    code: EXIT.failed,
    message: `the server refused the request (${answer}); nothing was created`,
  };
}

function safePath(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/+$/, "");
  } catch {
    return "";
  }
}
