/**
 * The run machine as a test model (`xstate/graph`): which events each state can meet, with
 * realistic payloads, so that a pure traversal of the REAL machine enumerates the paths a run
 * can take. Invoked actors never run during traversal; their completions are modelled as the
 * `xstate.done.actor.<id>` / `xstate.error.actor.<id>` events the machine would receive, with
 * `ResponseState` outputs and `ClientFailure` errors.
 *
 * The stream a run reads is modelled after the emulator's event schedule (see
 * {@link streamSchedule}), so that every `stream.events` of a path names the very event the
 * emulator sends at that sequence number, and a path can be replayed against it step by step
 * (`createPathRunner` in `./path-runner.ts`).
 */
import {
  type ActorLogic,
  type AnyStateNode,
  type AnyTransitionDefinition,
  initialTransition,
  type SnapshotFrom,
  transition,
} from "xstate";
import { getAdjacencyMap, TestModel, toDirectedGraph } from "xstate/graph";
import { type RunMachine, runMachine } from "../machines/run-machine.js";
import { topState } from "../machines/run-state.js";
import type { RunEvent, RunInput, RunMode, RunOptions } from "../machines/run-types.js";
import { readBatch } from "../machines/stream-batch.js";
import type { ClientFailure } from "../services/client-failure.js";
import {
  isTerminalStatus,
  type ResponseState,
  type ResponseStatus,
  type ResponseStreamEvent,
} from "../services/responses-client.js";

export type RunSnapshot = SnapshotFrom<RunMachine>;

type ModelLogic = ActorLogic<RunSnapshot, RunEvent, RunInput>;

/**
 * Snapshots of the model in which the overall deadline has fired. The deadline timer is
 * invoked once for the whole run and fires once: the machine's context does not record it,
 * so the model keeps it beside each snapshot.
 */
const deadlineFired = new WeakSet<object>();

/** Whether the overall deadline has fired on the way to this model snapshot. */
export function hasDeadlineFired(snapshot: RunSnapshot): boolean {
  return deadlineFired.has(snapshot);
}

/**
 * The machine as `xstate/graph` traverses it: the real `runMachine` (its own `transition`),
 * which also notes when the deadline fires.
 */
const logic: ModelLogic = Object.create(runMachine, {
  transition: {
    value: (snapshot: RunSnapshot, event: RunEvent, scope: unknown) => {
      const next = (runMachine.transition as (...args: unknown[]) => RunSnapshot)(
        snapshot,
        event,
        scope,
      );
      if (deadlineFired.has(snapshot) || event.type === ("xstate.done.actor.deadline" as string)) {
        deadlineFired.add(next);
      }
      return next;
    },
  },
});

/**
 * An event of the model: one the machine's own actors or its user send (`run.*`, `stream.*`,
 * `watchdog.queued`), or the completion of an invoked actor (`xstate.done.actor.<id>` with
 * `output`, `xstate.error.actor.<id>` with `error`).
 */
export type RunModelEvent =
  | RunEvent
  | { type: `xstate.done.actor.${string}`; output?: unknown }
  | { type: `xstate.error.actor.${string}`; error: ClientFailure }
  | { type: `xstate.after.${string}` };

/** The knobs of a model: which configuration of the run machine the paths explore. */
export interface RunModelConfig {
  /** Shown in reports and path descriptions. Default: derived from the other fields. */
  name?: string;
  mode: RunMode;
  /** Follow an existing response (as `rehydrateRun({ token })` does) instead of creating one. */
  attached?: boolean;
  /** Stream mode, attached: the sequence number the token carries (default: none, a replay). */
  attachedAfter?: number;
  /** Deltas of each response (the emulator's `outputTokens`); default 2. */
  deltas?: number;
  /**
   * The response never leaves `queued`, and any `queued` observation is past the queued
   * deadline (`queuedTimeoutMs: 0`): the stuck-queued watchdog's paths.
   */
  stuckQueued?: boolean;
  onStuckQueued?: "cancel" | "fail";
  /** An overall deadline, and what it does; default none. */
  deadline?: "cancel" | "fail" | null;
  /** `cancelGraceMs` (0: a cancel for the deadline that is not confirmed at once ends the run). */
  cancelGraceMs?: number;
  onUnknownCreate?: "fail" | "recreate";
  /** `retry.maxAttempts`; default 2 (one retry), which keeps the model small. */
  maxAttempts?: number;
  /** Default 2. */
  maxResumeAttempts?: number;
}

/** The configurations that, together, reach every state and transition of the run machine. */
export const DEFAULT_MODEL_CONFIGS: readonly RunModelConfig[] = [
  { name: "stream", mode: "stream", deadline: "cancel", cancelGraceMs: 0 },
  { name: "poll", mode: "poll", deadline: "fail", onUnknownCreate: "recreate" },
  { name: "stream-stuck", mode: "stream", stuckQueued: true, onStuckQueued: "cancel" },
  { name: "poll-stuck-fail", mode: "poll", stuckQueued: true, onStuckQueued: "fail" },
  { name: "poll-stuck-cancel", mode: "poll", stuckQueued: true, onStuckQueued: "cancel" },
  { name: "stream-stuck-fail", mode: "stream", stuckQueued: true, onStuckQueued: "fail" },
  { name: "stream-attached", mode: "stream", attached: true, attachedAfter: 2, deadline: "fail" },
  { name: "poll-attached", mode: "poll", attached: true, deadline: "cancel" },
];

/** The response id the model uses; a runner maps it to the emulator's real one. */
export const MODEL_RESPONSE_ID = "resp_model";

export function configName(config: RunModelConfig): string {
  if (config.name) return config.name;
  const parts: string[] = [config.mode];
  if (config.attached) parts.push("attached");
  if (config.stuckQueued) parts.push(`stuck-${config.onStuckQueued ?? "cancel"}`);
  if (config.deadline) parts.push(`deadline-${config.deadline}`);
  if (config.onUnknownCreate === "recreate") parts.push("recreate");
  return parts.join("-");
}

/** The run options of a model configuration (every delay tiny: a runner drives the timers). */
export function modelOptions(config: RunModelConfig): Partial<RunOptions> {
  return {
    pollIntervalMs: 1,
    retry: { maxAttempts: config.maxAttempts ?? 2, baseDelayMs: 1, maxDelayMs: 2, jitter: 0 },
    maxResumeAttempts: config.maxResumeAttempts ?? 2,
    firstEventTimeoutMs: 10_000,
    idleTimeoutMs: 10_000,
    queuedTimeoutMs: config.stuckQueued ? 0 : null,
    onStuckQueued: config.onStuckQueued ?? "cancel",
    deadlineMs: config.deadline ? 1 : null,
    ...(config.cancelGraceMs !== undefined ? { cancelGraceMs: config.cancelGraceMs } : {}),
    onDeadline: config.deadline ?? "cancel",
    onUnknownCreate: config.onUnknownCreate ?? "fail",
  };
}

/** The machine input of a model configuration. */
export function modelInput(config: RunModelConfig, responseId = MODEL_RESPONSE_ID): RunInput {
  const options = modelOptions(config);
  if (config.attached) {
    return {
      runId: "run_model",
      mode: config.mode,
      responseId,
      ...(config.mode === "stream" && config.attachedAfter !== undefined
        ? { sequenceNumber: config.attachedAfter }
        : {}),
      options,
    };
  }
  return {
    runId: "run_model",
    mode: config.mode,
    request: { model: "model-test", input: "model-based test" },
    options,
  };
}

/** The text of delta number `i` (1-based) in the model. */
const deltaText = (i: number) => ` w${i}`;

/** A response as the model's events carry it. */
export function modelResponse(
  status: ResponseStatus,
  extra: Partial<ResponseState> = {},
): ResponseState {
  const terminal = isTerminalStatus(status);
  return {
    id: MODEL_RESPONSE_ID,
    status,
    outputText: "",
    usage:
      terminal && status !== "cancelled"
        ? { inputTokens: 3, outputTokens: 2, totalTokens: 5 }
        : null,
    error: status === "failed" ? { code: "server_error", message: "failed" } : null,
    incompleteReason: null,
    createdAt: 0,
    ...extra,
  };
}

/**
 * The events the emulator sends for one background streamed response, by sequence number:
 * `response.created` and `response.queued` (both `queued`), then (unless stuck) `in_progress`,
 * the item and part openings, `deltas` text deltas, the three closings and `response.completed`.
 */
export function streamSchedule(deltas: number, stuckQueued = false): ResponseStreamEvent[] {
  const events: ResponseStreamEvent[] = [];
  const push = (make: (seq: number) => ResponseStreamEvent) => events.push(make(events.length));
  let text = "";
  push((seq) => ({ kind: "lifecycle", sequenceNumber: seq, response: modelResponse("queued") }));
  push((seq) => ({ kind: "lifecycle", sequenceNumber: seq, response: modelResponse("queued") }));
  if (stuckQueued) return events;
  push((seq) => ({
    kind: "lifecycle",
    sequenceNumber: seq,
    response: modelResponse("in_progress"),
  }));
  push((seq) => ({ kind: "other", sequenceNumber: seq, type: "response.output_item.added" }));
  push((seq) => ({ kind: "other", sequenceNumber: seq, type: "response.content_part.added" }));
  for (let i = 1; i <= deltas; i++) {
    text += deltaText(i);
    push((seq) => ({ kind: "delta", sequenceNumber: seq, text: deltaText(i) }));
  }
  push((seq) => ({ kind: "other", sequenceNumber: seq, type: "response.output_text.done" }));
  push((seq) => ({ kind: "other", sequenceNumber: seq, type: "response.content_part.done" }));
  push((seq) => ({ kind: "other", sequenceNumber: seq, type: "response.output_item.done" }));
  const final = modelResponse("completed", { outputText: text });
  push((seq) => ({ kind: "terminal", sequenceNumber: seq, response: final }));
  return events;
}

/** The failures the model's error events carry (one per class of the machine's guards). */
export const MODEL_FAILURES = {
  rateLimited: {
    kind: "rate-limited",
    message: "Rate limit reached",
    status: 429,
    retryAfterMs: 1,
  },
  server: { kind: "server", message: "The server had an error", status: 500 },
  rejected: { kind: "rejected", message: "Invalid request", status: 400 },
  notFound: { kind: "not-found", message: "Response not found", status: 404 },
  replayExpired: {
    kind: "replay-expired",
    message: "This response can no longer be streamed because it is more than 5 minutes old",
    status: 400,
  },
  alreadyFinished: {
    kind: "already-finished",
    message: "Cannot cancel a completed response.",
    status: 400,
  },
  connection: { kind: "connection", message: "terminated" },
} as const satisfies Record<string, ClientFailure>;

const done = (id: string, output?: unknown): RunModelEvent =>
  ({ type: `xstate.done.actor.${id}`, output }) as RunModelEvent;
const error = (id: string, failure: ClientFailure): RunModelEvent =>
  ({ type: `xstate.error.actor.${id}`, error: { ...failure } }) as RunModelEvent;
/** The `untilWake` delay of the state `stateId` (`run.polling.waiting`) running out. */
const wake = (stateId: string): RunModelEvent => ({
  type: `xstate.after.untilWake.${stateId}`,
});

/**
 * The events a run in `snapshot` can meet under `config`, with payloads. Only events that can
 * really happen there are offered: e.g. the deadline fires once, the stuck-queued watchdog only
 * while the response is `queued`, a stream event is the one the emulator sends next.
 */
export function modelEvents(config: RunModelConfig): (snapshot: RunSnapshot) => RunModelEvent[] {
  const schedule = streamSchedule(config.deltas ?? 2, config.stuckQueued === true);
  const stuck = config.stuckQueued === true;
  return (snapshot) => {
    if (snapshot.status !== "active") return [];
    const context = snapshot.context;
    const events: RunModelEvent[] = [];
    if (context.deadlineAt !== null && !deadlineFired.has(snapshot)) {
      events.push(done("deadline"));
    }
    const created = (status: ResponseStatus) => modelResponse(status);
    const is = (state: Parameters<RunSnapshot["matches"]>[0]) => snapshot.matches(state);

    if (is("idle")) {
      events.push({ type: "run.start" }, { type: "run.cancel" });
      // A run restored from an idle save stays idle: nothing to restart.
      return events;
    }
    if (is("started")) {
      events.push({ type: "run.cancel" }, { type: "run.restored" });
      const f = MODEL_FAILURES;
      if (is({ started: "creating" })) {
        events.push(done("create", created("queued")), done("create", created("completed")));
        events.push(error("create", f.rateLimited), error("create", f.server));
        events.push(error("create", f.rejected));
      } else if (is({ started: "creatingStream" })) {
        events.push(done("createStream", { response: created("queued"), sequenceNumber: 0 }));
        events.push(error("createStream", f.rateLimited), error("createStream", f.server));
        events.push(error("createStream", f.rejected));
      } else {
        events.push(wake("run.started.backoff"));
      }
      return events;
    }
    if (is("polling")) {
      events.push({ type: "run.cancel" }, { type: "run.restored" });
      if (is({ polling: "waiting" })) {
        events.push(wake("run.polling.waiting"));
      } else if (stuck) {
        events.push(done("poll", { response: created("queued") }));
        events.push(error("poll", MODEL_FAILURES.server));
      } else {
        events.push(done("poll", { response: created("in_progress") }));
        events.push(done("poll", { response: created("completed") }));
        events.push(error("poll", MODEL_FAILURES.notFound), error("poll", MODEL_FAILURES.server));
        events.push(error("poll", MODEL_FAILURES.rejected));
      }
      return events;
    }
    if (is("streaming")) {
      // Stuck in queued past its (zero) deadline: the watchdog fires as soon as the stream opens.
      if (stuck && context.status === "queued") return [...events, { type: "watchdog.queued" }];
      const cursor = context.sequenceNumber ?? -1;
      // Read against the cursor as the stream actor reads each batch it hands over.
      const batch = (event: ResponseStreamEvent): RunModelEvent => ({
        type: "stream.events",
        events: [event],
        reading: readBatch(context.sequenceNumber, [event]),
      });
      const next = schedule[cursor + 1];
      if (next) events.push(batch(next));
      const skipped = schedule[cursor + 2];
      if (skipped && skipped.kind !== "terminal") events.push(batch(skipped));
      const seen = schedule[cursor];
      if (seen) events.push(batch(seen));
      events.push(
        { type: "stream.closed" },
        { type: "stream.failed", failure: { ...MODEL_FAILURES.connection } },
        { type: "stream.stalled", reason: "stalled" },
        { type: "run.disconnect" },
        { type: "run.cancel" },
        { type: "run.restored" },
      );
      return events;
    }
    if (is("interrupted")) {
      events.push({ type: "run.cancel" }, { type: "run.restored" });
      if (is({ interrupted: "checking" })) {
        // The retrieve before a resume: still running, finished meanwhile, gone, or failed.
        events.push(done("check", { response: created(stuck ? "queued" : "in_progress") }));
        if (!stuck) events.push(done("check", { response: created("completed") }));
        events.push(error("check", MODEL_FAILURES.server), error("check", MODEL_FAILURES.notFound));
        events.push({ type: "run.disconnect" });
      } else if (is({ interrupted: "backoff" })) {
        events.push(wake("run.interrupted.backoff"), { type: "run.disconnect" });
      } else {
        events.push({ type: "run.resume" });
      }
      return events;
    }
    if (is("resumed")) {
      events.push({ type: "run.cancel" }, { type: "run.disconnect" }, { type: "run.restored" });
      events.push(done("resume"));
      const f = MODEL_FAILURES;
      events.push(error("resume", f.replayExpired), error("resume", f.notFound));
      events.push(error("resume", f.server), error("resume", f.rejected));
      return events;
    }
    if (is("cancelling")) {
      events.push({ type: "run.restored" });
      const f = MODEL_FAILURES;
      if (is({ cancelling: "requesting" })) {
        events.push(done("cancel", created("cancelled")));
        if (!stuck) {
          events.push(done("cancel", created("completed")));
          events.push(done("cancel", created("in_progress")));
        }
        events.push(error("cancel", f.alreadyFinished), error("cancel", f.notFound));
        events.push(error("cancel", f.server), error("cancel", f.rejected));
      } else if (is({ cancelling: "confirming" })) {
        events.push(done("confirm", { response: created("cancelled") }));
        events.push(done("confirm", { response: created(stuck ? "queued" : "in_progress") }));
        events.push(error("confirm", f.server), error("confirm", f.rejected));
      } else {
        events.push(wake("run.cancelling.backoff"));
      }
      return events;
    }
    return events;
  };
}

/**
 * The counters the guards read, capped where more makes no difference: `attempts` at
 * `retry.maxAttempts` (no retry is left from there on) and `resumeAttempts` at
 * `maxResumeAttempts` (the next interruption falls back to polling).
 */
export function cappedCounters(snapshot: RunSnapshot): {
  attempts: number;
  resumeAttempts: number;
} {
  const c = snapshot.context;
  return {
    attempts: Math.min(c.attempts, c.options.retry.maxAttempts),
    resumeAttempts: Math.min(c.resumeAttempts, c.options.maxResumeAttempts),
  };
}

/**
 * Serializes what decides a run's future: the state, the response's status, the cursor, the
 * counters the guards read (bounded by the configuration's limits, and capped), whether a
 * cancel was asked and by whom, and the outcome once done. Timestamps, text and totals are left
 * out, so traversal terminates.
 */
export function serializeRunSnapshot(snapshot: RunSnapshot): string {
  const c = snapshot.context;
  if (snapshot.status !== "active") {
    return JSON.stringify([snapshot.status, c.result?.outcome ?? null, c.result?.reason ?? null]);
  }
  const fired = deadlineFired.has(snapshot);
  const counters = cappedCounters(snapshot);
  // The cursor and the response's status matter only while a stream may be (re)opened; the
  // resume counter only until the run falls back to polling.
  const value = snapshot.value;
  const top = topState(value);
  const streamSide = top === "streaming" || top === "interrupted" || top === "resumed";
  return JSON.stringify([
    value,
    streamSide ? c.status : null,
    streamSide ? c.sequenceNumber : null,
    counters.attempts,
    streamSide ? counters.resumeAttempts : null,
    c.cancelRequested,
    c.responseId !== null,
    c.request !== null,
    // A provisional result (a cancel's reply kept while its usage is read back).
    c.result !== null,
    fired,
  ]);
}

/**
 * The test model of the run machine under one configuration.
 *
 * @example
 * ```ts
 * const model = runTestModel({ mode: "stream" });
 * for (const path of model.getShortestPaths()) console.log(path.description);
 * ```
 */
export function runTestModel(config: RunModelConfig) {
  return new TestModel(logic, {
    events: modelEvents(config) as (snapshot: RunSnapshot) => RunEvent[],
    serializeState: (snapshot) => serializeRunSnapshot(snapshot as RunSnapshot),
    input: modelInput(config),
    limit: 200_000,
  });
}

/** One step of a path: the event, then the state the machine is in after it. */
export interface RunPathStep {
  event: RunModelEvent;
  state: RunSnapshot;
  /** The machine's transitions this event takes (ids of `toDirectedGraph` edges). */
  edges: string[];
}

/** A path of the model, ready to be replayed against a system under test. */
export interface RunTestPath {
  config: RunModelConfig;
  kind: "shortest" | "transitions" | "simple";
  /** Events from the initial state (the first step's state is after its event). */
  steps: RunPathStep[];
  /** The state the path ends in. */
  state: RunSnapshot;
  description: string;
}

export interface RunTestPathOptions {
  /**
   * `shortest` (default): one shortest path to every distinct state of the model (a path that
   * is the prefix of another is dropped). `transitions`: a shortest path through every
   * transition the model can take (each path ends with a transition no earlier path took).
   * `simple`: bounded simple paths (no state twice).
   */
  kind?: "shortest" | "transitions" | "simple";
  /** Simple paths only: the longest path generated (default 12). */
  maxSteps?: number;
  /** Simple paths only: at most this many (default 200), picked across the whole tree. */
  maxPaths?: number;
  /** Keep only the paths ending in a state that passes this test (e.g. `s.status === "done"`). */
  toState?: (snapshot: RunSnapshot) => boolean;
}

/**
 * Paths through the run machine under a configuration: shortest paths to every state of the
 * model, shortest paths through every transition, or bounded simple paths (no state twice,
 * at most `maxSteps` steps: xstate's own simple-path enumeration is exhaustive and does not
 * finish on a machine of this size).
 *
 * @example
 * ```ts
 * const paths = runTestPaths({ mode: "poll" }, { kind: "transitions" });
 * for (const path of paths) console.log(path.description);
 * ```
 */
export function runTestPaths(
  config: RunModelConfig,
  options: RunTestPathOptions = {},
): RunTestPath[] {
  const kind = options.kind ?? "shortest";
  if (kind === "shortest") {
    const model = runTestModel(config);
    const paths = model.getShortestPaths(options.toState ? { toState: options.toState } : {});
    return paths.map((path) => {
      // alterPath shifts events: steps[i] is (event that led to state i, state i); drop xstate.init.
      const steps = path.steps
        .filter((step) => (step.event.type as string) !== "xstate.init")
        .map((step) => ({ event: step.event as RunModelEvent, state: step.state as RunSnapshot }));
      return toPath(config, "shortest", steps);
    });
  }
  if (kind === "transitions") return transitionPaths(config, options);
  return boundedSimplePaths(config, options);
}

interface ModelGraph {
  initialKey: string;
  adjacency: Record<
    string,
    {
      state: RunSnapshot;
      transitions: Record<string, { event: RunModelEvent; state: RunSnapshot }>;
    }
  >;
  /** Breadth-first predecessor of each state: the way a shortest path reaches it. */
  parent: Map<string, { from: string; event: RunModelEvent; state: RunSnapshot } | null>;
  order: string[];
}

function modelGraph(config: RunModelConfig): ModelGraph {
  const input = modelInput(config);
  const adjacency = getAdjacencyMap(logic, {
    events: modelEvents(config) as (snapshot: RunSnapshot) => RunEvent[],
    serializeState: (snapshot) => serializeRunSnapshot(snapshot as RunSnapshot),
    input,
    limit: 200_000,
  }) as unknown as ModelGraph["adjacency"];
  const initialKey = serializeRunSnapshot(initialSnapshot(config));
  const parent: ModelGraph["parent"] = new Map([[initialKey, null]]);
  const order = [initialKey];
  for (let i = 0; i < order.length; i++) {
    const key = order[i] as string;
    for (const t of Object.values(adjacency[key]?.transitions ?? {})) {
      const next = serializeRunSnapshot(t.state);
      if (parent.has(next)) continue;
      parent.set(next, { from: key, event: t.event, state: t.state });
      order.push(next);
    }
  }
  return { initialKey, adjacency, parent, order };
}

function stepsTo(graph: ModelGraph, key: string): { event: RunModelEvent; state: RunSnapshot }[] {
  const steps: { event: RunModelEvent; state: RunSnapshot }[] = [];
  for (let at = graph.parent.get(key); at; at = graph.parent.get(at.from)) {
    steps.unshift({ event: at.event, state: at.state });
  }
  return steps;
}

function transitionPaths(config: RunModelConfig, options: RunTestPathOptions): RunTestPath[] {
  const graph = modelGraph(config);
  const covered = new Set<string>();
  const paths: RunTestPath[] = [];
  for (const key of graph.order) {
    const entry = graph.adjacency[key];
    if (!entry) continue;
    for (const t of Object.values(entry.transitions)) {
      const edges = edgesOf(entry.state, t.event, t.state);
      if (edges.length === 0 || edges.every((edge) => covered.has(edge))) continue;
      const path = toPath(config, "transitions", [...stepsTo(graph, key), t]);
      if (options.toState && !options.toState(path.state)) continue;
      for (const step of path.steps) for (const edge of step.edges) covered.add(edge);
      paths.push(path);
    }
  }
  return paths;
}

function toPath(
  config: RunModelConfig,
  kind: RunTestPath["kind"],
  steps: { event: RunModelEvent; state: RunSnapshot }[],
): RunTestPath {
  const initial = initialSnapshot(config);
  let previous = initial;
  const withEdges = steps.map((step) => {
    const edges = edgesOf(previous, step.event, step.state);
    previous = step.state;
    return { ...step, edges };
  });
  return {
    config,
    kind,
    steps: withEdges,
    state: previous,
    description: `${configName(config)}: ${steps.map((s) => describeEvent(s.event)).join(" → ")}`,
  };
}

/**
 * The path of the model a description names (`stream: run.start → createStream done (queued) →
 * …`, as a report or a failing test prints it), followed step by step through the model's
 * graph: a path found once replays again whatever the machine gains elsewhere (a new
 * transition reorders the sampled simple paths, not the graph). Throws when a step names no
 * event of the state it is in.
 *
 * @example
 * ```ts
 * const path = pathNamed(config, "stream: run.start → createStream done (queued) → run.cancel");
 * await runner.run(path);
 * ```
 */
export function pathNamed(config: RunModelConfig, description: string): RunTestPath {
  const prefix = `${configName(config)}: `;
  if (!description.startsWith(prefix)) {
    throw new Error(`'${description}' is not a path of '${configName(config)}'`);
  }
  const { adjacency, initialKey } = modelGraph(config);
  const steps: { event: RunModelEvent; state: RunSnapshot }[] = [];
  let key = initialKey;
  for (const name of description.slice(prefix.length).split(" → ")) {
    const next = Object.values(adjacency[key]?.transitions ?? {}).find(
      (t) => describeEvent(t.event) === name,
    );
    if (!next)
      throw new Error(`step ${steps.length + 1} '${name}' is not an event of the model there`);
    steps.push({ event: next.event, state: next.state });
    key = serializeRunSnapshot(next.state);
  }
  return toPath(config, "simple", steps);
}

/** `poll done (in_progress)`, `create error (rate-limited)`, `stream.events [#3 delta]`… */
export function describeEvent(event: RunModelEvent): string {
  const doneMatch = /^xstate\.done\.actor\.(.+)$/.exec(event.type);
  if (doneMatch) {
    const output = (event as { output?: unknown }).output as
      | { status?: string; response?: { status?: string } }
      | undefined;
    const status = output?.status ?? output?.response?.status;
    return `${doneMatch[1]} done${status ? ` (${status})` : ""}`;
  }
  const errorMatch = /^xstate\.error\.actor\.(.+)$/.exec(event.type);
  if (errorMatch)
    return `${errorMatch[1]} error (${(event as { error: ClientFailure }).error.kind})`;
  const afterMatch = /^xstate\.after\.([^.]+)\.run\.(.+)$/.exec(event.type);
  if (afterMatch) return `${afterMatch[2]} ${afterMatch[1]}`;
  if (event.type === "stream.events") {
    const e = streamedEvent(event);
    return `stream.events [#${e.sequenceNumber} ${e.kind}]`;
  }
  return event.type;
}

function boundedSimplePaths(config: RunModelConfig, options: RunTestPathOptions): RunTestPath[] {
  const maxSteps = options.maxSteps ?? 12;
  const maxPaths = options.maxPaths ?? 200;
  const { adjacency, initialKey } = modelGraph(config);
  const found: { event: RunModelEvent; state: RunSnapshot }[][] = [];
  const onPath = new Set<string>([initialKey]);
  const steps: { event: RunModelEvent; state: RunSnapshot }[] = [];
  const limit = maxPaths * 200;
  // Every complete path (ending in a final state, a dead end, or at the bound) is a candidate;
  // every k-th is kept, so the chosen ones spread over the whole tree.
  const visit = (key: string) => {
    if (found.length >= limit) return;
    const entry = adjacency[key];
    const state = entry?.state;
    const nexts = Object.values(entry?.transitions ?? {}).filter(
      (t) => !onPath.has(serializeRunSnapshot(t.state)),
    );
    if (steps.length > 0 && (nexts.length === 0 || steps.length >= maxSteps)) {
      if (!options.toState || (state && options.toState(state))) found.push([...steps]);
      return;
    }
    for (const t of nexts) {
      const nextKey = serializeRunSnapshot(t.state);
      onPath.add(nextKey);
      steps.push({ event: t.event, state: t.state });
      visit(nextKey);
      steps.pop();
      onPath.delete(nextKey);
    }
  };
  visit(initialKey);
  const every = Math.max(1, Math.floor(found.length / maxPaths));
  return found
    .filter((_, i) => i % every === 0)
    .slice(0, maxPaths)
    .map((steps) => toPath(config, "simple", steps));
}

// ---------------------------------------------------------------------------------------------
// Coverage: states and transitions of `toDirectedGraph(machine)`.

/** The state node ids and transition (edge) ids of a machine's directed graph. */
export interface MachineGraph {
  states: string[];
  /** The edges of `toDirectedGraph` (every `on`, `onDone` and `onError` transition). */
  edges: string[];
  /** Eventless (`always`) transitions, which `toDirectedGraph` leaves out: `<state id>:always:<i>`. */
  eventless: string[];
  /** Describes an edge: `run.polling.fetching: xstate.done.actor.poll [isTerminal] → run.done`. */
  describe(edgeId: string): string;
  /** The edge ids of transitions (as taken by the machine or returned by `getTransitionData`). */
  edgeIdsOf(transitions: readonly AnyTransitionDefinition[]): string[];
}

const graphs = new WeakMap<object, MachineGraph>();

/**
 * The directed graph of a run machine (the bare `runMachine` or a `provide`d one: their edge
 * ids are the same), with a lookup from the machine's transition objects to edge ids.
 */
export function machineGraph(machine: RunMachine = runMachine): MachineGraph {
  const cached = graphs.get(machine);
  if (cached) return cached;
  const states: string[] = [];
  const edges: string[] = [];
  const eventless: string[] = [];
  const byTransition = new Map<AnyTransitionDefinition, string[]>();
  const labels = new Map<string, string>();
  const add = (id: string, transition: AnyTransitionDefinition, target: string, event: string) => {
    const list = byTransition.get(transition) ?? [];
    list.push(id);
    byTransition.set(transition, list);
    labels.set(id, `${transition.source.id}: ${event}${guardText(transition)} → ${target}`);
  };
  const walk = (node: ReturnType<typeof toDirectedGraph>) => {
    states.push(node.id);
    for (const edge of node.edges) {
      edges.push(edge.id);
      add(edge.id, edge.transition, (edge.target as AnyStateNode).id, edge.label.text);
    }
    const always = (node.stateNode.always ?? []) as AnyTransitionDefinition[];
    always.forEach((transition, i) => {
      const id = `${node.id}:always:${i}`;
      eventless.push(id);
      add(id, transition, transition.target?.map((t) => t.id).join(", ") ?? "(none)", "always");
    });
    node.children.forEach(walk);
  };
  walk(toDirectedGraph(machine));
  const graph: MachineGraph = {
    states,
    edges,
    eventless,
    describe: (id) => labels.get(id) ?? id,
    edgeIdsOf: (transitions) => transitions.flatMap((t) => byTransition.get(t) ?? []),
  };
  graphs.set(machine, graph);
  return graph;
}

function guardText(transition: AnyTransitionDefinition): string {
  const guard = transition.guard as unknown;
  if (guard === undefined) return "";
  if (typeof guard === "string") return ` [${guard}]`;
  if (typeof guard === "object" && guard !== null && "type" in guard) {
    return ` [${String((guard as { type: unknown }).type)}]`;
  }
  return " [and/inline]";
}

/**
 * The transitions an event takes from a snapshot of the bare `runMachine`: those the event
 * selects, and the eventless ones taken on the way into `next` (the state it leads to).
 */
export function edgesOf(snapshot: RunSnapshot, event: RunModelEvent, next?: RunSnapshot): string[] {
  const selected = runMachine.getTransitionData(snapshot, event as RunEvent);
  const taken: AnyTransitionDefinition[] = [...selected];
  if (next) {
    // An `always` transition of a state this event entered, whose target is where it ended.
    const entered: AnyStateNode[] = [];
    const enter = (node: AnyStateNode) => {
      entered.push(node);
      const initial = node.initial?.target?.[0];
      if (initial) enter(initial);
    };
    for (const t of selected) for (const target of t.target ?? []) enter(target);
    const ended = new Set(next._nodes);
    for (const node of entered) {
      if (ended.has(node)) continue;
      for (const t of (node.always ?? []) as AnyTransitionDefinition[]) {
        if ((t.target ?? []).every((target) => ended.has(target))) taken.push(t);
      }
    }
  }
  return machineGraph(runMachine).edgeIdsOf(taken);
}

/** The active state node ids of a snapshot (`run`, `run.polling`, `run.polling.waiting`). */
export function stateIdsOf(snapshot: { _nodes: readonly AnyStateNode[] }): string[] {
  return snapshot._nodes.map((node) => node.id);
}

/**
 * The exact snapshots along a path (after each step), recomputed from its events. A path's own
 * `steps[i].state` is the model's representative of that state: equal in everything the model
 * serializes, not in timestamps or totals.
 */
export function pathSnapshots(path: RunTestPath): RunSnapshot[] {
  let snapshot = initialSnapshot(path.config);
  return path.steps.map((step) => {
    snapshot = transition(runMachine, snapshot, step.event as RunEvent)[0] as RunSnapshot;
    return snapshot;
  });
}

/** The model's initial snapshot (pure: nothing is started). */
export function initialSnapshot(config: RunModelConfig): RunSnapshot {
  return initialTransition(runMachine, modelInput(config))[0] as RunSnapshot;
}

/**
 * The one event a model's `stream.events` step carries (the model reads a stream an event at a
 * time; a live stream hands over the events received together).
 */
export function streamedEvent(event: RunModelEvent): ResponseStreamEvent {
  const events = (event as { events?: readonly ResponseStreamEvent[] }).events;
  const only = events?.length === 1 ? events[0] : undefined;
  if (!only) throw new Error(`${event.type} does not carry exactly one stream event`);
  return only;
}
