/**
 * A consumer's own cursor (what it applied, stored with its effects) against a saved run: the
 * snapshot to restore and what the run then hands the consumer, so that it gets exactly what
 * follows, whether the store's cursor is ahead of the consumer's or behind it.
 */
import { BatonError } from "../errors.js";
import type { RunContext } from "../machines/run-types.js";
import type { PersistedRun } from "../persistence/envelope.js";
import type { RunDelta } from "./delivery.js";

/**
 * What a consumer has applied, as it stored it alongside its own effects (from the last
 * {@link RunDelta} it applied): a rehydrated run hands it exactly what follows, whatever the
 * store's own cursor says.
 */
export interface ConsumerCursor {
  /** Characters of the output text applied: the last applied delta's `chars` (0: none). */
  chars: number;
  /**
   * That delta's `sequenceNumber`, if it had one. When the store is ahead of the consumer, a
   * stream then resumes right after it; without it, the stream is replayed from its start and
   * the first `chars` characters skipped (or, past the replay window, the text is polled).
   */
  sequenceNumber?: number;
}

function cursorError(message: string): BatonError {
  return new BatonError("invalid_cursor", message);
}

/**
 * The snapshot to restore, and what the Run hands over, for a consumer at `from`: the store's
 * cursor may be ahead of the consumer (a save whose text the consumer never applied) or behind it
 * (the consumer applied text a later save would have covered).
 *
 * @example
 * ```ts
 * const { snapshot, chars, tail } = applyCursor(persisted, { chars: 1200, sequenceNumber: 310 });
 * ```
 */
export function applyCursor(
  persisted: PersistedRun,
  from: ConsumerCursor,
): { snapshot: PersistedRun["snapshot"]; chars: number; tail?: RunDelta } {
  const { chars } = from;
  if (!Number.isSafeInteger(chars) || chars < 0) {
    throw cursorError(`from.chars must be a non-negative integer, not ${String(chars)}`);
  }
  const sequence = from.sequenceNumber;
  if (sequence !== undefined && (!Number.isSafeInteger(sequence) || sequence < -1)) {
    throw cursorError(`from.sequenceNumber must be an integer >= -1, not ${String(sequence)}`);
  }
  const snapshot = persisted.snapshot;
  const context = snapshot.context;
  if (snapshot.status === "done" || persisted.state === "done") {
    const text = context.result?.text ?? "";
    if (chars > text.length) {
      throw cursorError(`from.chars is ${chars}, but the run's text has ${text.length} chars`);
    }
    const tail: RunDelta | undefined =
      chars < text.length
        ? { text: text.slice(chars), source: "final", chars: text.length }
        : undefined;
    return { snapshot, chars, ...(tail ? { tail } : {}) };
  }
  const delivered = context.deliveredChars;
  if (delivered === null) {
    throw cursorError(
      `run '${persisted.runId}' was attached by token and does not know its character offsets`,
    );
  }
  // The store is behind the consumer (or with it): the run goes on from the store's cursor and
  // the text the consumer already applied is skipped.
  if (chars >= delivered) return { snapshot, chars };
  // The store is ahead: rewind the cursor to the consumer's.
  let rewound: Partial<RunContext>;
  const cursor = context.sequenceNumber;
  if (context.mode === "poll") {
    rewound = { deliveredChars: chars };
  } else if (sequence !== undefined && cursor !== null && sequence <= cursor) {
    // Right after the consumer's last event: the stream carries on from there.
    rewound = { deliveredChars: chars, sequenceNumber: sequence === -1 ? null : sequence };
  } else {
    // No event to resume after: replay from the start, the first `chars` skipped by the Run.
    rewound = { deliveredChars: 0, sequenceNumber: null };
  }
  return { snapshot: { ...snapshot, context: { ...context, ...rewound } }, chars };
}
