/**
 * The part of XState's persisted snapshot of a run that baton reads: what the envelope carries
 * and what `validateRunSnapshot` checks. A file of its own so that the envelope (which checks
 * what it reads) and the check (which returns this shape) do not import each other.
 */
import type { RunContext } from "../machines/run-types.js";

/** The part of XState's persisted snapshot baton reads. */
export interface PersistedRunSnapshot {
  status: string;
  value: unknown;
  context: RunContext;
  children: Record<string, unknown>;
  [key: string]: unknown;
}
