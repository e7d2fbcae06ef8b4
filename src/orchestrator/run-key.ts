/**
 * Idempotency keys: a key names one run for good. The run id is derived from the key alone
 * (`run_k_` and 24 hex digits of its SHA-256), so the same key finds the same run in this
 * process and, through the store, in the next one: a second create for a key is never made.
 */
import { createHash } from "node:crypto";
import { InvalidRunInputError } from "../errors.js";

/** Longest key accepted (it is hashed, so only the caller's memory pays for it). */
export const MAX_RUN_KEY_LENGTH = 1_024;

/**
 * The run id of an idempotency key.
 *
 * @example
 * ```ts
 * runIdForKey("report-42"); // "run_k_" + 24 hex digits, the same in every process
 * ```
 */
export function runIdForKey(key: string): string {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_RUN_KEY_LENGTH) {
    throw new InvalidRunInputError(
      "key",
      `key: must be a string of 1-${MAX_RUN_KEY_LENGTH} characters`,
    );
  }
  return `run_k_${createHash("sha256").update(key).digest("hex").slice(0, 24)}`;
}
