/**
 * A run store that can leave a save unwritten, for `baton resume` asking a server the run was
 * not created on: that server's 404 is no verdict on the run, and must not be recorded.
 */
import type { PersistedRun } from "../persistence/envelope.js";
import type { RunStore, RunSummary } from "../persistence/run-store.js";

/**
 * A store that can leave a save unwritten: a verdict this process must not record (a 404 from a
 * server the run was not created on). Everything else goes to the store as it is.
 *
 * @example
 * ```ts
 * const guarded = new GuardedStore(store, (run) => foreign && run.state === "done");
 * // … run with guarded; guarded.vetoed says whether a save was left unwritten …
 * ```
 */
export class GuardedStore implements RunStore {
  #vetoed = false;
  constructor(
    readonly inner: RunStore,
    readonly veto: (run: PersistedRun) => boolean,
  ) {}

  /** Whether a save was left unwritten. */
  get vetoed(): boolean {
    return this.#vetoed;
  }

  save(run: PersistedRun): Promise<void> {
    if (this.veto(run)) {
      this.#vetoed = true;
      return Promise.resolve();
    }
    return this.inner.save(run);
  }
  load(runId: string): Promise<PersistedRun | undefined> {
    return this.inner.load(runId);
  }
  list(): Promise<RunSummary[]> {
    return this.inner.list();
  }
  delete(runId: string): Promise<boolean> {
    return this.inner.delete(runId);
  }
}
