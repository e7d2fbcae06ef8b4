/** An in-memory {@link RunStore}: for tests and for runs that need not outlive the process. */

import { type PersistedRun, readEnvelope } from "../persistence/envelope.js";
import {
  loadAll,
  type RunStoreEntry,
  type RunSummary,
  type StagedSave,
  type StagingRunStore,
  summarize,
} from "../persistence/run-store.js";

/**
 * Keeps each run as JSON text, so that what is loaded is a copy, exactly as a real store
 * would give it back.
 *
 * @example
 * ```ts
 * const store = new MemoryRunStore();
 * const run = startRun({ client, store }, { model: "o3", input: "…" });
 * ```
 */
export class MemoryRunStore implements StagingRunStore {
  readonly #runs = new Map<string, string>();

  async save(run: PersistedRun): Promise<void> {
    this.#runs.set(run.runId, JSON.stringify(run));
  }

  /** Serialises now; `commit()` makes it the run's save (see {@link StagingRunStore}). */
  async stage(run: PersistedRun): Promise<StagedSave> {
    const text = JSON.stringify(run);
    return {
      commit: () => {
        this.#runs.set(run.runId, text);
        return undefined;
      },
      abort: () => {},
    };
  }

  async load(runId: string): Promise<PersistedRun | undefined> {
    const text = this.#runs.get(runId);
    return text === undefined ? undefined : readEnvelope(JSON.parse(text), runId);
  }

  async list(): Promise<RunSummary[]> {
    return (await this.entries()).flatMap((entry) => (entry.run ? [summarize(entry.run)] : []));
  }

  async entries(): Promise<RunStoreEntry[]> {
    return loadAll([...this.#runs.keys()], (runId) => this.load(runId));
  }

  async delete(runId: string): Promise<boolean> {
    return this.#runs.delete(runId);
  }
}
