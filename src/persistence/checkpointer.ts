/**
 * Persistence as a plug-in around the run actor: subscribes to its snapshots and saves them
 * through one serial write queue (the pattern of xstate's mongodb-persisted-state example).
 *
 * - A change of top-level state, of the service's status or of the response id is saved at
 *   once: the response id the moment it is known, every interruption, the result.
 * - Within a state (a stream delivering deltas) saves are throttled to every `everyEvents`
 *   events (stream events the cursor moved past; other snapshots count one each) or `everyMs`
 *   milliseconds, whichever comes first.
 * - Writes never overlap; while one is in flight, later snapshots collapse into one next write.
 * - A save holds the cursor, never the text, so its size does not grow with the answer.
 * - A store that can stage a save ({@link StagingRunStore}: both embedded stores) has it
 *   written first, then committed synchronously, and `onSaved` runs in the same synchronous step
 *   as the commit: a consumer that prints in `onSaved` (`delivery: "after-save"`) then prints
 *   within microseconds of the moment the save takes effect, with nothing else of the process
 *   (other observers, the rest of a stream batch, queued promise callbacks) in between.
 */
import type { AnyActorRef, Subscription } from "xstate";
import { topKey } from "../machines/run-state.js";
import type { RunContext } from "../machines/run-types.js";
import { type PersistedRun, toEnvelope } from "./envelope.js";
import { canStage, type RunStore } from "./run-store.js";

/**
 * How often a run is saved within one state (a change of state, of the service's status or of
 * the response id is always saved at once). Given as `checkpoint` in the host; every field
 * optional there.
 *
 * @example
 * ```ts
 * startRun({ client, store, checkpoint: { everyEvents: 100, everyMs: 50 } }, request);
 * ```
 */
export interface CheckpointOptions {
  /**
   * Save after this many events within one state (default 500): stream events the cursor moved
   * past, whatever the batches they came in; any other change of snapshot counts one.
   */
  everyEvents: number;
  /** ...or this long after the first unsaved one (default 250 ms). */
  everyMs: number;
}

/** The checkpoint throttle when none is given: every 500 stream events or 250 ms. */
export const DEFAULT_CHECKPOINT_OPTIONS: CheckpointOptions = { everyEvents: 500, everyMs: 250 };

/**
 * @example
 * ```ts
 * const checkpointer = new Checkpointer(actor, store, { onSaved: (run) => console.log(run.state) });
 * checkpointer.start();
 * await checkpointer.flush();
 * ```
 */
export class Checkpointer {
  readonly #actor: AnyActorRef;
  readonly #store: RunStore;
  readonly #options: CheckpointOptions;
  readonly #onSaved: (run: PersistedRun) => void;
  readonly #onError: (err: unknown) => void;
  #subscription: Subscription | undefined;
  #lastStateKey: string | undefined;
  #unsaved = 0;
  #lastSequence: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  /** How many saves were written (for tests and benchmarks). */
  saves = 0;

  constructor(
    actor: AnyActorRef,
    store: RunStore,
    options: Partial<CheckpointOptions> & {
      onSaved?: (run: PersistedRun) => void;
      onError?: (err: unknown) => void;
    } = {},
  ) {
    this.#actor = actor;
    this.#store = store;
    this.#options = { ...DEFAULT_CHECKPOINT_OPTIONS, ...options };
    this.#onSaved = options.onSaved ?? (() => {});
    this.#onError = options.onError ?? (() => {});
  }

  /** Starts saving; saves the current snapshot at once. */
  start(): void {
    this.#subscription = this.#actor.subscribe({
      next: (snapshot) => this.#onSnapshot(snapshot),
      error: () => this.#saveNow(),
    });
    this.#onSnapshot(this.#actor.getSnapshot());
  }

  #onSnapshot(snapshot: { value: unknown; status: string; context: RunContext }): void {
    // What forces a save: a new top-level state, a new service status, the response id. A
    // poll's own waiting ⇄ fetching cycle does not (it would be one save per poll per run).
    const top = topKey(snapshot.value);
    const key = `${snapshot.status}:${top}:${snapshot.context.status}:${snapshot.context.responseId}`;
    if (key !== this.#lastStateKey) {
      this.#lastStateKey = key;
      this.#lastSequence = snapshot.context.sequenceNumber;
      this.#saveNow();
      return;
    }
    const sequence = snapshot.context.sequenceNumber;
    const moved =
      sequence !== null && this.#lastSequence !== null ? sequence - this.#lastSequence : 0;
    this.#lastSequence = sequence;
    this.#unsaved += moved > 0 ? moved : 1;
    if (this.#unsaved >= this.#options.everyEvents) {
      this.#saveNow();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#saveNow(), this.#options.everyMs);
    }
  }

  #saveNow(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsaved = 0;
    this.#dirty = true;
    // Cleared once the drain has settled: a drain that ends at once must not leave a settled
    // promise behind, or flush() would wait on it forever.
    this.#writing ??= this.#drain().finally(() => {
      this.#writing = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      // A stopped actor's snapshot restores as a dead actor (statelyai/xstate#4583): the
      // last save before the stop is the one to keep.
      if (this.#actor.getSnapshot().status === "stopped") return;
      try {
        // Read the snapshot at write time: the newest one, even if several were queued. Inside
        // the try: a snapshot that cannot be enveloped is a failed save (onError), never an
        // unhandled rejection of the drain.
        const envelope = toEnvelope(this.#actor.getPersistedSnapshot());
        if (canStage(this.#store)) {
          const staged = await this.#store.stage(envelope);
          let durable: Promise<void> | undefined;
          try {
            durable = staged.commit();
          } catch (err) {
            staged.abort();
            throw err;
          }
          try {
            // Nothing between the commit and the consumer's delivery: no await, no other code.
            this.saves++;
            this.#onSaved(envelope);
          } finally {
            await durable;
          }
        } else {
          await this.#store.save(envelope);
          this.saves++;
          this.#onSaved(envelope);
        }
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  /** Resolves once everything seen so far is saved. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined || this.#unsaved > 0) this.#saveNow();
    while (this.#writing) await this.#writing;
  }

  /** Stops listening (pending saves still complete; `flush()` waits for them). */
  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
