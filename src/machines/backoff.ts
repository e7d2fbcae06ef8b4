/** Exponential backoff with jitter, shared by every retry and resume of the run machine. */
import type { RetryPolicy } from "./run-types.js";

/**
 * The delay before retry number `attempt` (0 for the first retry): `baseDelayMs · 2^attempt`,
 * capped at `maxDelayMs`, minus a random fraction up to `jitter` of it. A server's
 * `retry-after` wins when it asks for longer.
 *
 * @example
 * ```ts
 * backoffDelay(2, { baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0, maxAttempts: 8 }); // 2000
 * ```
 */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.baseDelayMs * 2 ** attempt, policy.maxDelayMs);
  const delay = exponential * (1 - policy.jitter * random());
  return Math.max(delay, retryAfterMs ?? 0);
}
