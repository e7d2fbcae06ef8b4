/**
 * Any error as the CLI reports it: one line and an exit code. baton's own errors, the SDK's
 * (classified as the run machine classifies them), and anything else.
 */
import OpenAI from "openai";
import {
  CliError,
  InvalidContinuationTokenError,
  InvalidSnapshotError,
  RunNotFoundError,
} from "../errors.js";
import { classifyClientError } from "../services/client-failure.js";
import { EXIT } from "./exit-codes.js";

/** A line to print and the exit code that goes with it. */
export interface Described {
  code: number;
  message: string;
}

/**
 * Turns any error into its one line and exit code.
 *
 * @example
 * ```ts
 * describeError(new RunNotFoundError("run_x"), { storeDir: "/tmp/runs" });
 * // { code: 2, message: "no run 'run_x' in /tmp/runs (see 'baton runs'; or pass a bt1. token)" }
 * ```
 */
export function describeError(
  err: unknown,
  context: { baseURL?: string; storeDir?: string } = {},
): Described {
  if (err instanceof CliError) return { code: err.exitCode, message: err.message };
  if (err instanceof InvalidContinuationTokenError) {
    return { code: EXIT.usage, message: `bad continuation token: ${err.message}` };
  }
  if (err instanceof RunNotFoundError) {
    const where = context.storeDir ? ` in ${context.storeDir}` : "";
    return {
      code: EXIT.usage,
      message: `no run '${err.runId}'${where} (see 'baton runs'; or pass a bt1. token)`,
    };
  }
  if (err instanceof InvalidSnapshotError) {
    return { code: EXIT.failed, message: `cannot read the saved run: ${err.message}` };
  }
  if (isApiLikeError(err)) {
    const failure = classifyClientError(err);
    return describeFailure(failure, context.baseURL);
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: EXIT.failed, message };
}

function isApiLikeError(err: unknown): boolean {
  return err instanceof OpenAI.APIError || (err instanceof Error && "status" in err);
}

/**
 * The line and exit code of a classified client failure.
 *
 * @example
 * ```ts
 * describeFailure({ kind: "unreachable", message: "ECONNREFUSED" }, "http://127.0.0.1:1/v1");
 * // { code: 3, message: "cannot reach http://127.0.0.1:1/v1: ECONNREFUSED" }
 * ```
 */
export function describeFailure(
  failure: { kind: string; message: string; status?: number },
  baseURL: string | undefined,
): Described {
  const where = baseURL ? ` ${baseURL}` : " the server";
  switch (failure.kind) {
    case "unreachable":
    case "connection":
      return { code: EXIT.unreachable, message: `cannot reach${where}: ${failure.message}` };
    case "unauthorized":
      return {
        code: EXIT.unreachable,
        message: `the server refused the API key (${failure.status ?? "401"}): ${failure.message}`,
      };
    case "timeout":
      // The server may well be reachable (it took the connection): say what happened.
      return { code: EXIT.unreachable, message: `${failure.message} (${where.trim()})` };
    case "not-found":
      return {
        code: EXIT.failed,
        message: `the response is not on the server (expired or deleted?): ${failure.message}`,
      };
    default:
      return {
        code: EXIT.failed,
        message: `${failure.status ? `${failure.status} ` : ""}${failure.message}`,
      };
  }
}

/**
 * A failed request of a command (`status`'s retrieve, `cancel`'s cancel), classified.
 *
 * @example
 * ```ts
 * return session.fail(describeRequestFailure(err, connection.baseURL));
 * ```
 */
export function describeRequestFailure(err: unknown, baseURL: string): Described {
  return describeFailure(classifyClientError(err), baseURL);
}
