/**
 * Replays the paths of the run machine's test model (`./model.ts`) against the REAL machine,
 * wired to the emulator through the real `openai` SDK and baton's client port.
 *
 * The client the machine uses is the real one behind a gate: every call waits until the path
 * reaches the step that names its outcome; the step then arms the emulator (fault rules,
 * generation scripts) so that the real call returns that outcome, and releases it. The machine's
 * timers are gated the same way (XState's delayed transitions through a clock the runner holds,
 * the deadline's `sleepUntil` child), so a path decides when a wait or the deadline ends;
 * streams are read one event per `stream.events` step. After each step the runner checks that
 * the live actor processed that event, took the transitions the model took, and is in the state
 * the model says.
 *
 * A few outcomes no honest emulator produces are scripted at the port (the real call is not
 * made, or its answer is replaced), and every such step is listed in the result's `scripted`:
 * a stream that ends without a terminal event, a repeated or skipped sequence number, a
 * background create that answers a terminal status, a cancel that answers `in_progress`, and a
 * status the response can no longer be in when the step comes (e.g. still running, after it
 * completed).
 */

import OpenAI from "openai";
import { type Actor, createActor, fromPromise, type InspectionEvent } from "xstate";
import { type Emulator, type EmulatorOptions, startEmulator } from "../emulator/index.js";
import type { FaultRule, GenerationScript, RequestKind } from "../emulator/types.js";
import { TestStepError } from "../errors.js";
import { createRunActors } from "../machines/run-actors.js";
import { type RunMachine, runMachine } from "../machines/run-machine.js";
import { topKey } from "../machines/run-state.js";
import { readEnvelope, toEnvelope } from "../persistence/envelope.js";
import { restoreRunActor } from "../run/restore.js";
import { type ClientFailure, classifyClientError } from "../services/client-failure.js";
import { openAIResponsesClient } from "../services/openai-responses-client.js";
import {
  isTerminalStatus,
  type ResponseEventStream,
  type ResponseState,
  type ResponseStatus,
  type ResponseStreamEvent,
  type ResponsesClient,
} from "../services/responses-client.js";
import {
  cappedCounters,
  describeEvent,
  MODEL_RESPONSE_ID,
  machineGraph,
  modelInput,
  type RunModelConfig,
  type RunModelEvent,
  type RunSnapshot,
  type RunTestPath,
  stateIdsOf,
  streamedEvent,
} from "./model.js";

/** What replaying one path found. */
export interface PathResult {
  path: RunTestPath;
  ok: boolean;
  /** Why the path failed: the step, what was expected, what the live actor did. */
  error?: Error;
  /** Transitions the live actor took: `toDirectedGraph` edge ids and eventless ids. */
  edges: Set<string>;
  /** State node ids the live actor was in. */
  states: Set<string>;
  /** Steps realized by a scripted port rather than the emulator, with why. */
  scripted: string[];
  /** Steps in all (the path's length). */
  steps: number;
  ms: number;
}

export interface PathRunnerOptions {
  /** Longest wait for one step (default 4 000 ms). */
  stepTimeoutMs?: number;
  /** Extra emulator options (the runner sets the pacing itself). */
  emulator?: EmulatorOptions;
}

/** Replays model paths; owns two emulators (cancelling a completed response errs / returns it). */
export interface PathRunner {
  /** Replays one path; `stepTimeoutMs` overrides the runner's for this path. */
  run(path: RunTestPath, options?: { stepTimeoutMs?: number }): Promise<PathResult>;
  /** The default emulator (`cancelCompleted: "error"`). */
  readonly emulator: Emulator;
  close(): Promise<void>;
}

type Method = "create" | "createStream" | "retrieve" | "streamFrom" | "cancel";

interface PendingCall {
  method: Method;
  responseId?: string;
  release(directive: (call: () => Promise<unknown>) => Promise<unknown>): void;
}

interface PendingTimer {
  id: string;
  release(): void;
}

/** A timer XState set through the runner's clock; `handle` once a step let it run. */
interface PendingDelay {
  fn: () => void;
  dueAt: number;
  handle: NodeJS.Timeout | undefined;
}

/** How the response of a path generates, chosen by looking at the whole path. */
type Pacing = "stuck" | "fast" | "hold" | "window";

/**
 * Starts a runner (two emulators on free ports).
 *
 * @example
 * ```ts
 * const runner = await createPathRunner();
 * for (const path of runTestPaths({ mode: "stream" }, { kind: "transitions" })) {
 *   const result = await runner.run(path);
 *   if (!result.ok) throw result.error;
 * }
 * await runner.close();
 * ```
 */
export async function createPathRunner(options: PathRunnerOptions = {}): Promise<PathRunner> {
  const base: EmulatorOptions = { tokenDelayMs: 0, queuedMs: 0, ...options.emulator };
  const erring = await startEmulator({ ...base, cancelCompleted: "error" });
  const returning = await startEmulator({ ...base, cancelCompleted: "return" });
  const stepTimeoutMs = options.stepTimeoutMs ?? 4_000;
  return {
    emulator: erring,
    run: (path, runOptions = {}) => {
      const returnsOnCancel = path.steps.some(
        (s) => s.event.type === "xstate.done.actor.cancel" && outputStatus(s.event) === "completed",
      );
      const timeout = runOptions.stepTimeoutMs ?? stepTimeoutMs;
      return new PathExecution(path, returnsOnCancel ? returning : erring, timeout).run();
    },
    close: async () => {
      await Promise.all([erring.close(), returning.close()]);
    },
  };
}

function outputStatus(event: RunModelEvent): string | undefined {
  const output = (event as { output?: unknown }).output as
    | { status?: string; response?: { status?: string } }
    | undefined;
  return output?.status ?? output?.response?.status;
}

function failureOfEvent(event: RunModelEvent): ClientFailure {
  return (event as { error: ClientFailure }).error;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What a step tells a controlled stream to do. */
type StreamCommand =
  /** Hand the machine the emulator's next event. */
  | { kind: "pass" }
  /** Drop the emulator's next event and hand the one after (a gap). */
  | { kind: "skip" }
  /** Hand the machine this event (a repeated one). */
  | { kind: "inject"; event: ResponseStreamEvent }
  /** End the stream without a terminal event. */
  | { kind: "end" }
  /** Hand everything the emulator sends, as it comes (it was armed to drop or stall). */
  | { kind: "free" };

/** A stream whose events are handed to the machine one step at a time. */
class ControlledStream implements ResponseEventStream {
  readonly #real: ResponseEventStream;
  readonly #iterator: AsyncIterator<ResponseStreamEvent>;
  readonly #commands: StreamCommand[] = [];
  #wake: (() => void) | undefined;
  #aborted = false;
  #free = false;
  /** Checks each real event against what the model expects next. */
  expect: ((event: ResponseStreamEvent) => void) | undefined;
  /** Sees every real event. */
  onReal: ((event: ResponseStreamEvent) => void) | undefined;

  constructor(real: ResponseEventStream) {
    this.#real = real;
    this.#iterator = real[Symbol.asyncIterator]();
  }

  command(command: StreamCommand): void {
    this.#commands.push(command);
    this.#wake?.();
  }

  abort(): void {
    this.#aborted = true;
    this.#real.abort();
    this.#wake?.();
  }

  async #next(check = true): Promise<IteratorResult<ResponseStreamEvent>> {
    const next = await this.#iterator.next();
    if (!next.done) {
      this.onReal?.(next.value);
      if (check) this.expect?.(next.value);
    }
    return next;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ResponseStreamEvent> {
    while (!this.#aborted) {
      if (this.#free) {
        const next = await this.#next();
        if (next.done) return;
        yield next.value;
        continue;
      }
      const command = this.#commands.shift();
      if (!command) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      if (command.kind === "end") return;
      if (command.kind === "free") {
        this.#free = true;
        this.expect = undefined;
        continue;
      }
      if (command.kind === "inject") {
        yield command.event;
        continue;
      }
      if (command.kind === "skip") {
        const skipped = await this.#next(false);
        if (skipped.done) return;
      }
      const next = await this.#next();
      if (next.done) return;
      yield next.value;
    }
  }
}

class PathExecution {
  readonly #path: RunTestPath;
  readonly #config: RunModelConfig;
  readonly #emulator: Emulator;
  readonly #stepTimeoutMs: number;
  readonly #real: ResponsesClient;
  readonly #side: ResponsesClient;
  readonly #pacing: Pacing;
  readonly #stallPath: boolean;
  readonly #calls: PendingCall[] = [];
  readonly #timers: PendingTimer[] = [];
  /** XState's delayed transitions (`after`), held until a step fires them. */
  readonly #delays: PendingDelay[] = [];
  readonly #clock = {
    setTimeout: (fn: () => void, ms: number): PendingDelay => {
      const delay: PendingDelay = { fn, dueAt: Date.now() + ms, handle: undefined };
      this.#delays.push(delay);
      this.#notify?.();
      return delay;
    },
    clearTimeout: (delay: PendingDelay): void => {
      clearTimeout(delay.handle);
      const index = this.#delays.indexOf(delay);
      if (index >= 0) this.#delays.splice(index, 1);
    },
  };
  readonly #streams: ControlledStream[] = [];
  #notify: (() => void) | undefined;
  #responseId: string | undefined;
  #stream: ControlledStream | undefined;
  readonly #machine: RunMachine;
  #actor: Actor<RunMachine> | undefined;
  /** Root events the live actor processed, each with the snapshot after it and its edges. */
  readonly #processed: { type: string; snapshot: RunSnapshot; edges: string[] }[] = [];
  #edgesSinceEvent: string[] = [];
  readonly #edges = new Set<string>();
  readonly #states = new Set<string>();
  readonly #scripted: string[] = [];
  readonly #problems: string[] = [];
  #stepIndex = -1;

  constructor(path: RunTestPath, emulator: Emulator, stepTimeoutMs: number) {
    this.#path = path;
    this.#config = path.config;
    this.#emulator = emulator;
    this.#stepTimeoutMs = stepTimeoutMs;
    const sdk = () => new OpenAI({ baseURL: emulator.url, apiKey: "sk-model-test", maxRetries: 0 });
    this.#real = openAIResponsesClient(sdk());
    this.#side = openAIResponsesClient(sdk());
    this.#pacing = choosePacing(path);
    this.#stallPath = path.steps.some((s) => s.event.type === "stream.stalled");
    this.#machine = runMachine.provide({
      actors: { ...createRunActors(this.#gatedClient()), sleepUntil: this.#gatedSleep() },
    });
  }

  #script(): GenerationScript {
    const outputTokens = this.#config.deltas ?? 2;
    switch (this.#pacing) {
      case "stuck":
        return { stuckQueued: true, outputTokens };
      case "fast":
        return { queuedMs: 0, tokenDelayMs: 0, outputTokens };
      case "hold":
        return { queuedMs: 0, tokenDelayMs: 60_000, outputTokens };
      case "window":
        // About 200 ms of generation; a poll-mode response's text length is free.
        return this.#config.mode === "poll"
          ? { queuedMs: 0, tokenDelayMs: 25, outputTokens: 8 }
          : { queuedMs: 0, tokenDelayMs: 70, outputTokens };
    }
  }

  async run(): Promise<PathResult> {
    const started = Date.now();
    let error: Error | undefined;
    try {
      await this.#setUp();
      for (let i = 0; i < this.#path.steps.length; i++) {
        this.#stepIndex = i;
        await this.#step(i);
      }
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
      error.message = `${this.#path.description}\n  step ${this.#stepIndex + 1}: ${error.message}`;
    } finally {
      this.#tearDown();
    }
    return {
      path: this.#path,
      ok: error === undefined,
      ...(error ? { error } : {}),
      edges: this.#edges,
      states: this.#states,
      scripted: this.#scripted,
      steps: this.#path.steps.length,
      ms: Date.now() - started,
    };
  }

  async #setUp(): Promise<void> {
    this.#emulator.faults.clear();
    let input = modelInput(this.#config);
    if (this.#config.attached) {
      // The response the run follows: created beforehand, as by another process.
      this.#emulator.faults.add({ on: ["create", "create-stream"], script: this.#script() });
      const sdk = new OpenAI({
        baseURL: this.#emulator.url,
        apiKey: "sk-model-test",
        maxRetries: 0,
      });
      const body = { model: "model-test", input: "model-based test", background: true } as const;
      if (this.#config.mode === "stream") {
        const stream = await sdk.responses.create({ ...body, stream: true });
        for await (const event of stream) {
          if (event.type === "response.created") this.#responseId = event.response.id;
          break;
        }
        stream.controller.abort();
      } else {
        this.#responseId = (await sdk.responses.create(body)).id;
      }
      input = modelInput(this.#config, this.#responseId);
    }
    const timeouts = this.#stallPath ? 500 : 10_000;
    input = {
      ...input,
      options: { ...input.options, firstEventTimeoutMs: timeouts, idleTimeoutMs: timeouts },
    };
    const actor = createActor(this.#machine, {
      input,
      inspect: (e) => this.#inspect(e),
      clock: this.#clock,
    });
    this.#actor = actor;
    actor.start();
    this.#recordStates(actor.getSnapshot());
  }

  #tearDown(): void {
    this.#actor?.stop();
    for (const stream of this.#streams) stream.abort();
    this.#emulator.faults.clear();
  }

  #inspect(event: InspectionEvent): void {
    if (event.actorRef.sessionId !== event.rootId) return;
    if (event.type === "@xstate.microstep") {
      const edges = machineGraph(this.#machine).edgeIdsOf(event._transitions);
      for (const edge of edges) this.#edges.add(edge);
      this.#edgesSinceEvent.push(...edges);
      this.#recordStates(event.snapshot as RunSnapshot);
    } else if (event.type === "@xstate.snapshot") {
      this.#processed.push({
        type: event.event.type,
        snapshot: event.snapshot as RunSnapshot,
        edges: this.#edgesSinceEvent,
      });
      this.#edgesSinceEvent = [];
      this.#notify?.();
    }
  }

  #recordStates(snapshot: RunSnapshot): void {
    for (const id of stateIdsOf(snapshot)) this.#states.add(id);
  }

  // -------------------------------------------------------------------------------------------
  // The gated client and timers.

  #register(call: PendingCall): void {
    this.#calls.push(call);
    this.#notify?.();
  }

  #gatedClient(): ResponsesClient {
    const gate = <T>(
      method: Method,
      signal: AbortSignal,
      real: () => Promise<T>,
      responseId?: string,
    ): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const call: PendingCall = {
          method,
          ...(responseId !== undefined ? { responseId } : {}),
          release: (directive) => {
            signal.removeEventListener("abort", onAbort);
            (directive(real) as Promise<T>).then(resolve, reject);
          },
        };
        const onAbort = () => {
          const index = this.#calls.indexOf(call);
          if (index >= 0) this.#calls.splice(index, 1);
          reject(new DOMException("aborted by the machine", "AbortError"));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        this.#register(call);
      });
    const real = this.#real;
    return {
      create: (request, signal) => gate("create", signal, () => real.create(request, signal)),
      createStream: (request, signal) =>
        gate("createStream", signal, () => real.createStream(request, signal)),
      retrieve: (id, signal) => gate("retrieve", signal, () => real.retrieve(id, signal), id),
      streamFrom: (id, after, signal) =>
        gate("streamFrom", signal, () => real.streamFrom(id, after, signal), id),
      cancel: (id, signal) => gate("cancel", signal, () => real.cancel(id, signal), id),
    };
  }

  #gatedSleep() {
    return fromPromise<void, { until: number | null }>(
      ({ input, signal, self }) =>
        new Promise<void>((resolve) => {
          if (input.until === null) return;
          const until = input.until;
          const timer: PendingTimer = {
            id: self.id,
            release: () => {
              const left = Math.max(0, until - Date.now());
              const handle = setTimeout(resolve, left);
              signal.addEventListener("abort", () => clearTimeout(handle), { once: true });
            },
          };
          signal.addEventListener(
            "abort",
            () => {
              const index = this.#timers.indexOf(timer);
              if (index >= 0) this.#timers.splice(index, 1);
            },
            { once: true },
          );
          this.#timers.push(timer);
          this.#notify?.();
        }),
    );
  }

  async #waitFor<T>(what: string, find: () => T | undefined): Promise<T> {
    const deadline = Date.now() + this.#stepTimeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new TestStepError(`timed out waiting for ${what}${this.#liveSummary()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#notify = undefined;
    }
  }

  #liveSummary(): string {
    const snapshot = this.#actor?.getSnapshot();
    const calls = this.#calls.map((c) => c.method).join(", ") || "none";
    const timers =
      [...this.#timers.map((t) => t.id), ...this.#delays.map(() => "a delayed transition")].join(
        ", ",
      ) || "none";
    const problems = this.#problems.length ? `; problems: ${this.#problems.join("; ")}` : "";
    return ` (live: ${snapshot?.status} ${JSON.stringify(snapshot?.value)}; pending calls: ${calls}; timers: ${timers}${problems})`;
  }

  async #takeCall(method: Method): Promise<PendingCall> {
    const call = await this.#waitFor(`a pending ${method} call`, () =>
      this.#calls.find((c) => c.method === method),
    );
    this.#calls.splice(this.#calls.indexOf(call), 1);
    return call;
  }

  // -------------------------------------------------------------------------------------------
  // Steps.

  async #step(index: number): Promise<void> {
    const step = this.#path.steps[index];
    if (!step) return;
    const event = step.event;
    const mark = this.#processed.length;
    const previous = index === 0 ? undefined : this.#path.steps[index - 1]?.state;
    let expectedType: string = event.type;
    const type = event.type;

    if (type === "run.restored") {
      await this.#restore();
    } else if (type.startsWith("run.")) {
      this.#actor?.send(event as never);
    } else if (type.startsWith("xstate.after.")) {
      await this.#fireDelay(event);
    } else if (type.startsWith("xstate.done.actor.") || type.startsWith("xstate.error.actor.")) {
      await this.#settleActor(index, event);
    } else if (type === "stream.events") {
      this.#streamEvent(event, previous);
    } else if (type === "stream.closed") {
      this.#scripted.push(
        `step ${index + 1}: stream.closed (the stream ends without a terminal event)`,
      );
      this.#command({ kind: "end" });
    } else if (type === "stream.failed" || type === "stream.stalled") {
      // The emulator was armed when this stream opened: it drops / stalls after what was read.
      this.#command({ kind: "free" });
    } else if (type === "watchdog.queued") {
      // The consumer's own queued-deadline timer fires: nothing to do but wait.
      expectedType = "watchdog.queued";
    }

    const record = await this.#waitFor(`the live actor to process ${describeEvent(event)}`, () => {
      for (let i = mark; i < this.#processed.length; i++) {
        const processed = this.#processed[i];
        if (processed && processed.type === expectedType) return { processed, i };
      }
      return undefined;
    });
    const unexpected = this.#processed
      .slice(mark, record.i)
      .map((p) => p.type)
      .filter((t) => t !== "xstate.init" && t !== "xstate.stop");
    if (unexpected.length > 0) {
      throw new TestStepError(
        `the live actor processed unexpected events first: ${unexpected.join(", ")}`,
      );
    }
    this.#compare(step.state, record.processed.snapshot, describeEvent(event));
    const liveEdges = [...new Set(record.processed.edges)].sort();
    const modelEdges = [...new Set(step.edges)].sort();
    if (liveEdges.join() !== modelEdges.join()) {
      const graph = machineGraph(this.#machine);
      throw new TestStepError(
        `transitions differ: model took [${modelEdges.map(graph.describe).join("; ")}], live took [${liveEdges.map(graph.describe).join("; ")}]`,
      );
    }
    if (this.#problems.length > 0) throw new TestStepError(this.#problems.join("; "));
  }

  #compare(model: RunSnapshot, live: RunSnapshot, what: string): void {
    const m = model.context;
    const l = live.context;
    const streamSide = ["streaming", "interrupted", "resumed"].includes(topKey(model.value) ?? "");
    const checks: [string, unknown, unknown][] = [
      ["status", model.status, live.status],
      ["state", JSON.stringify(model.value), JSON.stringify(live.value)],
      ["result.outcome", m.result?.outcome, l.result?.outcome],
      ["result.reason", m.result?.reason, l.result?.reason],
    ];
    // A finished run's model state is its outcome (the model merges the ways to it).
    if (model.status === "active") {
      checks.push(
        ["attempts", cappedCounters(model).attempts, cappedCounters(live).attempts],
        ["cancelRequested", m.cancelRequested, l.cancelRequested],
        ["has responseId", m.responseId !== null, l.responseId !== null],
      );
    }
    if (streamSide && model.status === "active") {
      checks.push(
        ["sequenceNumber", m.sequenceNumber, l.sequenceNumber],
        [
          "resumeAttempts",
          cappedCounters(model).resumeAttempts,
          cappedCounters(live).resumeAttempts,
        ],
        ["response status", m.status, l.status],
      );
    }
    const wrong = checks.filter(([, a, b]) => a !== b);
    if (wrong.length > 0) {
      throw new TestStepError(
        `after ${what}: ${wrong.map(([k, a, b]) => `${k} is ${String(b)}, the model says ${String(a)}`).join("; ")}${this.#liveSummary()}`,
      );
    }
  }

  async #restore(): Promise<void> {
    const actor = this.#actor;
    if (!actor) throw new TestStepError("no actor to restore");
    // What a crash leaves: the last save, read back through the envelope.
    const saved = readEnvelope(
      JSON.parse(JSON.stringify(toEnvelope(actor.getPersistedSnapshot()))),
    );
    actor.stop();
    this.#stream = undefined;
    this.#actor = restoreRunActor(this.#machine, saved.snapshot, {
      inspect: (e) => this.#inspect(e),
      clock: this.#clock,
    });
  }

  #command(command: StreamCommand): void {
    const stream = this.#stream;
    if (!stream) throw new TestStepError("no open stream to drive");
    stream.command(command);
  }

  #streamEvent(event: RunModelEvent, previous: RunSnapshot | undefined): void {
    const wanted = streamedEvent(event);
    const cursor = previous?.context.sequenceNumber ?? this.#initialCursor();
    const stream = this.#stream;
    if (!stream) throw new TestStepError("no open stream to drive");
    if (wanted.sequenceNumber <= cursor) {
      this.#scripted.push(
        `step ${this.#stepIndex + 1}: a repeated event #${wanted.sequenceNumber}`,
      );
      stream.command({ kind: "inject", event: wanted });
      return;
    }
    stream.expect = (real) => {
      if (real.sequenceNumber !== wanted.sequenceNumber || real.kind !== wanted.kind) {
        this.#problems.push(
          `the emulator sent #${real.sequenceNumber} ${real.kind}, the model expected #${wanted.sequenceNumber} ${wanted.kind}`,
        );
      }
    };
    if (wanted.sequenceNumber === cursor + 1) {
      stream.command({ kind: "pass" });
    } else {
      this.#scripted.push(`step ${this.#stepIndex + 1}: event #${cursor + 1} skipped (a gap)`);
      stream.command({ kind: "skip" });
    }
  }

  #initialCursor(): number {
    const input = modelInput(this.#config);
    return "sequenceNumber" in input && input.sequenceNumber !== undefined
      ? input.sequenceNumber
      : -1;
  }

  /**
   * Fires the delayed transition the step names: the one wait XState holds (a run waits on one
   * thing at a time), once its time has come, as it would without the test.
   */
  async #fireDelay(event: RunModelEvent): Promise<void> {
    const delay = await this.#waitFor(`the timer of ${event.type}`, () =>
      this.#delays.find((d) => d.handle === undefined),
    );
    delay.handle = setTimeout(
      () => {
        const index = this.#delays.indexOf(delay);
        if (index >= 0) this.#delays.splice(index, 1);
        delay.fn();
      },
      Math.max(0, delay.dueAt - Date.now()),
    );
  }

  /** Resolves the invoked actor the event names, with the outcome it names. */
  async #settleActor(index: number, event: RunModelEvent): Promise<void> {
    const match = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event.type);
    const ok = match?.[1] === "done";
    const id = match?.[2] ?? "";
    if (id === "deadline") {
      const timer = await this.#waitFor(`the ${id} timer`, () =>
        this.#timers.find((t) => t.id === id),
      );
      this.#timers.splice(this.#timers.indexOf(timer), 1);
      timer.release();
      return;
    }
    const methods: Record<string, Method> = {
      create: "create",
      createStream: "createStream",
      poll: "retrieve",
      confirm: "retrieve",
      check: "retrieve",
      resume: "streamFrom",
      cancel: "cancel",
    };
    const method = methods[id];
    if (!method) throw new TestStepError(`no realization for ${event.type}`);
    const call = await this.#takeCall(method);
    const label = `step ${index + 1}: ${describeEvent(event)}`;
    if (!ok) {
      const failure = failureOfEvent(event);
      await this.#armFailure(method, failure);
      call.release(async (real) => {
        try {
          await real();
        } catch (err) {
          const kind = classifyClientError(err).kind;
          if (kind !== failure.kind) {
            this.#problems.push(`${label}: the real call failed with ${kind}`);
          }
          throw err;
        }
        this.#problems.push(`${label}: the real call did not fail`);
        throw failure;
      });
      return;
    }
    switch (method) {
      case "create":
      case "createStream":
        await this.#releaseCreate(call, event, label);
        return;
      case "retrieve":
        await this.#releaseRetrieve(call, event, label);
        return;
      case "cancel":
        await this.#releaseCancel(call, event, label);
        return;
      case "streamFrom":
        call.release(async (real) => {
          this.#armSegment(false);
          return this.#opened((await real()) as ResponseEventStream);
        });
        return;
    }
  }

  #faultKind(method: Method): RequestKind {
    const kinds: Record<Method, RequestKind> = {
      create: "create",
      createStream: "create-stream",
      retrieve: "retrieve",
      streamFrom: "retrieve-stream",
      cancel: "cancel",
    };
    return kinds[method];
  }

  #addFault(rule: FaultRule): void {
    this.#emulator.faults.add({
      ...rule,
      ...(this.#responseId && rule.on !== "create" && rule.on !== "create-stream"
        ? { responseId: this.#responseId }
        : {}),
    });
  }

  /** Arms the emulator so that the next call of this kind fails as `failure` says. */
  async #armFailure(method: Method, failure: ClientFailure): Promise<void> {
    const on = this.#faultKind(method);
    switch (failure.kind) {
      case "rate-limited":
        this.#addFault({ on, status: { code: 429, retryAfterMs: failure.retryAfterMs ?? 1 } });
        return;
      case "server":
        this.#addFault({ on, status: { code: 500 } });
        return;
      case "not-found":
        this.#addFault({ on, status: { code: 404, message: failure.message } });
        return;
      case "connection":
        this.#addFault({ on, reset: {} });
        return;
      case "already-finished": {
        const status = this.#responseId
          ? this.#emulator.getResponse(this.#responseId)?.status
          : undefined;
        // Cancelling a finished response errs on its own; otherwise the emulator is told to.
        if (!(status && isTerminalStatus(status) && status !== "cancelled")) {
          this.#addFault({ on, status: { code: 400, message: failure.message } });
        }
        return;
      }
      default:
        this.#addFault({ on, status: { code: failure.status ?? 400, message: failure.message } });
    }
  }

  async #releaseCreate(call: PendingCall, event: RunModelEvent, label: string): Promise<void> {
    this.#emulator.faults.add({ on: ["create", "create-stream"], script: this.#script() });
    if (call.method === "createStream") {
      call.release(async (real) => {
        this.#armSegment(true);
        const stream = this.#opened((await real()) as ResponseEventStream);
        // `response.created` names the response; the create actor reads it itself.
        stream.command({ kind: "pass" });
        return stream;
      });
      return;
    }
    const output = (event as { output: ResponseState }).output;
    call.release(async (real) => {
      const response = (await real()) as ResponseState;
      this.#responseId = response.id;
      if (response.status === output.status) return response;
      // A background create answers `queued`: any other answer is scripted over the real one.
      this.#scripted.push(`${label} (a background create answers ${response.status})`);
      return { ...output, id: response.id };
    });
  }

  /**
   * A stream is about to open (by the create or a resume): looks ahead to how the path ends
   * it, and arms the emulator to drop or stall it after the events the path reads first.
   */
  #armSegment(create: boolean): void {
    const steps = this.#path.steps;
    const opening = steps[this.#stepIndex];
    let cursor = opening?.state.context.sequenceNumber ?? -1;
    let pulled = create ? 1 : 0;
    for (let i = this.#stepIndex + 1; i < steps.length; i++) {
      const step = steps[i];
      if (!step) return;
      if (step.event.type === "stream.events") {
        const seq = streamedEvent(step.event).sequenceNumber;
        if (seq === cursor + 1) pulled += 1;
        else if (seq > cursor + 1) pulled += 2;
        cursor = Math.max(cursor, seq);
        if (!step.state.matches("streaming")) return;
        continue;
      }
      const on: RequestKind = create ? "create-stream" : "retrieve-stream";
      if (step.event.type === "stream.failed") {
        this.#addFault({ on, drop: { afterEvents: pulled } });
      } else if (step.event.type === "stream.stalled") {
        this.#addFault({ on, stall: { afterEvents: pulled } });
      }
      return;
    }
  }

  #opened(real: ResponseEventStream): ControlledStream {
    const stream = new ControlledStream(real);
    stream.onReal = (event) => {
      if (event.kind === "lifecycle" || event.kind === "terminal") {
        this.#responseId ??= event.response.id;
      }
    };
    this.#streams.push(stream);
    this.#stream = stream;
    return stream;
  }

  /**
   * Makes the emulator's response be in the state a step needs before its call goes out:
   * `pending` (still running), a terminal status, or `cancellable` (running, or cancelled
   * already: a second cancel answers the same). Waits for a response that is about to finish;
   * has another client cancel it when `cancelled` is needed. False when it cannot be done.
   */
  async #ensureStatus(wanted: "pending" | "cancellable" | ResponseStatus): Promise<boolean> {
    const id = this.#responseId;
    if (!id) return false;
    const statusNow = () => this.#emulator.getResponse(id)?.status;
    const matches = () => {
      const status = statusNow();
      if (status === undefined) return false;
      if (wanted === "pending") return !isTerminalStatus(status);
      if (wanted === "cancellable") return status === "cancelled" || !isTerminalStatus(status);
      return status === wanted;
    };
    if (matches()) return true;
    const status = statusNow();
    if (wanted === "pending" || wanted === "cancellable") return false;
    if (status === undefined || isTerminalStatus(status)) return false;
    if (wanted === "cancelled") {
      // Still running: another client's cancel lands first. The response keeps generating
      // while that cancel is on the wire: a `fast` one can complete before it arrives, and the
      // emulator then answers 400 "Cannot cancel a completed response" (the flaky failure of
      // issue 12 item 7). That is a response completed by now, not a failed step.
      try {
        await this.#side.cancel(id, new AbortController().signal);
      } catch (error) {
        if (classifyClientError(error).kind !== "already-finished") throw error;
      }
      return matches();
    }
    if (this.#pacing === "hold" || this.#pacing === "stuck") return false;
    const deadline = Date.now() + this.#stepTimeoutMs / 2;
    while (statusNow() !== undefined && !isTerminalStatus(statusNow() as ResponseStatus)) {
      if (Date.now() > deadline) break;
      await sleep(2);
    }
    return matches();
  }

  async #releaseRetrieve(call: PendingCall, event: RunModelEvent, label: string): Promise<void> {
    const output = (event as { output: { response: ResponseState } }).output;
    const wanted = output.response.status;
    const terminal = isTerminalStatus(wanted);
    const scripted = (why: string) => {
      this.#scripted.push(`${label} (${why}: the answer is scripted)`);
      return { response: { ...output.response, id: this.#responseId ?? MODEL_RESPONSE_ID } };
    };
    if (!(await this.#ensureStatus(terminal ? wanted : "pending"))) {
      const now = this.#responseId
        ? this.#emulator.getResponse(this.#responseId)?.status
        : undefined;
      call.release(async () => scripted(`the response is ${now ?? "gone"} by now`));
      return;
    }
    call.release(async (real) => {
      const result = (await real()) as { response: ResponseState; pollAfterMs?: number };
      const status = result.response.status;
      if (terminal ? status === wanted : !isTerminalStatus(status)) return result;
      return scripted(`the response turned ${status} meanwhile`);
    });
  }

  async #releaseCancel(call: PendingCall, event: RunModelEvent, label: string): Promise<void> {
    const output = (event as { output: ResponseState }).output;
    const scripted = (why: string) => {
      this.#scripted.push(`${label} (${why}: the answer is scripted)`);
      call.release(async () => ({ ...output, id: this.#responseId ?? MODEL_RESPONSE_ID }));
    };
    if (!isTerminalStatus(output.status))
      return scripted("a cancel never answers a running status");
    const withUsage = output.usage !== null;
    if (!(await this.#ensureStatus(withUsage ? "completed" : "cancellable"))) {
      const now = this.#responseId
        ? this.#emulator.getResponse(this.#responseId)?.status
        : undefined;
      return scripted(`the response is ${now ?? "gone"} by now`);
    }
    call.release(async (real) => {
      let response: ResponseState;
      try {
        response = (await real()) as ResponseState;
      } catch (error) {
        // The same race as in `#ensureStatus`: running when checked, completed by the time
        // the machine's cancel arrived. The step still gets the answer it names.
        const now = this.#responseId
          ? this.#emulator.getResponse(this.#responseId)?.status
          : undefined;
        if (classifyClientError(error).kind !== "already-finished" || now !== "completed") {
          throw error;
        }
        this.#scripted.push(`${label} (the response completed meanwhile: the answer is scripted)`);
        return { ...output, id: this.#responseId ?? MODEL_RESPONSE_ID };
      }
      if ((response.usage !== null) !== withUsage || response.status !== output.status) {
        this.#problems.push(`${label}: the real cancel answered ${response.status}`);
      }
      return response;
    });
  }
}

/**
 * How the path's response should generate: stuck in `queued`; `fast` (done in a few ms) when
 * no step must find it still running; `hold` (running for minutes; another client's cancel
 * ends it when a step needs it ended) when a step must find it running and none needs its
 * text or its completion; `window` (a delta every few tens of ms) otherwise, where a step that
 * comes too late to find it running is scripted.
 */
function choosePacing(path: RunTestPath): Pacing {
  if (path.config.stuckQueued) return "stuck";
  let pending = false;
  let completed = false;
  let maxSeq = -1;
  for (const step of path.steps) {
    const event = step.event;
    const status = outputStatus(event);
    if (event.type === "xstate.done.actor.poll" || event.type === "xstate.done.actor.confirm") {
      if (status && !isTerminalStatus(status as ResponseStatus)) pending = true;
      if (status === "completed") completed = true;
    }
    if (event.type === "xstate.done.actor.cancel") {
      if (status === "cancelled") pending = true;
      if (status === "completed") completed = true;
    }
    if (event.type === "stream.events") {
      const streamed = streamedEvent(event);
      maxSeq = Math.max(maxSeq, streamed.sequenceNumber);
      if (streamed.kind === "terminal") completed = true;
    }
  }
  if (!pending) return "fast";
  return maxSeq <= 4 && !completed ? "hold" : "window";
}
