/**
 * The public face of a run: start one, follow its text, await its result, cancel it, get its
 * continuation token, persist it and rehydrate it elsewhere.
 *
 * A {@link Run} is a thin wrapper around the run machine's actor (`run.actor`): it feels like
 * XState (`subscribe`, `getSnapshot`, `send`) and like the openai SDK (async iterables,
 * `AbortSignal`, typed errors).
 */
import { randomBytes } from "node:crypto";
import {
  type Actor,
  createActor,
  type InspectionEvent,
  type Observer,
  type Subscription,
} from "xstate";
import { AsyncQueue } from "./async-queue.js";
import { decodeContinuationToken } from "./continuation-token.js";
import { BatonError, RunNotFoundError } from "./errors.js";
import { assertValidRunId, validateStartInput } from "./input-validation.js";
import { createRunMachine, type RunMachine } from "./machines/run-machine.js";
import type {
  RunContext,
  RunEmitted,
  RunInput,
  RunMode,
  RunOptions,
  RunResult,
} from "./machines/run-types.js";
import { Checkpointer, type CheckpointOptions } from "./persistence/checkpointer.js";
import {
  type PersistedRun,
  type RunStateName,
  toEnvelope,
  tokenOf,
  topState,
} from "./persistence/envelope.js";
import { restoreRunActor } from "./persistence/restore.js";
import {
  type OpenAIResponsesLike,
  openAIResponsesClient,
} from "./services/openai-responses-client.js";
import type { CreateRequest, ResponsesClient } from "./services/responses-client.js";
import type { RunStore } from "./services/stores/run-store.js";

/** An `openai` client instance, or any implementation of baton's client port. */
export type ClientLike = OpenAIResponsesLike | ResponsesClient;

/**
 * One piece of output text, as a consumer receives it. A streamed piece holds the text of
 * consecutive delta events received together: one token while the model is slower than the
 * reader, up to a few hundred when events come faster (a replay, a backlog after a pause).
 */
export interface RunDelta {
  text: string;
  /** The last stream event this piece covers (resume after it); absent for polled text. */
  sequenceNumber?: number;
  /**
   * Characters (UTF-16 units) of the output text up to the end of this piece: where the next
   * piece starts. Store it with what you did with the text, and `rehydrateRun(host, { runId,
   * from: { chars } })` hands you exactly what follows; it also makes a browser's
   * `Last-Event-ID`. Absent when the run does not know what came before it (a stream attached
   * mid-way by token alone).
   */
  chars?: number;
  source: "stream" | "poll" | "final";
}

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

/** What to run: the create request's fields, and how to follow it. */
export interface StartRunOptions extends RunHostOptions, CreateRequest {
  client: ClientLike;
  /** Stream events (true) or poll (false, the default, as in the SDK). */
  stream?: boolean;
  options?: Partial<RunOptions>;
  /** Defaults to a new random id. */
  runId?: string;
}

/**
 * One run machine per client, shared by all its runs: `provide` builds a whole machine, about
 * 50 KB and 0.2 ms each, which per run would dominate the cost of thousands of polling runs.
 */
const machines = new WeakMap<ClientLike, RunMachine>();

function machineFor(client: ClientLike): RunMachine {
  let machine = machines.get(client);
  if (!machine) {
    machine = createRunMachine("responses" in client ? openAIResponsesClient(client) : client);
    machines.set(client, machine);
  }
  return machine;
}

/** A new run id: `run_` and 24 hex digits. */
export function newRunId(): string {
  return `run_${randomBytes(12).toString("hex")}`;
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
  // Created on first use: thousands of polling runs may never have a listener, and each empty
  // Set costs a hash table (see bench/, heap per run).
  #listeners: Set<(delta: RunDelta) => void> | undefined;
  #batchListeners: Set<(deltas: readonly RunDelta[]) => void> | undefined;
  #pending: { delta: RunDelta; end: number }[] | undefined;
  #emittedChars = 0;
  /** False when the run does not know how much text came before its cursor (by token). */
  #knowsChars = true;
  /** Text before this offset is not handed to consumers (they applied it: `from`). */
  readonly #fromChars: number;
  /** A finished run's text after a consumer's cursor, handed to every delta listener. */
  readonly #tail: RunDelta | undefined;
  #followingDeltas = false;
  readonly #durable: boolean;
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
    this.#fromChars = from?.chars ?? 0;
    this.#tail = from?.tail;
    this.#durable = host.delivery === "after-save" && host.store !== undefined;
    // Held deltas are counted from the first one: follow them from the start.
    if (this.#durable) this.#followDeltas();
    if (host.store) {
      this.#checkpointer = new Checkpointer(actor, host.store, {
        ...host.checkpoint,
        onSaved: (saved) => this.#release(saved.snapshot.context.deliveredChars),
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
    const snapshot = this.actor.getSnapshot();
    return snapshot.status === "done" ? "done" : topState(snapshot.value);
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
      const listener = (delta: RunDelta) => handler({ type: "delta", ...delta } as RunEventOf<T>);
      const listeners = this.#deltaListeners();
      listeners.add(listener);
      const tail = this.#tail;
      // After the caller's own setup: it may subscribe to more before the tail arrives.
      if (tail) queueMicrotask(() => listeners.has(listener) && listener(tail));
      return { unsubscribe: () => listeners.delete(listener) };
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
    this.#followDeltas();
    this.#batchListeners ??= new Set();
    const listeners = this.#batchListeners;
    listeners.add(handler);
    const tail = this.#tail;
    if (tail) queueMicrotask(() => listeners.has(handler) && handler([tail]));
    return { unsubscribe: () => listeners.delete(handler) };
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
    const listener = (delta: RunDelta) => queue.push(delta);
    const listeners = this.#deltaListeners();
    const queue = new AsyncQueue<RunDelta>(() => listeners.delete(listener));
    if (this.#tail) queue.push(this.#tail);
    listeners.add(listener);
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
                if (this.#detached) reject(detachedError());
                else resolve(actor.getSnapshot().output as RunResult);
              },
              error: reject,
            });
          });
    // An unawaited result must not crash the process with an unhandled rejection.
    this.#result.catch(() => {});
    return this.#result;
  }

  #deltaListeners(): Set<(delta: RunDelta) => void> {
    this.#followDeltas();
    this.#listeners ??= new Set();
    return this.#listeners;
  }

  /** Starts listening to the machine's deltas (once; before that, nobody was listening). */
  #followDeltas(): void {
    if (this.#followingDeltas) return;
    this.#followingDeltas = true;
    const delivered = this.actor.getSnapshot().context.deliveredChars;
    this.#knowsChars = delivered !== null;
    this.#emittedChars = delivered ?? 0;
    this.actor.on("delta", (event) => this.#onDelta(event));
  }

  #onDelta(event: Extract<RunEmitted, { type: "delta" }>): void {
    const start = this.#emittedChars;
    this.#emittedChars += event.text.length;
    // The consumer's cursor: what it applied already is not handed to it again.
    if (this.#emittedChars <= this.#fromChars && event.text.length > 0) return;
    const text = start < this.#fromChars ? event.text.slice(this.#fromChars - start) : event.text;
    const delta: RunDelta = {
      text,
      source: event.source,
      ...(event.sequenceNumber !== undefined ? { sequenceNumber: event.sequenceNumber } : {}),
      ...(this.#knowsChars ? { chars: this.#emittedChars } : {}),
    };
    if (!this.#durable) {
      this.#dispatch([delta]);
      return;
    }
    this.#pending ??= [];
    this.#pending.push({ delta, end: this.#emittedChars });
  }

  /** Hands consumers every held delta a save now covers, as one batch. */
  #release(savedChars: number | null): void {
    let count = 0;
    const pending = this.#pending;
    if (!pending) return;
    while (count < pending.length) {
      const held = pending[count] as { delta: RunDelta; end: number };
      if (savedChars !== null && held.end > savedChars) break;
      count++;
    }
    if (count > 0) this.#dispatch(pending.splice(0, count).map((held) => held.delta));
  }

  #dispatch(deltas: readonly RunDelta[]): void {
    if (this.#batchListeners) for (const listener of this.#batchListeners) listener(deltas);
    const listeners = this.#listeners;
    if (listeners) for (const delta of deltas) for (const listener of listeners) listener(delta);
  }
}

/**
 * Starts a background response run.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const run = startRun({ client: new OpenAI(), model: "o3", input: "Explain relativity.", stream: true });
 * console.log(run.token); // resume from it anywhere
 * for await (const delta of run.deltas()) process.stdout.write(delta.text);
 * const result = await run.result(); // { outcome: "completed", text, usage, ... }
 * ```
 */
export function startRun(options: StartRunOptions): Run {
  const {
    client,
    stream,
    options: runOptions,
    runId,
    store,
    checkpoint,
    delivery,
    inspect,
    signal,
    onSaveError,
    ...request
  } = options;
  const input: RunInput = {
    runId: runId ?? newRunId(),
    mode: stream ? "stream" : "poll",
    request,
    ...(runOptions ? { options: runOptions } : {}),
  };
  validateStartInput(input); // before the create: a run that cannot be saved is never billed
  return launch(machineFor(client), input, options);
}

function launch(machine: RunMachine, input: RunInput, host: RunHostOptions): Run {
  const actor = createActor(machine, { input, ...(host.inspect ? { inspect: host.inspect } : {}) });
  const run = new Run(actor, host);
  actor.start();
  actor.send({ type: "run.start" });
  return run;
}

/** An inspection observer as a function (what `restoreRunActor` takes). */
function inspectFunction(
  inspect: RunHostOptions["inspect"],
): ((event: InspectionEvent) => void) | undefined {
  if (inspect === undefined || typeof inspect === "function") return inspect;
  return (event) => inspect.next?.(event);
}

/** Where to carry on from: a persisted run, a run id in the host's store, or a continuation token. */
export type RehydrateSource =
  | { persisted: PersistedRun; from?: ConsumerCursor }
  | {
      runId: string;
      /**
       * Hand the consumer exactly what follows its own cursor, not the store's (see
       * {@link ConsumerCursor}).
       */
      from?: ConsumerCursor;
      /**
       * @deprecated Pass the store once, in the host (`rehydrateRun({ client, store }, { runId })`):
       * that is where the rehydrated run is saved. Still read from here when the host has none
       * (and the run is then saved to it).
       */
      store?: RunStore;
    }
  | { token: string; runId?: string; options?: Partial<RunOptions> };

function cursorError(message: string): BatonError {
  return new BatonError("invalid_cursor", message);
}

/**
 * The snapshot to restore, and what the Run hands over, for a consumer at `from`: the store's
 * cursor may be ahead of the consumer (a save whose text the consumer never applied) or behind it
 * (the consumer applied text a later save would have covered).
 */
function applyCursor(
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

/**
 * Carries on a run in this process, with this client, from where it stopped: polling keeps
 * polling, a stream resumes after its last delivered event, a finished run stays finished.
 * Never creates a second response. The run is saved to `host.store` as it goes.
 *
 * With `from` (a consumer's own cursor, stored with its effects), the run hands the consumer
 * exactly what follows that cursor, whether the store's cursor is ahead of it or behind it; a
 * finished run hands over the rest of its text as one `final` delta.
 *
 * @example
 * ```ts
 * const run = await rehydrateRun({ client: new OpenAI(), store }, { runId });
 * const result = await run.result();
 * // exactly what follows what the consumer applied (its cursor, kept with its own data):
 * const mine = await rehydrateRun({ client, store }, { runId, from: { chars: 1200, sequenceNumber: 310 } });
 * // or from a token alone, in a process with no snapshot:
 * const again = await rehydrateRun({ client }, { token });
 * ```
 */
export async function rehydrateRun(
  host: RunHostOptions & { client: ClientLike },
  source: RehydrateSource,
): Promise<Run> {
  const machine = machineFor(host.client);
  if ("runId" in source && source.runId !== undefined)
    assertValidRunId(source.runId, "source.runId");
  if ("token" in source) {
    const token = decodeContinuationToken(source.token);
    const mode: RunMode = token.sequenceNumber === undefined ? "poll" : "stream";
    const input: RunInput = {
      runId: source.runId ?? newRunId(),
      mode,
      responseId: token.responseId,
      ...(token.sequenceNumber !== undefined ? { sequenceNumber: token.sequenceNumber } : {}),
      ...(source.options ? { options: source.options } : {}),
    };
    return launch(machine, input, host);
  }
  let persisted: PersistedRun | undefined;
  let saveTo = host;
  if ("persisted" in source) {
    persisted = source.persisted;
  } else {
    const store = host.store ?? source.store;
    if (!store) {
      throw new BatonError(
        "store_missing",
        `rehydrating run '${source.runId}' by id needs a store: rehydrateRun({ client, store }, { runId })`,
      );
    }
    // The old shape (the store in the source only): the run is still saved, to that store.
    if (!host.store) saveTo = { ...host, store };
    persisted = await store.load(source.runId);
    if (!persisted) throw new RunNotFoundError(source.runId);
  }
  const cursor = source.from ? applyCursor(persisted, source.from) : undefined;
  const inspect = inspectFunction(host.inspect);
  const actor = restoreRunActor(
    machine,
    cursor?.snapshot ?? persisted.snapshot,
    inspect ? { inspect } : {},
  );
  return new Run(actor, saveTo, cursor);
}
