/**
 * The one check of a saved run's XState snapshot, made before any actor is created from it.
 *
 * XState trusts what it restores: a state value that names no state throws asynchronously out
 * of the actor (and takes the process with it), a history entry that is not an array throws, a
 * child that is not an object throws, a context field of the wrong type sends `"abc"` to the
 * server or waits 31 years. So everything the restored actor will read is checked here, and a
 * bad field is an {@link InvalidSnapshotError} that names it
 * (`snapshot.context.sequenceNumber: must be a non-negative integer`).
 *
 * What can be derived from the machine is: the state tree (which values exist), which states
 * wait on `wakeAt`, which children a state may have, the actors a child may name and the
 * history states. Only the meaning of context fields is written here.
 */
import type { AnyStateMachine } from "xstate";
import { InvalidSnapshotError } from "../errors.js";
import {
  checkChoice,
  checkCount,
  checkCreateRequest,
  checkKnownKeys,
  checkPlainData,
  checkString,
  type Fail,
  isRecord,
  isValidResponseId,
  isValidRunId,
  MAX_EPOCH_MS,
  MAX_OPTION_MS,
  RESPONSE_ID_RULE,
  RUN_ID_RULE,
} from "../input-validation.js";
import { checkRunOptions } from "../machines/run-options.js";
import { RUN_STATES } from "../machines/run-state.js";
import { DEFAULT_RUN_OPTIONS, type RunOptions } from "../machines/run-types.js";
import { MAX_SERVER_WAIT_MS } from "../services/client-failure.js";
import type { PersistedRunSnapshot } from "./persisted-snapshot.js";

/** A `fail` that throws {@link InvalidSnapshotError} (`corrupt`) naming the field. */
export const failSnapshot: Fail = (path, problem) => {
  throw new InvalidSnapshotError("corrupt", `${path}: ${problem}`, path);
};

/** Slack on time bounds, for the milliseconds between computing a time and saving it. */
const TIME_SLACK_MS = 1_000;

/** Children kept across a restore (their input is absolute); the others are dropped. */
export const RESTARTABLE_CHILDREN: ReadonlySet<string> = new Set(["deadline"]);

/**
 * Top-level states a run is in before it has a response: the others follow a response and
 * cannot work without its id. (A new top-level state is taken to need one: refusing a saved
 * run is better than restoring one that throws.)
 */
const BEFORE_RESPONSE = new Set(["idle", "started"]);

const RESPONSE_STATUSES = [
  "queued",
  "in_progress",
  "completed",
  "failed",
  "cancelled",
  "incomplete",
] as const;
const OUTCOMES = ["completed", "failed", "cancelled", "incomplete", "gave-up"] as const;

/**
 * Words of baton's own (interruption and give-up reasons, cancel causes, failure kinds): their
 * lists grow with the machine and are only ever reported, so any short word of that shape is
 * read; what is checked is that it is a word.
 */
const WORD = /^[a-z][a-z-]{0,63}$/;

/** The part of a state node this module reads (XState's `StateNode`). */
interface StateNodeLike {
  id: string;
  key: string;
  type: "atomic" | "compound" | "parallel" | "final" | "history";
  states: Record<string, StateNodeLike>;
  invoke: ReadonlyArray<{ id: string }>;
  config: { after?: Record<string, unknown> };
}

/** What is derived once per machine. */
interface MachineFacts {
  root: StateNodeLike;
  ids: Set<string>;
  historyIds: Set<string>;
  actors: Set<string>;
}

const factsCache = new WeakMap<AnyStateMachine, MachineFacts>();

/**
 * What is known of the machine without loading it (a store reading a save): the top-level
 * states by name. The deeper checks (substates, history, children, timers) are made again
 * against the machine itself before a snapshot restores into an actor.
 */
const SHALLOW_FACTS: MachineFacts = {
  root: {
    id: "run",
    key: "run",
    type: "compound",
    states: Object.fromEntries(
      RUN_STATES.map((key) => [
        key,
        {
          id: `run.${key}`,
          key,
          type: key === "done" ? "final" : "compound",
          states: {},
          invoke: [],
          config: {},
        } satisfies StateNodeLike,
      ]),
    ),
    invoke: [],
    config: {},
  },
  ids: new Set(),
  historyIds: new Set(),
  actors: new Set(),
};

function factsOf(machine: AnyStateMachine): MachineFacts {
  let facts = factsCache.get(machine);
  if (facts) return facts;
  const root = machine.root as unknown as StateNodeLike;
  const ids = new Set<string>();
  const historyIds = new Set<string>();
  const walk = (node: StateNodeLike) => {
    ids.add(node.id);
    if (node.type === "history") historyIds.add(node.id);
    for (const child of Object.values(node.states ?? {})) walk(child);
  };
  walk(root);
  facts = {
    root,
    ids,
    historyIds,
    actors: new Set(Object.keys(machine.implementations.actors ?? {})),
  };
  factsCache.set(machine, facts);
  return facts;
}

/**
 * Checks a state value against the machine's state tree: the canonical form XState saves
 * (an atomic or final child by name, a compound child as `{ name: … }`, a parallel state with
 * every region). Returns the state nodes it names, from the top down.
 */
function checkStateValue(
  node: StateNodeLike,
  value: unknown,
  path: string,
  fail: Fail,
  into: StateNodeLike[],
): void {
  const children = Object.entries(node.states).filter(([, child]) => child.type !== "history");
  const names = children.map(([key]) => key);
  const where = node.id;
  if (node.type === "parallel") {
    if (!isRecord(value)) fail(path, `must be an object with the regions of '${where}'`);
    checkKnownKeys(value, names, path, fail);
    for (const [key, child] of children) {
      if (!(key in value)) fail(`${path}.${key}`, `is missing (a region of '${where}')`);
      into.push(child);
      checkStateValue(child, value[key], `${path}.${key}`, fail, into);
    }
    return;
  }
  let key: string;
  let inner: unknown;
  if (typeof value === "string") {
    key = value;
  } else if (isRecord(value) && Object.keys(value).length === 1) {
    key = Object.keys(value)[0] as string;
    inner = value[key];
  } else {
    fail(path, `must name one state of '${where}' (${names.join(", ")})`);
  }
  const child = node.states[key];
  if (!child || child.type === "history" || !Object.hasOwn(node.states, key)) {
    fail(path, `'${key}' is not a state of '${where}' (${names.join(", ")})`);
  }
  into.push(child);
  const nested = child.type === "compound" || child.type === "parallel";
  if (nested && inner === undefined) {
    fail(path, `'${key}' has substates: must be { "${key}": <one of them> }`);
  }
  if (!nested && inner !== undefined) fail(`${path}.${key}`, `'${key}' has no substates`);
  if (nested) checkStateValue(child, inner, `${path}.${key}`, fail, into);
}

/**
 * The shallow form of {@link checkStateValue}, without the machine: the value names one
 * top-level state (by name, or as `{ name: <anything plain> }`).
 */
function checkTopState(
  root: StateNodeLike,
  value: unknown,
  path: string,
  fail: Fail,
  into: StateNodeLike[],
): void {
  const names = Object.keys(root.states);
  const key =
    typeof value === "string"
      ? value
      : isRecord(value) && Object.keys(value).length === 1
        ? (Object.keys(value)[0] as string)
        : fail(path, `must name one state of 'run' (${names.join(", ")})`);
  const child = Object.hasOwn(root.states, key) ? root.states[key] : undefined;
  if (!child) fail(path, `'${key}' is not a state of 'run' (${names.join(", ")})`);
  if (isRecord(value)) checkPlainData(value, path, fail);
  into.push(child);
}

/** An epoch-ms time: finite, from 0 to `max`. */
function checkTime(value: unknown, path: string, fail: Fail, max: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    fail(path, "must be a time in epoch ms");
  }
  const bound = Math.min(max, MAX_EPOCH_MS);
  if (value > bound) fail(path, `is too far in the future (after ${Math.round(bound)})`);
}

function checkWord(value: unknown, path: string, fail: Fail): void {
  if (typeof value !== "string" || !WORD.test(value)) fail(path, "must be a lowercase word");
}

function checkFailure(value: unknown, path: string, fail: Fail): void {
  if (!isRecord(value)) fail(path, "must be an object");
  checkWord(value.kind, `${path}.kind`, fail);
  checkString(value.message, `${path}.message`, fail);
  const status = value.status;
  if (status !== undefined) {
    if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
      fail(`${path}.status`, "must be an HTTP status");
    }
  }
  if (value.code !== undefined && value.code !== null)
    checkString(value.code, `${path}.code`, fail);
  if (value.requestId !== undefined) checkString(value.requestId, `${path}.requestId`, fail);
  if (value.retryAfterMs !== undefined) {
    const ms = value.retryAfterMs;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      fail(`${path}.retryAfterMs`, "must be a non-negative number");
    }
  }
  if (value.shouldRetry !== undefined && typeof value.shouldRetry !== "boolean") {
    fail(`${path}.shouldRetry`, "must be a boolean");
  }
  checkPlainData(value, path, fail);
}

function checkResult(value: unknown, path: string, fail: Fail): void {
  if (!isRecord(value)) fail(path, "must be an object");
  checkChoice(value.outcome, OUTCOMES, `${path}.outcome`, fail);
  if (!isValidRunId(value.runId)) fail(`${path}.runId`, RUN_ID_RULE);
  if (value.responseId !== undefined && !isValidResponseId(value.responseId)) {
    fail(`${path}.responseId`, RESPONSE_ID_RULE);
  }
  checkString(value.text, `${path}.text`, fail);
  const usage = value.usage;
  if (usage !== null) {
    if (!isRecord(usage)) fail(`${path}.usage`, "must be null or an object");
    for (const key of ["inputTokens", "outputTokens", "totalTokens"]) {
      checkCount(usage[key], `${path}.usage.${key}`, fail);
    }
  }
  const error = value.error;
  if (error !== null) {
    if (!isRecord(error)) fail(`${path}.error`, "must be null or an object");
    if (error.code !== null) checkString(error.code, `${path}.error.code`, fail);
    checkString(error.message, `${path}.error.message`, fail);
  }
  if (value.incompleteReason !== null) {
    checkString(value.incompleteReason, `${path}.incompleteReason`, fail);
  }
  if (value.cancelledBy !== undefined) checkWord(value.cancelledBy, `${path}.cancelledBy`, fail);
  if (value.reason !== undefined) checkWord(value.reason, `${path}.reason`, fail);
  if (value.failure !== undefined) checkFailure(value.failure, `${path}.failure`, fail);
  checkPlainData(value, path, fail);
}

/** Options with the defaults of missing fields filled in (what the machine reads). */
function withDefaults(options: Record<string, unknown>): RunOptions {
  return {
    ...DEFAULT_RUN_OPTIONS,
    ...options,
    retry: { ...DEFAULT_RUN_OPTIONS.retry, ...(options.retry as object | undefined) },
  } as RunOptions;
}

/** Where a check of a snapshot reads its reference time and run id from. */
export interface SnapshotCheckOptions {
  /** The path of the snapshot in messages (default `snapshot`). */
  path?: string;
  /** Epoch ms of the save: times are bounded from it (default: now). */
  savedAt?: number;
  /** The run id the snapshot must hold (the envelope's, the file's). */
  runId?: string;
}

/**
 * Checks a persisted run snapshot against the machine it will be restored into, and returns
 * it as baton stores it: options with their defaults filled in, and no `output` (XState's copy
 * of `context.result`, which older envelopes hold too; `restoreRunActor` rebuilds it). Throws an
 * {@link InvalidSnapshotError} naming the first bad field.
 *
 * With `machine: null` (a store reading a save, which does not load the machine) the state
 * value is checked by its top-level state only, and history and children by their shape: the
 * host checks the snapshot against the machine again before restoring it.
 *
 * @example
 * ```ts
 * const snapshot = validateRunSnapshot(runMachine, JSON.parse(text).snapshot);
 * ```
 */
export function validateRunSnapshot(
  machine: AnyStateMachine | null,
  data: unknown,
  options: SnapshotCheckOptions = {},
): PersistedRunSnapshot {
  const fail: Fail = failSnapshot;
  const path = options.path ?? "snapshot";
  const facts = machine ? factsOf(machine) : SHALLOW_FACTS;
  const shallow = machine === null;
  const reference = options.savedAt ?? Date.now();
  if (!isRecord(data)) fail(path, "must be an object");
  checkKnownKeys(
    data,
    ["status", "value", "historyValue", "context", "children", "output", "error"],
    path,
    fail,
  );

  // Status: "active" or "done". An "error" or "stopped" actor does not restore into a run.
  checkChoice(data.status, ["active", "done"], `${path}.status`, fail);
  const done = data.status === "done";
  if (data.error !== undefined) fail(`${path}.error`, "a run saved with an error cannot restore");
  if (!done && data.output !== undefined) fail(`${path}.output`, "only a done run has an output");

  // Value: against the machine's state tree.
  const nodes: StateNodeLike[] = [];
  if (shallow) checkTopState(facts.root, data.value, `${path}.value`, fail, nodes);
  else checkStateValue(facts.root, data.value, `${path}.value`, fail, nodes);
  const top = nodes[0] as StateNodeLike;
  if (done !== (top.type === "final")) {
    fail(
      `${path}.status`,
      done ? `is "done" but the state is '${top.key}'` : `the state '${top.key}' is final`,
    );
  }

  // History: only the machine's history states, each remembering states that exist.
  const history = data.historyValue;
  if (!isRecord(history)) fail(`${path}.historyValue`, "must be an object");
  for (const [id, remembered] of Object.entries(history)) {
    const at = `${path}.historyValue.${id}`;
    if (!shallow && !facts.historyIds.has(id)) fail(at, "is not a history state of the machine");
    if (!Array.isArray(remembered)) fail(at, "must be an array of states");
    remembered.forEach((entry, i) => {
      if (
        !isRecord(entry) ||
        typeof entry.id !== "string" ||
        (!shallow && !facts.ids.has(entry.id))
      ) {
        fail(`${at}[${i}]`, "must be { id } of a state of the machine");
      }
    });
  }

  // Context: every field of the machine's, of its type and in range.
  const context = data.context;
  const c = `${path}.context`;
  if (!isRecord(context)) fail(c, "must be an object");
  // JSON data throughout: XState revives any `{ xstate$$type }` object in context as an actor.
  // A field neither this module nor the machine's initial context names is kept as data: a
  // field added on another branch (set only in some runs) must not make every save unreadable.
  checkPlainData(context, c, fail);
  const required = (key: string) => {
    if (!(key in context) || context[key] === undefined) fail(`${c}.${key}`, "is missing");
    return context[key];
  };

  const runId = required("runId");
  if (!isValidRunId(runId)) fail(`${c}.runId`, RUN_ID_RULE);
  if (options.runId !== undefined && runId !== options.runId) {
    fail(`${c}.runId`, `is '${runId}', not the run's id '${options.runId}'`);
  }
  checkChoice(required("mode"), ["poll", "stream"], `${c}.mode`, fail);
  const rawOptions = required("options");
  checkRunOptions(rawOptions, `${c}.options`, fail);
  const runOptions = withDefaults(rawOptions as Record<string, unknown>);

  const request = required("request");
  if (request !== null) checkCreateRequest(request, `${c}.request`, fail);
  const responseId = required("responseId");
  if (responseId !== null && !isValidResponseId(responseId)) {
    fail(`${c}.responseId`, RESPONSE_ID_RULE);
  }
  if (responseId === null && !done && !BEFORE_RESPONSE.has(top.key)) {
    fail(`${c}.responseId`, `is missing: state '${top.key}' follows a response`);
  }
  if (responseId === null && request === null && !done) {
    fail(`${c}.request`, "is missing: a run with no response id must have its create request");
  }
  // A run restored in `started` may create again (`onUnknownCreate: "recreate"`): with what?
  if (top.key === "started" && request === null) {
    fail(`${c}.request`, "is missing: state 'started' makes the create call");
  }

  for (const key of ["sequenceNumber", "deliveredChars"]) {
    const value = required(key);
    if (value !== null) checkCount(value, `${c}.${key}`, fail);
  }
  const status = required("status");
  if (status !== null) checkChoice(status, RESPONSE_STATUSES, `${c}.status`, fail);

  const deadlineAt = required("deadlineAt");
  if (deadlineAt !== null) {
    checkTime(
      deadlineAt,
      `${c}.deadlineAt`,
      fail,
      reference + (runOptions.deadlineMs ?? MAX_OPTION_MS) + TIME_SLACK_MS,
    );
  }
  const queuedDeadlineAt = required("queuedDeadlineAt");
  if (queuedDeadlineAt !== null) {
    checkTime(
      queuedDeadlineAt,
      `${c}.queuedDeadlineAt`,
      fail,
      reference + (runOptions.queuedTimeoutMs ?? MAX_OPTION_MS) + TIME_SLACK_MS,
    );
  }
  // No wait the machine sets is longer than its longest interval or a server's clamped hint.
  const longestWait = Math.max(
    runOptions.pollIntervalMs,
    runOptions.retry.maxDelayMs,
    MAX_SERVER_WAIT_MS,
  );
  const wakeAt = required("wakeAt");
  if (wakeAt !== null) {
    checkTime(wakeAt, `${c}.wakeAt`, fail, reference + longestWait + TIME_SLACK_MS);
  }
  // A state that waits until `wakeAt` would otherwise wait Node's longest timer (24.8 days).
  const waiting = nodes.find((node) => node.config.after && "untilWake" in node.config.after);
  if (waiting && wakeAt === null) {
    fail(`${c}.wakeAt`, `is missing: state '${waiting.id}' waits until it`);
  }
  for (const key of ["attempts", "resumeAttempts", "resumes", "creates"]) {
    checkCount(required(key), `${c}.${key}`, fail);
  }
  const interruption = required("interruption");
  if (interruption !== null) checkWord(interruption, `${c}.interruption`, fail);
  const lastFailure = required("lastFailure");
  if (lastFailure !== null) checkFailure(lastFailure, `${c}.lastFailure`, fail);
  const cancelRequested = required("cancelRequested");
  if (cancelRequested !== null) checkWord(cancelRequested, `${c}.cancelRequested`, fail);
  const result = required("result");
  if (result !== null) checkResult(result, `${c}.result`, fail);
  if (done && result === null) fail(`${c}.result`, "is missing: a done run holds its result");
  // Children: objects naming a registered actor, each one an invoke of a state the value names
  // or a child kept across restores. The deadline's input must be the context's deadline.
  const children = data.children;
  if (!isRecord(children)) fail(`${path}.children`, "must be an object");
  const invoked = new Set(nodes.flatMap((node) => node.invoke.map((invoke) => invoke.id)));
  for (const [id, child] of Object.entries(children)) {
    const at = `${path}.children.${id}`;
    // A done run's children are not restored, whichever state they were invoked in.
    if (!shallow && !done && !invoked.has(id) && !RESTARTABLE_CHILDREN.has(id)) {
      fail(at, "is not a child the state can have");
    }
    if (!isRecord(child)) fail(at, "must be an object");
    checkKnownKeys(child, ["snapshot", "src", "systemId", "syncSnapshot"], at, fail);
    if (typeof child.src !== "string" || (!shallow && !facts.actors.has(child.src))) {
      fail(`${at}.src`, "must name an actor of the machine");
    }
    if (!isRecord(child.snapshot)) fail(`${at}.snapshot`, "must be an object");
    if (child.syncSnapshot !== undefined && typeof child.syncSnapshot !== "boolean") {
      fail(`${at}.syncSnapshot`, "must be a boolean");
    }
    if (child.systemId !== undefined) checkString(child.systemId, `${at}.systemId`, fail);
    // A done run's children are stopped and are not restored: only their shape is checked.
    if (RESTARTABLE_CHILDREN.has(id) && !done) {
      // A spawned child stays in `children` once it is done: a deadline that already fired.
      const snapshot = child.snapshot;
      checkChoice(snapshot.status, ["active", "done"], `${at}.snapshot.status`, fail);
      checkKnownKeys(snapshot, ["status", "input", "output", "error"], `${at}.snapshot`, fail);
      if (snapshot.error !== undefined) fail(`${at}.snapshot.error`, "a deadline does not fail");
      if (snapshot.status === "active") {
        const input = snapshot.input;
        if (!isRecord(input) || input.until !== deadlineAt || deadlineAt === null) {
          fail(`${at}.snapshot.input.until`, "must be the context's deadlineAt");
        }
        if (snapshot.output !== undefined)
          fail(`${at}.snapshot.output`, "a running deadline has none");
      }
    }
  }

  // XState's output is the machine's `output` of `context.result`: kept once, in context.
  const { output: _output, ...rest } = data;
  return {
    ...rest,
    status: data.status as string,
    value: data.value,
    context: { ...context, options: runOptions } as unknown as PersistedRunSnapshot["context"],
    children: children as Record<string, unknown>,
  };
}
