/**
 * One request of `status` or `cancel`, bounded in time (`BATON_REQUEST_TIMEOUT_MS`): a server
 * that takes the connection and never answers fails the command as a timeout, not a hang.
 */
import { type ClientFailure, ClientFailureError } from "../services/client-failure.js";

/** How long `status` and `cancel` wait for one answer of the server, by default. */
export const CLI_REQUEST_TIMEOUT_MS = 30_000;

/**
 * `BATON_REQUEST_TIMEOUT_MS` when it is a positive number, else {@link CLI_REQUEST_TIMEOUT_MS}.
 *
 * @example
 * ```ts
 * requestTimeoutMs({ BATON_REQUEST_TIMEOUT_MS: "500" }); // 500
 * ```
 */
export function requestTimeoutMs(env: NodeJS.ProcessEnv): number {
  const given = Number(env.BATON_REQUEST_TIMEOUT_MS);
  return Number.isFinite(given) && given > 0 ? Math.min(given, 3_600_000) : CLI_REQUEST_TIMEOUT_MS;
}

/**
 * One request of a command, bounded: past `ms` it is aborted and fails as a `timeout` ("the
 * cancel timed out"), not as the SDK's "Request was aborted" or a "cannot reach".
 *
 * @example
 * ```ts
 * const { response } = await boundedRequest("retrieve", (signal) => port.retrieve(id, signal));
 * ```
 */
export async function boundedRequest<T>(
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
  ms = CLI_REQUEST_TIMEOUT_MS,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await call(controller.signal);
  } catch (err) {
    if (!controller.signal.aborted) throw err;
    const failure: ClientFailure = {
      kind: "timeout",
      message: `the ${what} timed out: no answer within ${ms} ms`,
    };
    throw new ClientFailureError(failure);
  } finally {
    clearTimeout(timer);
  }
}
