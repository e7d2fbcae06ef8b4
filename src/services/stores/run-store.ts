/**
 * The store interface: where runs are persisted. Small on purpose (save, load, list, delete),
 * so that any database can back it. `MemoryRunStore` and `FileRunStore` are the embedded ones.
 */
import type { PersistedRun } from "../../persistence/envelope.js";

/** A run as listed: the envelope without its snapshot. */
export type RunSummary = Omit<PersistedRun, "snapshot">;

export interface RunStore {
  /** Writes a run, replacing any earlier save of the same run id. */
  save(run: PersistedRun): Promise<void>;
  /** The last save of a run, or undefined. Throws `InvalidSnapshotError` for unreadable data. */
  load(runId: string): Promise<PersistedRun | undefined>;
  /** Every run held, newest save first. */
  list(): Promise<RunSummary[]>;
  /** Removes a run; true when there was one. */
  delete(runId: string): Promise<boolean>;
}

/** Drops the snapshot from an envelope, for listings. */
export function summarize(run: PersistedRun): RunSummary {
  const { snapshot: _snapshot, ...summary } = run;
  return summary;
}
