/** Backoff of the run machine's retries and resumes, and the bounds on waits a server asks for. */
import { serverWait } from "../services/client-failure.js";
import type { RetryPolicy } from "./run-types.js";

/** The longest single `setTimeout` Node accepts; longer waits are chained. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The delay before retry number `attempt` (0 for the first retry): `baseDelayMs · 2^attempt`,
 * capped at `maxDelayMs`, minus a random fraction up to `jitter` of it. A server's
 * `retry-after` (bounded by {@link serverWait}) is honoured as asked, instead of the backoff:
 * a server that asks for 20 ms gets its retry in 20 ms, not after a backoff of seconds.
 *
 * @example
 * ```ts
 * backoffDelay(2, { baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0, maxAttempts: 8 }); // 2000
 * backoffDelay(5, { baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0, maxAttempts: 8 }, 20); // 20
 * ```
 */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const asked = serverWait(retryAfterMs);
  if (asked !== undefined) return asked;
  const exponential = Math.min(policy.baseDelayMs * 2 ** attempt, policy.maxDelayMs);
  return exponential * (1 - policy.jitter * random());
}

/** The first resumption waits at most this long (less when `retry.baseDelayMs` is less). */
export const RESUME_BASE_DELAY_MS = 250;
/** No resumption waits longer than this (less when `retry.maxDelayMs` is less). */
export const RESUME_MAX_DELAY_MS = 2_000;

/**
 * The delay before resumption number `attempt` of a broken stream: from `retry.baseDelayMs`
 * (at most {@link RESUME_BASE_DELAY_MS}) growing 1.5× per attempt, capped at `retry.maxDelayMs`
 * (at most {@link RESUME_MAX_DELAY_MS}), minus up to `jitter` of it; a server's `retry-after`
 * as asked. Lower than a retry's backoff: a resume costs one GET, and a response that finished
 * meanwhile is found by the retrieve before it, not by waiting.
 *
 * @example
 * ```ts
 * resumeDelay(2, { baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0, maxAttempts: 8 }); // 562.5
 * ```
 */
export function resumeDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const asked = serverWait(retryAfterMs);
  if (asked !== undefined) return asked;
  const base = Math.min(policy.baseDelayMs, RESUME_BASE_DELAY_MS);
  const cap = Math.min(policy.maxDelayMs, RESUME_MAX_DELAY_MS);
  return Math.min(base * 1.5 ** attempt, cap) * (1 - policy.jitter * random());
}
