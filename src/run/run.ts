/**
 * The `Run` handle: what a caller holds of one run. A thin wrapper around the run machine's
 * actor (`run.actor`): it feels like XState (`subscribe`, `getSnapshot`, `send`) and like the
 * openai SDK (async iterables, `AbortSignal`, typed errors). Starting and rehydrating are the
 * host's (`host.ts`); handing text on is delivery's (`delivery.ts`).
 */
import type { Actor, InspectionEvent, Observer, Subscription } from "xstate";
import { AsyncQueue } from "../async-queue.js";
import { BatonError } from "../errors.js";
import type { RunMachine } from "../machines/run-machine.js";
import { type RunStateName, topState } from "../machines/run-state.js";
import type { RunEmitted, RunResult } from "../machines/run-types.js";
import { Checkpointer, type CheckpointOptions } from "../persistence/checkpointer.js";
import { type PersistedRun, toEnvelope, tokenOf } from "../persistence/envelope.js";
import type { RunStore } from "../persistence/run-store.js";
import { Delivery, type RunDelta } from "./delivery.js";

/** What `run.on(type)` hands its handler: a delta as a {@link RunDelta} (with its `chars`). */
export type RunEventOf<T extends RunEmitted["type"]> = T extends "delta"
  ? { type: "delta" } & RunDelta
  : Extract<RunEmitted, { type: T }>;

/** Options shared by starting and rehydrating a run. */
export interface RunHostOptions {
  /** Where to persist the run (none: the run lives in this process only). */
  store?: RunStore;
  checkpoint?: Partial<CheckpointOptions>;
  /**
   * "immediate" (default): deltas reach consumers as they arrive. "after-save": only once the
   * save covering them is written, so that a crash never loses or repeats printed text.
   */
  delivery?: "immediate" | "after-save";
  /**
   * XState's inspection option, as `createActor` takes it: a function or an
   * `Observer<InspectionEvent>`, so `@statelyai/inspect` fits as it is
   * (`inspect: createBrowserInspector().inspect`).
   */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Aborting disconnects (the response keeps going on the server); it does not cancel. */
  signal?: AbortSignal;
  /** Called when a save fails (the run goes on; the next save retries). */
  onSaveError?: (err: unknown) => void;
}

function detachedError(): BatonError {
  return new BatonError(
    "run_detached",
    "the run was detached from this process: rehydrate it to follow it",
  );
}

/**
 * One background response run.
 */
export class Run {
  /** The run machine's actor, for everything XState offers. */
  readonly actor: Actor<RunMachine>;
  readonly #checkpointer: Checkpointer | undefined;
  readonly #delivery: Delivery;
  // Created on first use, like the listener sets: a promise chain per run is memory too.
  #result: Promise<RunResult> | undefined;
  #flushedResult: Promise<RunResult> | undefined;
  #detached = false;

  /** @internal use {@link startRun} or {@link rehydrateRun}. */
  constructor(
    actor: Actor<RunMachine>,
    host: RunHostOptions,
    from?: { chars: number; tail?: RunDelta },
  ) {
    this.actor = actor;
    this.#delivery = new Delivery(actor, {
      durable: host.delivery === "after-save" && host.store !== undefined,
      ...(from ? { fromChars: from.chars, ...(from.tail ? { tail: from.tail } : {}) } : {}),
    });
    if (host.store) {
      const delivery = this.#delivery;
      this.#checkpointer = new Checkpointer(actor, host.store, {
        ...host.checkpoint,
        onSaved: (saved) => delivery.release(saved.snapshot.context.deliveredChars),
        ...(host.onSaveError ? { onError: host.onSaveError } : {}),
      });
      this.#checkpointer.start();
    }
    host.signal?.addEventListener("abort", () => this.disconnect(), { once: true });
  }

  /** The run id (also in the response's `metadata.baton_run_id`). */
  get id(): string {
    return this.actor.getSnapshot().context.runId;
  }

  /** The response id, once the create call has answered. */
  get responseId(): string | null {
    return this.actor.getSnapshot().context.responseId;
  }

  /** The top-level state: idle, started, polling, streaming, interrupted, resumed, cancelling, done. */
  get state(): RunStateName {
    return topState(this.actor.getSnapshot());
  }

  /** The continuation token: set while the run is not done, null once it is. */
  get token(): string | null {
    return tokenOf(this.actor.getSnapshot().context, this.state);
  }

  getSnapshot() {
    return this.actor.getSnapshot();
  }

  subscribe(
    observer: Partial<Observer<ReturnType<Actor<RunMachine>["getSnapshot"]>>>,
  ): Subscription {
    return this.actor.subscribe(observer);
  }

  /** Listens to what the run emits: `delta`, `segment` (stream reopened) and `status`. */
  on<T extends RunEmitted["type"]>(type: T, handler: (event: RunEventOf<T>) => void): Subscription {
    if (type === "delta") {
      // Deltas go through the run's own delivery (it may hold them until they are saved).
      return this.#delivery.add((delta) => handler({ type: "delta", ...delta } as RunEventOf<T>));
    }
    return this.actor.on(type, handler as never);
  }

  /**
   * Listens to deltas a batch at a time: with `delivery: "after-save"`, every delta one save
   * covers. Print a batch with one write: a process killed between two writes of the same
   * batch would have a saved cursor ahead of what it printed.
   *
   * @example
   * ```ts
   * run.onDeltaBatch((deltas) => process.stdout.write(deltas.map((d) => d.text).join("")));
   * ```
   */
  onDeltaBatch(handler: (deltas: readonly RunDelta[]) => void): Subscription {
    return this.#delivery.addBatch(handler);
  }

  /**
   * The output text as it arrives, each piece once, ending when the run is done.
   *
   * @example
   * ```ts
   * for await (const delta of run.deltas()) process.stdout.write(delta.text);
   * ```
   */
  deltas(): AsyncIterableIterator<RunDelta> {
    let subscription: Subscription | undefined;
    const queue = new AsyncQueue<RunDelta>(() => subscription?.unsubscribe());
    const tail = this.#delivery.tail;
    if (tail) queue.push(tail);
    // The tail is in the queue already: an iterator takes it first, not a microtask later.
    subscription = this.#delivery.add((delta) => queue.push(delta), { tail: false });
    // Ends once the run is done and every delta its saves cover is delivered.
    this.#settled().then(
      () => this.flush().finally(() => queue.end()),
      () => queue.end(),
    );
    return queue;
  }

  /** Resolves with the result once the run is done (whatever the outcome). */
  result(): Promise<RunResult> {
    // One promise per run, whoever asks and however often: thousands of polling runs each
    // awaited by their caller would otherwise each hold a chain (see bench/, heap per run).
    if (!this.#checkpointer) return this.#settled();
    if (!this.#flushedResult) {
      // Resolves once the run's last save is written, too.
      this.#flushedResult = this.#settled().then(async (result) => {
        await this.flush();
        return result;
      });
      // Like #settled's own: an unawaited result must not be an unhandled rejection.
      this.#flushedResult.catch(() => {});
    }
    return this.#flushedResult;
  }

  /**
   * Starts a run made by `prepareRun` (in `idle`): the create call goes out. A no-op once the
   * run has started.
   */
  start(): void {
    this.actor.send({ type: "run.start" });
  }

  /** Cancels the response on the server (idempotent) and resolves with the final result. */
  cancel(): Promise<RunResult> {
    this.actor.send({ type: "run.cancel" });
    return this.result();
  }

  /** Stops reading the stream; the response keeps going on the server. `resume()` reconnects. */
  disconnect(): void {
    this.actor.send({ type: "run.disconnect" });
  }

  /** Reconnects a disconnected stream after the last delivered event. */
  resume(): void {
    this.actor.send({ type: "run.resume" });
  }

  /** Waits until every snapshot seen so far is saved (no-op without a store). */
  async flush(): Promise<void> {
    await this.#checkpointer?.flush();
  }

  /** The run as a store would keep it. */
  toPersisted(): PersistedRun {
    return toEnvelope(this.actor.getPersistedSnapshot());
  }

  /**
   * Saves, then stops this process's part in the run. The response keeps going on the
   * server; `rehydrateRun` carries on from the save. A pending `result()` rejects with a
   * `BatonError` whose code is `run_detached`.
   */
  async detach(): Promise<PersistedRun> {
    await this.flush();
    const persisted = this.toPersisted();
    this.#checkpointer?.stop();
    // Before the stop: XState's observers see the actor complete when it stops.
    if (persisted.state !== "done") this.#detached = true;
    this.actor.stop();
    return persisted;
  }

  /** The machine's output once it is done; rejects once the run is detached or stopped. */
  #settled(): Promise<RunResult> {
    if (this.#result) return this.#result;
    const actor = this.actor;
    // XState's observers see the actor complete when it is done and when it is stopped: after
    // detach(), or before this was asked for (then it completes no more).
    this.#result =
      this.#detached || actor.getSnapshot().status === "stopped"
        ? Promise.reject(detachedError())
        : new Promise<RunResult>((resolve, reject) => {
            actor.subscribe({
              complete: () => {
                // Complete is also what a stop looks like (detach(), or `run.actor.stop()` by
                // hand): only a done actor has a result.
                const snapshot = actor.getSnapshot();
                if (this.#detached || snapshot.status !== "done") reject(detachedError());
                else resolve(snapshot.output as RunResult);
              },
              error: reject,
            });
          });
    // An unawaited result must not crash the process with an unhandled rejection.
    this.#result.catch(() => {});
    return this.#result;
  }
}
