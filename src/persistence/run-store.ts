/**
 * The `RunStore` contract: where runs are persisted, beside the envelope it stores
 * (`PersistedRun`, `envelope.ts`). Small on purpose (save, load, list, delete), so that any
 * database can back it; the stores themselves live a folder over (`src/stores`: memory, file)
 * and import this, never the run machine.
 */
import type { PersistedRun } from "./envelope.js";

/** A run as listed: the envelope without its snapshot. */
export type RunSummary = Omit<PersistedRun, "snapshot">;

/**
 * One thing a store holds, as {@link RunStore.entries} lists it: the run, or why it cannot be
 * read (an `InvalidSnapshotError` for a corrupt or foreign save, an I/O error). `runId` is the
 * key the store holds it under (a file's name), whatever the content says.
 */
export type RunStoreEntry =
  | { runId: string; run: PersistedRun; error?: undefined }
  | { runId: string; run?: undefined; error: Error };

/**
 * Where runs are saved: what the checkpointer writes to as a run goes, what `rehydrateRun`
 * and `baton resume` read from. A store keeps the last save of each run id. `load` checks what
 * it reads (`readEnvelope`) and throws `InvalidSnapshotError` for unreadable data: it never
 * hands back something that is not a baton run. Optional parts: `entries` (listing unreadable
 * saves too) and `stage` ({@link StagingRunStore}: saves the checkpointer can commit in one
 * synchronous step).
 *
 * @example
 * ```ts
 * // A store over any key-value database: four methods.
 * class KvRunStore implements RunStore {
 *   constructor(private kv: Map<string, string>) {}
 *   async save(run: PersistedRun) { this.kv.set(run.runId, JSON.stringify(run)); }
 *   async load(runId: string) {
 *     const text = this.kv.get(runId);
 *     return text === undefined ? undefined : readEnvelope(JSON.parse(text), runId);
 *   }
 *   async list() { return [...this.kv.keys()].map((id) => summarize(readEnvelope(JSON.parse(this.kv.get(id)!), id))); }
 *   async delete(runId: string) { return this.kv.delete(runId); }
 * }
 * ```
 */
export interface RunStore {
  /** Writes a run, replacing any earlier save of the same run id. */
  save(run: PersistedRun): Promise<void>;
  /** The last save of a run, or undefined. Throws `InvalidSnapshotError` for unreadable data. */
  load(runId: string): Promise<PersistedRun | undefined>;
  /** Every run held, newest save first. */
  list(): Promise<RunSummary[]>;
  /** Removes a run; true when there was one. */
  delete(runId: string): Promise<boolean>;
  /**
   * Everything held, readable or not: readable runs newest save first, then each unreadable
   * one with its error (`list()` leaves those out). Optional, so that older stores still
   * type-check; {@link listEntries} falls back to `list()` and `load()` without it.
   */
  entries?(): Promise<RunStoreEntry[]>;
}

/**
 * Every entry of a store with its read error, through `store.entries()` when the store has it.
 *
 * @example
 * ```ts
 * for (const entry of await listEntries(store)) {
 *   console.log(entry.runId, entry.error ? `unreadable: ${entry.error.message}` : entry.run.state);
 * }
 * ```
 */
export async function listEntries(store: RunStore): Promise<RunStoreEntry[]> {
  if (store.entries) return store.entries();
  return loadAll(
    (await store.list()).map((summary) => summary.runId),
    (runId) => store.load(runId),
  );
}

/**
 * Loads every key with `load`, each into an entry (its run, or its read error), ordered as
 * `entries()` lists them: what a store's `entries()` is made of.
 *
 * @example
 * ```ts
 * async entries() { return loadAll([...this.keys()], (runId) => this.load(runId)); }
 * ```
 */
export async function loadAll(
  runIds: Iterable<string>,
  load: (runId: string) => Promise<PersistedRun | undefined>,
): Promise<RunStoreEntry[]> {
  const entries: RunStoreEntry[] = [];
  for (const runId of runIds) {
    try {
      const run = await load(runId);
      if (run) entries.push({ runId, run });
    } catch (err) {
      entries.push({ runId, error: asError(err) });
    }
  }
  return sortEntries(entries);
}

/** Orders entries as `entries()` lists them: readable newest first, then unreadable by key. */
export function sortEntries(entries: RunStoreEntry[]): RunStoreEntry[] {
  return entries.sort((a, b) => {
    if (a.run && b.run) return b.run.savedAt - a.run.savedAt;
    if (a.run) return -1;
    if (b.run) return 1;
    return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
  });
}

/** Anything thrown, as an Error. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Drops the snapshot from an envelope, for listings. */
export function summarize(run: PersistedRun): RunSummary {
  const { snapshot: _snapshot, ...summary } = run;
  return summary;
}

/**
 * A save written but not yet in effect: `commit()` puts it in effect synchronously (a rename),
 * `abort()` drops it. What `commit()` returns, if anything, settles once the save is also
 * durable across a power loss (a directory fsync), which need not hold back the consumer.
 */
export interface StagedSave {
  commit(): Promise<void> | undefined;
  abort(): void;
}

/**
 * A {@link RunStore} that can split a save in two: the slow part (writing, fsync) staged
 * asynchronously, and a synchronous commit. With one, `delivery: "after-save"` hands a batch to
 * its consumer in the same synchronous step as the commit that covers it.
 *
 * @example
 * ```ts
 * const staged = await store.stage(envelope);
 * staged.commit(); // the save is now the one `load` returns
 * print(batch); // same synchronous step: a kill lands before both or after both, but for µs
 * ```
 */
export interface StagingRunStore extends RunStore {
  stage(run: PersistedRun): Promise<StagedSave>;
}

/**
 * True when the store stages its saves. A subclass that overrides `save` but not `stage` (to
 * count, log or mirror its saves) is saved through its `save`: its `stage` is its parent's, and
 * would go round the override.
 */
export function canStage(store: RunStore): store is StagingRunStore {
  if (typeof (store as Partial<StagingRunStore>).stage !== "function") return false;
  return ownerOf(store, "save") === ownerOf(store, "stage");
}

/** The object (the store itself or a prototype) where a method is defined. */
function ownerOf(object: object, name: string): object | null {
  let owner: object | null = object;
  while (owner !== null && !Object.hasOwn(owner, name)) owner = Object.getPrototypeOf(owner);
  return owner;
}
