/**
 * The run host: where a run gets its machine and starts, and where a saved run comes back.
 * One run machine per client (cached), `startRun` for a new response, `attachRun` to follow a
 * response that exists, `rehydrateRun` to carry on a saved run, `loadRun` / `checkRun` to read a
 * saved run checked against the machine. Everything that starts a run (the CLI, the agent
 * facade, a later orchestrator) comes through here.
 */
import { randomBytes } from "node:crypto";
import { createActor, type InspectionEvent } from "xstate";
import { decodeContinuationToken } from "../continuation-token.js";
import { BatonError, RunNotFoundError } from "../errors.js";
import { assertValidRunId } from "../input-validation.js";
import { createRunMachine, type RunMachine, runMachine } from "../machines/run-machine.js";
import { validateStartInput } from "../machines/run-options.js";
import type { RunInput, RunMode, RunOptions } from "../machines/run-types.js";
import type { PersistedRun } from "../persistence/envelope.js";
import {
  asError,
  listEntries,
  type RunStore,
  type RunStoreEntry,
} from "../persistence/run-store.js";
import { validateRunSnapshot } from "../persistence/snapshot-validation.js";
import {
  type OpenAIResponsesLike,
  openAIResponsesClient,
} from "../services/openai-responses-client.js";
import type { CreateRequest, ResponsesClient } from "../services/responses-client.js";
import { applyCursor, type ConsumerCursor } from "./consumer-cursor.js";
import { restoreRunActor } from "./restore.js";
import { Run, type RunHostOptions } from "./run.js";

/** An `openai` client instance, or any implementation of baton's client port. */
export type ClientLike = OpenAIResponsesLike | ResponsesClient;

/** Where runs run: the client, and the host options every run of it shares. */
export interface RunHost extends RunHostOptions {
  client: ClientLike;
}

/**
 * What to ask the Responses API for: its own create fields (`model`, `input`, …) and whether
 * to stream. baton always sends `background: true` and `store: true` (a background response is
 * stored by the service), so the request has no `store` of its own: `store` in the host is
 * where baton saves the run.
 */
export interface RunRequest extends CreateRequest {
  /** Stream events (true) or poll (false, the default, as in the SDK). */
  stream?: boolean;
}

/** The run's own settings, beside the request. */
export interface NewRunOptions {
  /** Defaults to a new random id. */
  runId?: string;
  options?: Partial<RunOptions>;
}

/**
 * The one-object form of {@link startRun}'s arguments (host options, request and run settings
 * together).
 *
 * @deprecated Use `startRun(host, request, run?)`: in this form `store` is baton's run store
 * and cannot also be the Responses API's field. Still accepted in this version.
 */
export interface StartRunOptions extends RunHostOptions, CreateRequest, NewRunOptions {
  client: ClientLike;
  /** Stream events (true) or poll (false, the default, as in the SDK). */
  stream?: boolean;
}

/** A response that exists, to follow: what `attachRun` needs. */
export interface AttachTarget extends NewRunOptions {
  responseId: string;
  mode: RunMode;
  /** A stream's cursor: resume after this event (absent: replay from the start). */
  sequenceNumber?: number;
}

/**
 * One run machine per client, shared by all its runs: `provide` builds a whole machine, about
 * 50 KB and 0.2 ms each, which per run would dominate the cost of thousands of polling runs.
 */
const machines = new WeakMap<ClientLike, RunMachine>();

/**
 * The run machine of a client (built once per client, then shared by its runs).
 *
 * @example
 * ```ts
 * const machine = machineFor(new OpenAI());
 * ```
 */
export function machineFor(client: ClientLike): RunMachine {
  let machine = machines.get(client);
  if (!machine) {
    machine = createRunMachine("responses" in client ? openAIResponsesClient(client) : client);
    machines.set(client, machine);
  }
  return machine;
}

/**
 * A new run id: `run_` and 24 hex digits.
 *
 * @example
 * ```ts
 * newRunId(); // "run_3f9c…"
 * ```
 */
export function newRunId(): string {
  return `run_${randomBytes(12).toString("hex")}`;
}

/**
 * Starts a background response run. The host says where it runs and is saved, the request is
 * the Responses API's own, the third argument the run's id and options.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const run = startRun({ client: new OpenAI(), store }, { model: "o3", input: "Explain relativity.", stream: true });
 * console.log(run.token); // resume from it anywhere
 * for await (const delta of run.deltas()) process.stdout.write(delta.text);
 * const result = await run.result(); // { outcome: "completed", text, usage, ... }
 * ```
 */
export function startRun(host: RunHost, request: RunRequest, run?: NewRunOptions): Run;
/** @deprecated Use `startRun(host, request, run?)`. */
export function startRun(options: StartRunOptions): Run;
export function startRun(
  hostOrOptions: RunHost | StartRunOptions,
  request?: RunRequest,
  run: NewRunOptions = {},
): Run {
  const [host, req, settings] =
    request === undefined
      ? splitStartOptions(hostOrOptions as StartRunOptions)
      : [hostOrOptions, request, run];
  const prepared = prepareRun(host, req, settings);
  prepared.start();
  return prepared;
}

/**
 * A run made ready but not started: its actor waits in `idle` (saved there, with its request,
 * when the host has a store) until `run.start()`. Nothing is sent to the server before that, and
 * `run.cancel()` ends it without a create. What an admission queue holds.
 *
 * @example
 * ```ts
 * const run = prepareRun({ client, store }, { model: "o3", input: "later" });
 * run.state; // "idle"
 * run.start(); // now it creates
 * ```
 */
export function prepareRun(host: RunHost, request: RunRequest, run: NewRunOptions = {}): Run {
  const { stream, ...createRequest } = request;
  const input: RunInput = {
    runId: run.runId ?? newRunId(),
    mode: stream ? "stream" : "poll",
    request: createRequest,
    ...(run.options ? { options: run.options } : {}),
  };
  validateStartInput(input); // before the create: a run that cannot be saved is never billed
  return create(machineFor(host.client), input, host);
}

/** The deprecated one-object form, split into host, request and run settings. */
function splitStartOptions(options: StartRunOptions): [RunHost, RunRequest, NewRunOptions] {
  const {
    client,
    store,
    checkpoint,
    delivery,
    inspect,
    signal,
    onSaveError,
    runId,
    options: runOptions,
    ...request
  } = options;
  const host: RunHost = {
    client,
    ...(store !== undefined ? { store } : {}),
    ...(checkpoint !== undefined ? { checkpoint } : {}),
    ...(delivery !== undefined ? { delivery } : {}),
    ...(inspect !== undefined ? { inspect } : {}),
    ...(signal !== undefined ? { signal } : {}),
    ...(onSaveError !== undefined ? { onSaveError } : {}),
  };
  const settings: NewRunOptions = {
    ...(runId !== undefined ? { runId } : {}),
    ...(runOptions !== undefined ? { options: runOptions } : {}),
  };
  return [host, request, settings];
}

/**
 * Follows a response that already exists (created elsewhere, or by an earlier run): polls it,
 * or streams it after `sequenceNumber` (from its start without one). Never creates one.
 *
 * @example
 * ```ts
 * const run = attachRun({ client }, { responseId: "resp_123", mode: "stream" }); // replay
 * ```
 */
export function attachRun(host: RunHost, target: AttachTarget): Run {
  if (target.runId !== undefined) assertValidRunId(target.runId, "target.runId");
  const input: RunInput = {
    runId: target.runId ?? newRunId(),
    mode: target.mode,
    responseId: target.responseId,
    ...(target.sequenceNumber !== undefined ? { sequenceNumber: target.sequenceNumber } : {}),
    ...(target.options ? { options: target.options } : {}),
  };
  const run = create(machineFor(host.client), input, host);
  run.start();
  return run;
}

/** A run's actor, started in `idle` (its checkpointer too): `run.start()` sets it going. */
function create(machine: RunMachine, input: RunInput, host: RunHostOptions): Run {
  const actor = createActor(machine, { input, ...(host.inspect ? { inspect: host.inspect } : {}) });
  const run = new Run(actor, host);
  actor.start();
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

/**
 * A saved run checked against the run machine itself: its substates, history and children, as
 * well as what the store checked. Throws an `InvalidSnapshotError` naming the field.
 *
 * @example
 * ```ts
 * const run = checkRun(JSON.parse(text)); // or a store's load
 * ```
 */
export function checkRun(persisted: PersistedRun): PersistedRun {
  const snapshot = validateRunSnapshot(runMachine, persisted.snapshot, {
    savedAt: persisted.savedAt,
    runId: persisted.runId,
  });
  return { ...persisted, snapshot };
}

/**
 * A store's save of a run, checked against the machine ({@link checkRun}); undefined when the
 * store has none.
 *
 * @example
 * ```ts
 * const persisted = await loadRun(store, runId);
 * if (persisted) console.log(persisted.state);
 * ```
 */
export async function loadRun(store: RunStore, runId: string): Promise<PersistedRun | undefined> {
  const persisted = await store.load(runId);
  return persisted ? checkRun(persisted) : undefined;
}

/**
 * Every entry of a store ({@link listEntries}), each readable run checked against the machine:
 * one that fails the check is listed as unreadable, with the error naming its field.
 *
 * @example
 * ```ts
 * for (const entry of await loadEntries(store)) console.log(entry.runId, entry.error?.message);
 * ```
 */
export async function loadEntries(store: RunStore): Promise<RunStoreEntry[]> {
  return (await listEntries(store)).map((entry) => {
    if (!entry.run) return entry;
    try {
      return { runId: entry.runId, run: checkRun(entry.run) };
    } catch (err) {
      return { runId: entry.runId, error: asError(err) };
    }
  });
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
export async function rehydrateRun(host: RunHost, source: RehydrateSource): Promise<Run> {
  if ("runId" in source && source.runId !== undefined)
    assertValidRunId(source.runId, "source.runId");
  if ("token" in source) {
    const token = decodeContinuationToken(source.token);
    return attachRun(host, {
      responseId: token.responseId,
      mode: token.sequenceNumber === undefined ? "poll" : "stream",
      ...(token.sequenceNumber !== undefined ? { sequenceNumber: token.sequenceNumber } : {}),
      ...(source.runId !== undefined ? { runId: source.runId } : {}),
      ...(source.options ? { options: source.options } : {}),
    });
  }
  let persisted: PersistedRun | undefined;
  let saveTo: RunHostOptions = host;
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
    machineFor(host.client),
    cursor?.snapshot ?? persisted.snapshot,
    inspect ? { inspect } : {},
  );
  return new Run(actor, saveTo, cursor);
}
