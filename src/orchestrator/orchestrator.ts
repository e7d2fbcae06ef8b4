/**
 * The orchestrator: many runs of one client, under a global concurrency and per-key limits,
 * with one shared rate-limit backoff, idempotent starts, recovery from a store and drain.
 *
 * The decisions are the orchestrator machine's (`orchestrator-machine.ts`: who waits, who
 * starts); this file does the I/O around it: it prepares runs through the host (`prepareRun`:
 * a run waits in `idle`, saved with its request, until it is admitted), starts them when the
 * machine admits them, tells the machine when a run's result is in, and rehydrates saved runs.
 * Every run's client is the rate gate's port (`rate-gate.ts`), built once per orchestrator, so
 * the host builds one run machine for the whole fleet.
 */
import { type Actor, createActor } from "xstate";
import { BatonError, InvalidRunInputError } from "../errors.js";
import type { RunStateName } from "../machines/run-state.js";
import type { RunOptions, RunOutcome, RunResult } from "../machines/run-types.js";
import type { CheckpointOptions } from "../persistence/checkpointer.js";
import type { PersistedRun } from "../persistence/envelope.js";
import type { RunStore } from "../persistence/run-store.js";
import {
  type ClientLike,
  loadEntries,
  loadRun,
  newRunId,
  prepareRun,
  type RunHost,
  type RunRequest,
  rehydrateRun,
} from "../run/host.js";
import type { Run, RunHostOptions } from "../run/run.js";
import { openAIResponsesClient } from "../services/openai-responses-client.js";
import type { ResponsesClient } from "../services/responses-client.js";
import { type OrchestratorMachine, orchestratorMachine } from "./orchestrator-machine.js";
import { RateGate, type RateGateOptions } from "./rate-gate.js";
import { runIdForKey } from "./run-key.js";

/** A per-key limit: at most `max` active runs whose `keyOf(request)` is the same. */
export interface OrchestratorLimit {
  /** Names the limit in `counts()` and events (`"model"`, `"tenant"`). */
  name: string;
  max: number;
  /**
   * The run's key under this limit (undefined: the limit does not hold the run). Called with
   * the request as given to `startRun`; for a waiting run recovered from a store, with its
   * saved request (`key` and `priority` are not saved).
   */
  keyOf(request: FleetRequest): string | undefined;
}

/** What `startRun` takes: the host's request, plus the fleet's own fields. */
export interface FleetRequest extends RunRequest {
  /**
   * Idempotency key: the same key is the same run, in this process and, with a store, in the
   * next (see `runIdForKey`). A key already known returns its run; never a second create.
   */
  key?: string;
  /** Higher is admitted first; equal priorities first in, first out. Default 0. */
  priority?: number;
}

/** A run's own settings beside its request. */
export interface FleetRunOptions {
  /** Overrides the id (a key's run id is derived from the key). */
  runId?: string;
  /** Merged over the orchestrator's `options`. */
  options?: Partial<RunOptions>;
}

export interface OrchestratorOptions {
  /** An `openai` client or a client port; wrapped once in the rate gate. */
  client: ClientLike;
  /** Where runs are saved; needed for `recover()`, and for keys to hold across processes. */
  store?: RunStore;
  /** Most runs active at once (admitted and not settled). */
  concurrency: number;
  limits?: readonly OrchestratorLimit[];
  delivery?: RunHostOptions["delivery"];
  checkpoint?: Partial<CheckpointOptions>;
  /** Options of every run (each run's own merged over them). */
  options?: Partial<RunOptions>;
  /** One observer for the orchestrator actor and every run actor. */
  inspect?: RunHostOptions["inspect"];
  onSaveError?: (err: unknown) => void;
  rateLimit?: RateGateOptions;
}

/** Where a run is in the fleet. */
export type FleetPhase = "waiting" | "active" | "done" | "detached";

/** A run as `runs()` lists it. */
export interface FleetRun {
  runId: string;
  /** The idempotency key, when it was given in this process. */
  key?: string;
  phase: FleetPhase;
  run: Run;
  /** Once done. */
  outcome?: RunOutcome;
}

/** Fleet-level events, for a progress display or an inspector. */
export type FleetEvent =
  | { type: "run.queued"; runId: string; key?: string }
  | { type: "run.admitted"; runId: string }
  /** The create answered: the response exists. */
  | { type: "run.started"; runId: string; responseId: string }
  | { type: "run.done"; runId: string; outcome: RunOutcome; result: RunResult }
  | { type: "run.detached"; runId: string }
  | { type: "fleet.rate-limited"; until: number }
  | { type: "fleet.resumed" }
  | { type: "fleet.drained" };

export type FleetEventType = FleetEvent["type"];

/** Runs by phase, by run state and by outcome. */
export interface FleetCounts {
  total: number;
  waiting: number;
  active: number;
  done: number;
  detached: number;
  byState: Partial<Record<RunStateName, number>>;
  byOutcome: Partial<Record<RunOutcome, number>>;
}

/** What `recover()` found in the store. */
export interface RecoverReport {
  /** Saved waiting (`idle`): queued again, oldest save first. */
  requeued: string[];
  /** Saved running: active at once (they hold a slot at the server already). */
  adopted: string[];
  /**
   * Saved with a create in flight, ended on restore by `onUnknownCreate: "fail"` (gave up,
   * `create-unknown`); with `"recreate"` they create again and are in `adopted`.
   */
  ended: string[];
  /** Finished before; left as they are (`startRun` with their key still returns them). */
  finished: number;
  /** Saves that cannot be read (or restored), with why; never fatal. */
  unreadable: { runId: string; error: Error }[];
}

/** What `drain()` did. */
export interface DrainReport {
  /** Runs saved and detached (their responses keep going on the server). */
  detached: string[];
  /**
   * Of those, the runs saved in `started` (a create unanswered within `createWaitMs`, or a run
   * backing off after a refused create): the next `recover()` applies their `onUnknownCreate`.
   */
  started: string[];
}

interface Tracked {
  runId: string;
  key?: string;
  run: Run;
  phase: FleetPhase;
  outcome?: RunOutcome;
}

function mergeOptions(
  base: Partial<RunOptions> | undefined,
  own: Partial<RunOptions> | undefined,
): Partial<RunOptions> | undefined {
  if (!base) return own;
  if (!own) return base;
  const retry = base.retry || own.retry ? { ...base.retry, ...own.retry } : undefined;
  return { ...base, ...own, ...(retry ? { retry: retry as RunOptions["retry"] } : {}) };
}

/** Resolves when the run leaves `state` or after `ms`. */
function untilLeaves(run: Run, state: RunStateName, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (run.state !== state) return resolve();
    const timer = setTimeout(done, ms);
    const sub = run.subscribe({ next: () => run.state !== state && done(), error: done });
    function done() {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve();
    }
  });
}

/**
 * Creates an orchestrator: many runs under limits, one rate-limit backoff, recovery and drain.
 *
 * @example
 * ```ts
 * const orchestrator = createOrchestrator({ client: new OpenAI(), store, concurrency: 10 });
 * const run = await orchestrator.startRun({ model: "o3", input: "…", stream: true, key: "report-42" });
 * for await (const delta of run.deltas()) process.stdout.write(delta.text);
 * process.on("SIGTERM", () => orchestrator.drain()); // the next process: await orchestrator.recover()
 * ```
 */
export function createOrchestrator(options: OrchestratorOptions): Orchestrator {
  return new Orchestrator(options);
}

/** See {@link createOrchestrator}. */
export class Orchestrator {
  /** The orchestrator machine's actor (admission), for XState's tools. */
  readonly actor: Actor<OrchestratorMachine>;
  /** The shared rate-limit backoff; `gate.client` is every run's client. */
  readonly gate: RateGate;
  readonly #host: RunHost;
  readonly #limits: readonly OrchestratorLimit[];
  readonly #runOptions: Partial<RunOptions> | undefined;
  readonly #runs = new Map<string, Tracked>();
  readonly #listeners = new Set<(event: FleetEvent) => void>();
  /** Starts and recoveries, one at a time: admission order is call order. */
  #intake: Promise<unknown> = Promise.resolve();
  #closed = false;
  #draining: Promise<DrainReport> | undefined;

  constructor(options: OrchestratorOptions) {
    const { concurrency } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InvalidRunInputError("concurrency", "concurrency: must be an integer of 1 or more");
    }
    const limits = options.limits ?? [];
    const names = new Set<string>();
    for (const [i, limit] of limits.entries()) {
      if (!Number.isInteger(limit.max) || limit.max < 1 || names.has(limit.name)) {
        throw new InvalidRunInputError(
          `limits[${i}]`,
          `limits[${i}]: needs a unique name and an integer max of 1 or more`,
        );
      }
      names.add(limit.name);
    }
    this.#limits = limits;
    this.#runOptions = options.options;
    const port: ResponsesClient =
      "responses" in options.client ? openAIResponsesClient(options.client) : options.client;
    this.gate = new RateGate(port, options.rateLimit);
    this.#host = {
      client: this.gate.client,
      ...(options.store ? { store: options.store } : {}),
      ...(options.delivery ? { delivery: options.delivery } : {}),
      ...(options.checkpoint ? { checkpoint: options.checkpoint } : {}),
      ...(options.inspect ? { inspect: options.inspect } : {}),
      ...(options.onSaveError ? { onSaveError: options.onSaveError } : {}),
    };
    this.actor = createActor(orchestratorMachine, {
      input: { concurrency, limits: limits.map(({ name, max }) => ({ name, max })) },
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.actor.on("run.admitted", ({ runId }) => this.#admitted(runId));
    this.actor.on("fleet.paused", ({ until }) => this.#emit({ type: "fleet.rate-limited", until }));
    this.actor.on("fleet.resumed", () => this.#emit({ type: "fleet.resumed" }));
    this.actor.on("fleet.drained", () => this.#emit({ type: "fleet.drained" }));
    this.gate.subscribe((event) => {
      if (event.type === "paused") this.#send({ type: "fleet.rate-limited", until: event.until });
      else this.#send({ type: "fleet.resume" });
    });
    this.actor.start();
  }

  /**
   * Starts a run under the limits: it waits (state `idle`, nothing sent) until admitted. The
   * same `Run` handle as the host's `startRun`: `cancel()` while it waits ends it without a
   * create. With a `key`, a run already known (in this process, or saved in the store) is
   * returned instead: finished, carried on, or still waiting.
   *
   * Returns a promise: finding a key's run in the store is a read.
   *
   * @example
   * ```ts
   * const run = await orchestrator.startRun({ model: "o3", input: "…", key: "report-42" });
   * const again = await orchestrator.startRun({ model: "o3", input: "…", key: "report-42" }); // same run
   * ```
   */
  startRun(request: FleetRequest, settings: FleetRunOptions = {}): Promise<Run> {
    return this.#serial(async () => {
      const { key, priority, ...runRequest } = request;
      const runId = settings.runId ?? (key !== undefined ? runIdForKey(key) : newRunId());
      if (priority !== undefined && !Number.isFinite(priority)) {
        throw new InvalidRunInputError("priority", "priority: must be a finite number");
      }
      this.#assertOpen();
      const known = this.#runs.get(runId);
      if (known) return known.run;
      const store = this.#host.store;
      // A key's id, or one given: a save under it is that run (a new one would overwrite it).
      if ((key !== undefined || settings.runId !== undefined) && store) {
        // An unreadable save throws here: never a create over a run that cannot be read.
        const saved = await loadRun(store, runId);
        this.#assertOpen();
        if (saved) return (await this.#resume(saved, request)).run;
      }
      // Before the run exists (and is saved): a `keyOf` that throws leaves nothing behind.
      const keys = this.#keysOf(request);
      const options = mergeOptions(this.#runOptions, settings.options);
      const run = prepareRun(this.#host, runRequest, { runId, ...(options ? { options } : {}) });
      this.#track(runId, run, "waiting", key);
      this.#emit({ type: "run.queued", runId, ...(key !== undefined ? { key } : {}) });
      this.#send({
        type: "fleet.submit",
        runId,
        ...(priority !== undefined ? { priority } : {}),
        keys,
      });
      return run;
    });
  }

  /**
   * Brings back every unfinished run of the store, under the limits: saved running runs are
   * active at once (their responses hold a slot at the server whether or not this process
   * follows them), then saved waiting runs queue, oldest save first. A run saved with its
   * create in flight follows its `onUnknownCreate` (never a silent second create). Unreadable
   * saves are reported, never thrown.
   *
   * @example
   * ```ts
   * const report = await orchestrator.recover();
   * console.log(report.adopted.length, "carried on;", report.requeued.length, "waiting");
   * ```
   */
  recover(): Promise<RecoverReport> {
    return this.#serial(async () => {
      this.#assertOpen();
      const store = this.#host.store;
      if (!store) throw new BatonError("store_missing", "recover() needs an orchestrator store");
      const report: RecoverReport = {
        requeued: [],
        adopted: [],
        ended: [],
        finished: 0,
        unreadable: [],
      };
      const saved: PersistedRun[] = [];
      for (const entry of await loadEntries(store)) {
        if (entry.run) saved.push(entry.run);
        else report.unreadable.push({ runId: entry.runId, error: entry.error });
      }
      saved.sort((a, b) => a.savedAt - b.savedAt);
      // Running ones first: adopted before any waiting one can take their slots.
      const order = [
        ...saved.filter((run) => run.state !== "idle"),
        ...saved.filter((run) => run.state === "idle"),
      ];
      for (const persisted of order) {
        if (persisted.state === "done") {
          report.finished += 1;
          continue;
        }
        if (this.#runs.has(persisted.runId)) continue;
        try {
          const { run, phase } = await this.#resume(persisted);
          if (phase === "waiting") report.requeued.push(run.id);
          else if (run.state === "done" && persisted.state === "started") report.ended.push(run.id);
          else report.adopted.push(run.id);
        } catch (err) {
          report.unreadable.push({
            runId: persisted.runId,
            error: err instanceof Error ? err : new Error(String(err)),
          });
        }
      }
      return report;
    });
  }

  /**
   * Stops admitting, saves and detaches every run (the server keeps generating), and resolves
   * once all are. A create in flight is given `createWaitMs` (default 1 s) to answer first, so
   * that its run is saved with its response id; past that it is saved in `started`, and the
   * next `recover()` applies its `onUnknownCreate` (the report lists these in `started`; a run
   * backing off after a refused create is one of them: the run machine restores any `started`
   * save that way). Runs waiting are saved as they are, and queue again in the next process.
   * After a drain, `startRun` and `recover` throw.
   *
   * @example
   * ```ts
   * process.on("SIGTERM", async () => { await orchestrator.drain(); process.exit(0); });
   * ```
   */
  drain(options: { createWaitMs?: number } = {}): Promise<DrainReport> {
    if (this.#draining) return this.#draining;
    this.#closed = true;
    const createWaitMs = options.createWaitMs ?? 1_000;
    this.#draining = (async () => {
      // Starts already under way finish first (their runs are then drained with the rest).
      await this.#intake.catch(() => {});
      this.#send({ type: "fleet.drain" });
      const live = () => [...this.#runs.values()].filter((t) => t.phase === "active");
      await Promise.all(live().map((t) => untilLeaves(t.run, "started", createWaitMs)));
      const detached: string[] = [];
      const started: string[] = [];
      await Promise.all(
        [...this.#runs.values()]
          .filter((t) => t.phase === "waiting" || t.phase === "active")
          .map(async (t) => {
            if (t.run.state === "done") return;
            const saved = await t.run.detach();
            detached.push(t.runId);
            if (saved.state === "started") started.push(t.runId);
          }),
      );
      await this.#drained();
      this.gate.close();
      return { detached, started };
    })();
    return this.#draining;
  }

  /**
   * Cancels every run waiting or active, or those `filter` picks. A waiting run ends without a
   * create; an active one is cancelled on the server. Resolves with their results.
   *
   * @example
   * ```ts
   * await orchestrator.cancelAll((r) => r.phase === "waiting"); // drop the backlog
   * ```
   */
  cancelAll(filter?: (run: FleetRun) => boolean): Promise<RunResult[]> {
    const targets = this.runs().filter(
      (r) => (r.phase === "waiting" || r.phase === "active") && (!filter || filter(r)),
    );
    return Promise.all(targets.map((r) => r.run.cancel()));
  }

  /** Every run this orchestrator holds (waiting, active, done or detached), oldest first. */
  runs(): FleetRun[] {
    return [...this.#runs.values()].map((t) => ({
      runId: t.runId,
      ...(t.key !== undefined ? { key: t.key } : {}),
      phase: t.phase,
      run: t.run,
      ...(t.outcome ? { outcome: t.outcome } : {}),
    }));
  }

  /** The runs counted by phase, by run state and by outcome (for a progress display). */
  counts(): FleetCounts {
    const counts: FleetCounts = {
      total: 0,
      waiting: 0,
      active: 0,
      done: 0,
      detached: 0,
      byState: {},
      byOutcome: {},
    };
    for (const t of this.#runs.values()) {
      counts.total += 1;
      counts[t.phase] += 1;
      if (t.phase !== "detached") {
        const state = t.run.state;
        counts.byState[state] = (counts.byState[state] ?? 0) + 1;
      }
      if (t.outcome) counts.byOutcome[t.outcome] = (counts.byOutcome[t.outcome] ?? 0) + 1;
    }
    return counts;
  }

  /** Listens to every fleet event; returns the subscription. */
  subscribe(listener: (event: FleetEvent) => void): { unsubscribe(): void } {
    this.#listeners.add(listener);
    return { unsubscribe: () => this.#listeners.delete(listener) };
  }

  /** Listens to one kind of fleet event. */
  on<T extends FleetEventType>(
    type: T,
    handler: (event: Extract<FleetEvent, { type: T }>) => void,
  ): { unsubscribe(): void } {
    return this.subscribe((event) => {
      if (event.type === type) handler(event as Extract<FleetEvent, { type: T }>);
    });
  }

  #serial<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#intake.then(step);
    this.#intake = next.catch(() => {});
    return next;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new BatonError("orchestrator_drained", "the orchestrator is drained: start another");
    }
  }

  #send(event: Parameters<Actor<OrchestratorMachine>["send"]>[0]): void {
    if (this.actor.getSnapshot().status === "active") this.actor.send(event);
  }

  #emit(event: FleetEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #keysOf(request: FleetRequest): Record<string, string> {
    const keys: Record<string, string> = {};
    for (const limit of this.#limits) {
      const key = limit.keyOf(request);
      if (key !== undefined) keys[limit.name] = key;
    }
    return keys;
  }

  /**
   * A saved run back under the orchestrator: waiting ones queue, running ones are adopted,
   * finished ones are returned as they are. Keys of the limits come from the request given, or
   * the saved one (a running run's request is not saved: only the global limit holds it).
   */
  async #resume(
    persisted: PersistedRun,
    request?: FleetRequest,
  ): Promise<{ run: Run; phase: FleetPhase }> {
    const run = await rehydrateRun(this.#host, { persisted });
    const context = persisted.snapshot.context;
    const savedRequest: FleetRequest | undefined = context.request
      ? { ...context.request, stream: context.mode === "stream" }
      : undefined;
    const keys = this.#keysOf(request ?? savedRequest ?? { model: "", input: "" });
    const key = request?.key;
    if (run.state === "done") {
      this.#track(run.id, run, "done", key);
      return { run, phase: "done" };
    }
    if (persisted.state === "idle") {
      this.#track(run.id, run, "waiting", key);
      this.#emit({ type: "run.queued", runId: run.id, ...(key !== undefined ? { key } : {}) });
      this.#send({
        type: "fleet.submit",
        runId: run.id,
        ...(request?.priority !== undefined ? { priority: request.priority } : {}),
        keys: request || savedRequest ? keys : {},
      });
      return { run, phase: "waiting" };
    }
    this.#track(run.id, run, "active", key);
    this.#send({ type: "fleet.adopt", runId: run.id, keys: request || savedRequest ? keys : {} });
    return { run, phase: "active" };
  }

  /** Follows a run to its end: its result frees its slot. */
  #track(runId: string, run: Run, phase: FleetPhase, key?: string): void {
    const tracked: Tracked = { runId, run, phase, ...(key !== undefined ? { key } : {}) };
    this.#runs.set(runId, tracked);
    if (run.responseId === null) {
      const sub = run.on("status", () => {
        const responseId = run.responseId;
        if (responseId === null) return;
        sub.unsubscribe();
        this.#emit({ type: "run.started", runId, responseId });
      });
    }
    const detached = () => {
      tracked.phase = "detached";
      this.#emit({ type: "run.detached", runId });
      this.#send({ type: "run.settled", runId });
    };
    run.result().then(
      (result: RunResult | undefined) => {
        // An actor stopped from outside (not through detach) completes with no output.
        if (!result) return detached();
        tracked.phase = "done";
        tracked.outcome = result.outcome;
        // The event first: a listener sees a run done before the run its slot admits.
        this.#emit({ type: "run.done", runId, outcome: result.outcome, result });
        this.#send({ type: "run.settled", runId });
      },
      // Detached (drain) or stopped: this process no longer follows it.
      detached,
    );
  }

  #admitted(runId: string): void {
    const tracked = this.#runs.get(runId);
    if (!tracked) return;
    if (tracked.phase === "waiting") tracked.phase = "active";
    this.#emit({ type: "run.admitted", runId });
    tracked.run.start();
  }

  /** Resolves once the machine has seen every run settle (its `drained` state). */
  #drained(): Promise<void> {
    return new Promise((resolve) => {
      if (this.actor.getSnapshot().status !== "active") return resolve();
      const sub = this.actor.subscribe({
        complete: () => {
          sub.unsubscribe();
          resolve();
        },
      });
    });
  }
}
