/**
 * Randomized fault schedules for runs against the emulator: what a schedule is, how fast-check
 * draws one, how it is carried out (emulator fault rules queued up front; crashes, cancels and
 * clock jumps triggered by the consumer's delta count), and the invariants checked on the
 * outcome (through the test kit's `assertRunInvariants`).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import fc from "fast-check";
import { createManualClock, type FaultRule, startEmulator } from "../../src/emulator/index.js";
import type { RequestKind } from "../../src/emulator/types.js";
import {
  FileRunStore,
  type PersistedRun,
  type Run,
  type RunDelta,
  type RunOptions,
  type RunOutcome,
  type RunResult,
  type RunStore,
  rehydrateRun,
  startRun,
} from "../../src/index.js";
import {
  assertRunInvariants,
  emulatorClient,
  RunInvariantError,
  recordingStore,
} from "../../src/testing/index.js";

type SseKind = "create-stream" | "retrieve-stream";

/** One fault of a schedule. Request faults are emulator rules; the rest are actions. */
export type Fault =
  | { kind: "drop"; on: SseKind; afterEvents: number }
  | { kind: "stall"; on: SseKind; afterEvents: number }
  | { kind: "rate-limit"; on: RequestKind; retryAfterMs?: number; retryAfter?: number }
  | { kind: "server-error"; on: RequestKind; code: 500 | 502 | 503; afterHandling: boolean }
  | { kind: "poll-reset"; afterHandling: boolean }
  | { kind: "stuck-queued" }
  | { kind: "crash"; atDelta: number; via: "store" | "to-persisted" | "child" }
  | { kind: "cancel"; atDelta: number }
  | { kind: "replay-expired"; atDelta: number }
  | { kind: "response-expired"; atDelta: number };

export type FaultKind = Fault["kind"];

export interface Schedule {
  mode: "stream" | "poll";
  /** Emulator seed and input: what text the response has. */
  seed: number;
  outputTokens: number;
  tokenDelayMs: number;
  queuedMs: number;
  /** How the consumer gets deltas (`to-persisted` crashes need `immediate`). */
  delivery: "after-save" | "immediate";
  faults: Fault[];
}

/** Run options of every schedule: fast retries, short watchdogs, a deadline. */
export const SCHEDULE_OPTIONS: Partial<RunOptions> = {
  pollIntervalMs: 5,
  retry: { maxAttempts: 8, baseDelayMs: 2, maxDelayMs: 20, jitter: 0 },
  firstEventTimeoutMs: 150,
  idleTimeoutMs: 150,
  queuedTimeoutMs: 150,
  deadlineMs: 15_000,
};

const ACTIONS: readonly FaultKind[] = ["crash", "cancel", "replay-expired", "response-expired"];

/**
 * A schedule: a mode, a response, and up to four faults. `childProcessWeight` sets how often a
 * crash is carried out by killing a child process (0: never).
 */
export function scheduleArbitrary(childProcessWeight = 1): fc.Arbitrary<Schedule> {
  return fc
    .record({
      mode: fc.constantFrom<"stream" | "poll">("stream", "stream", "poll"),
      seed: fc.integer({ min: 1, max: 1_000_000 }),
      outputTokens: fc.integer({ min: 4, max: 30 }),
      tokenDelayMs: fc.integer({ min: 0, max: 2 }),
      queuedMs: fc.integer({ min: 0, max: 5 }),
      immediate: fc.boolean(),
    })
    .chain((base) => {
      const kinds: RequestKind[] =
        base.mode === "stream"
          ? ["create-stream", "retrieve-stream", "retrieve", "cancel"]
          : ["create", "retrieve", "cancel"];
      const sse = fc.constantFrom<SseKind>("create-stream", "retrieve-stream");
      const at = fc.integer({
        min: 1,
        max: Math.max(1, base.mode === "stream" ? base.outputTokens : 3),
      });
      const crashVia = fc.oneof(
        { weight: 6, arbitrary: fc.constant("store" as const) },
        { weight: base.immediate ? 4 : 0, arbitrary: fc.constant("to-persisted" as const) },
        { weight: childProcessWeight, arbitrary: fc.constant("child" as const) },
      );
      const streamOnly = base.mode === "stream" ? 1 : 0;
      const fault: fc.Arbitrary<Fault> = fc.oneof(
        {
          weight: 4 * streamOnly,
          arbitrary: fc.record({
            kind: fc.constant("drop" as const),
            on: sse,
            afterEvents: fc.integer({ min: 0, max: 30 }),
          }),
        },
        {
          weight: 2 * streamOnly,
          arbitrary: fc.record({
            kind: fc.constant("stall" as const),
            on: sse,
            afterEvents: fc.integer({ min: 0, max: 30 }),
          }),
        },
        {
          weight: 3,
          arbitrary: fc.oneof(
            fc.record({
              kind: fc.constant("rate-limit" as const),
              on: fc.constantFrom(...kinds),
              retryAfterMs: fc.integer({ min: 1, max: 30 }),
            }),
            fc.record({
              kind: fc.constant("rate-limit" as const),
              on: fc.constantFrom(...kinds),
              retryAfter: fc.constant(0.02),
            }),
          ),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant("server-error" as const),
            on: fc.constantFrom(...kinds),
            code: fc.constantFrom<500 | 502 | 503>(500, 502, 503),
            afterHandling: fc.boolean(),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant("poll-reset" as const),
            afterHandling: fc.boolean(),
          }),
        },
        { weight: 1, arbitrary: fc.constant({ kind: "stuck-queued" as const }) },
        {
          weight: 3,
          arbitrary: fc.record({ kind: fc.constant("crash" as const), atDelta: at, via: crashVia }),
        },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant("cancel" as const), atDelta: at }) },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant("replay-expired" as const), atDelta: at }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant("response-expired" as const), atDelta: at }),
        },
      );
      return fc.array(fault, { maxLength: 4 }).map((faults) => ({
        mode: base.mode,
        seed: base.seed,
        outputTokens: base.outputTokens,
        tokenDelayMs: base.tokenDelayMs,
        queuedMs: base.queuedMs,
        delivery: base.immediate ? ("immediate" as const) : ("after-save" as const),
        // A child process can only be where the run starts: at most one such crash, the first.
        faults: faults.filter(
          (f, i) =>
            !(f.kind === "crash" && f.via === "child") ||
            faults.findIndex((g) => ACTIONS.includes(g.kind)) === i,
        ),
      }));
    });
}

/** What carrying out a schedule gave. */
export interface ScheduleReport {
  result: RunResult | undefined;
  /** Actions carried out (an action whose delta count never came is not). */
  executed: Fault[];
  /** Fault kinds whose emulator rule fired or whose action was carried out (crashes by way). */
  fired: string[];
  /** Chars lost by a child process killed between a save and its delivery. */
  lostChars: number;
  ms: number;
  log: string[];
}

interface Kept {
  deltas: RunDelta[];
  chars: number;
  /**
   * Text a child process lost when killed between writing a save and handing its deltas to
   * the consumer (the known limitation in fault-schedules.test.ts): where, and which chars.
   */
  gaps: { at: number; from: number; to: number }[];
}

/** Runs one schedule and checks the invariants; throws a readable error on a violation. */
export async function runSchedule(schedule: Schedule): Promise<ScheduleReport> {
  const started = Date.now();
  const log: string[] = [];
  const clock = createManualClock(Date.now());
  const rules = requestRules(schedule);
  const emulator = await startEmulator({
    clock,
    seed: schedule.seed,
    outputTokens: schedule.outputTokens,
    tokenDelayMs: schedule.tokenDelayMs,
    queuedMs: schedule.queuedMs,
    faults: rules.map((r) => r.rule),
  });
  const client = emulatorClient(emulator);
  const saves: PersistedRun[] = [];
  const directory = await mkdtemp(join(tmpdir(), "baton-schedule-"));
  const actions = schedule.faults
    .filter((f): f is Extract<Fault, { atDelta: number }> => "atDelta" in f)
    .sort((a, b) => a.atDelta - b.atDelta);
  const executed: Fault[] = [];
  const kept: Kept = { deltas: [], chars: 0, gaps: [] };
  let current: RunDelta[] = [];
  let received = 0;
  let wake: (() => void) | undefined;
  const host = {
    store: recordingStore(undefined, saves) as RunStore,
    delivery: schedule.delivery,
    checkpoint: { everyEvents: 3, everyMs: 10 },
  };
  const attach = (run: Run) => {
    run.on("delta", ({ type: _type, ...delta }) => {
      current.push(delta);
      received++;
      wake?.();
    });
    run.result().then(
      () => wake?.(),
      () => wake?.(),
    );
  };
  /** Keeps what the consumer got and the save covers; drops the rest (it comes again). */
  const keep = (savedChars: number | null, what: string, window = false) => {
    let chars = kept.chars;
    for (const delta of current) {
      if (savedChars !== null && chars + delta.text.length > savedChars) break;
      kept.deltas.push(delta);
      chars += delta.text.length;
    }
    // Killed after a save was written, before (all) its deltas were printed: the consumer has
    // at least what the save before it covered (its deltas were printed before the next save
    // was written). Counted, and the lost part filled in from the final text.
    const before = Math.max(
      0,
      ...saves
        .map((save) => save.snapshot.context.deliveredChars ?? 0)
        .filter((c) => savedChars !== null && c < savedChars),
    );
    if (window && savedChars !== null && chars < savedChars && chars >= before) {
      kept.gaps.push({ at: kept.deltas.length, from: chars, to: savedChars });
      log.push(`a kill between save and delivery lost chars ${chars}-${savedChars}`);
      chars = savedChars;
    }
    if (savedChars !== null && chars !== savedChars) {
      log.push(
        `saves (state/chars): ${saves.map((x) => `${x.state}/${x.snapshot.context.deliveredChars}`).join(" ")}`,
      );
      throw new RunInvariantError([
        `${what}: the consumer kept ${chars} chars but the save used to rehydrate covers ${savedChars}: ${chars < savedChars ? "text lost" : "a save cuts a delta"}`,
      ]);
    }
    kept.chars = chars;
    current = [];
  };

  let run: Run;
  let result: RunResult | undefined;
  try {
    const first = actions[0];
    if (first?.kind === "crash" && first.via === "child") {
      // The run starts in a child process, killed hard once it printed `atDelta` deltas.
      host.store = recordingStore(new FileRunStore(directory), saves);
      const runId = await startInChild(
        schedule,
        emulator.url,
        directory,
        first.atDelta,
        current,
        log,
        saves,
      );
      received = current.length;
      executed.push(first);
      actions.shift();
      const saved = await host.store.load(runId);
      if (!saved) throw new RunInvariantError(["child crash: nothing was saved"]);
      keep(saved.snapshot.context.deliveredChars, "child crash", true);
      run = await rehydrateRun({ client, ...host }, { persisted: saved });
      attach(run);
    } else {
      run = startRun({
        client,
        model: "o3",
        input: `schedule ${schedule.seed}`,
        stream: schedule.mode === "stream",
        options: SCHEDULE_OPTIONS,
        ...host,
      });
      attach(run);
    }

    for (const action of actions) {
      // Wait for the consumer's delta count, or the end of the run.
      let done = false;
      run.result().then(
        () => {
          done = true;
        },
        () => {
          done = true;
        },
      );
      while (received < action.atDelta && !done) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
        wake = undefined;
      }
      if (done || run.state === "done") break;
      executed.push(action);
      log.push(`${action.kind} at delta ${received} in state ${run.state}`);
      switch (action.kind) {
        case "cancel":
          void run.cancel().catch(() => {});
          break;
        case "replay-expired":
        case "response-expired":
          run.disconnect();
          clock.advance(action.kind === "replay-expired" ? 6 * 60_000 : 11 * 60_000);
          run.resume();
          break;
        case "crash": {
          let persisted: PersistedRun | undefined;
          if (action.via === "to-persisted") {
            persisted = JSON.parse(JSON.stringify(run.toPersisted())) as PersistedRun;
            run.actor.stop();
          } else {
            run.actor.stop(); // the process dies: the store holds what it holds
            await run.flush();
            persisted = await host.store.load(run.id);
          }
          if (!persisted) throw new RunInvariantError(["crash: nothing was saved"]);
          keep(persisted.snapshot.context.deliveredChars, `crash (${action.via})`);
          run = await rehydrateRun({ client, ...host }, { persisted });
          attach(run);
          break;
        }
      }
    }
    result = await withTimeout(
      run.result(),
      25_000,
      () => `the run never ended (state ${run.state})`,
    );
    keep(null, "end");
    for (const gap of [...kept.gaps].reverse()) {
      kept.deltas.splice(gap.at, 0, { text: result.text.slice(gap.from, gap.to), source: "final" });
    }

    const fired = firedKinds(rules, emulator.faults.pending, executed);
    const allowed = allowedOutcomes(schedule, executed);
    if (result.outcome === "gave-up" && !allowed.reasons.includes(result.reason ?? "")) {
      throw new RunInvariantError([
        `the run gave up (${result.reason}: ${result.failure?.message ?? ""}); the schedule allows ${allowed.reasons.join(", ") || "no giving up"}`,
      ]);
    }
    // One response at most per run, and exactly one once the run knows it; every other POST
    // must have been refused by a fault that proves nothing was created.
    const creates = emulator.requests.filter(
      (r) => r.kind === "create" || r.kind === "create-stream",
    );
    const created = creates.filter((r) => r.responseId !== undefined).length;
    const refused = creates.length - created;
    const refusals = schedule.faults.filter(
      (f) =>
        (f.kind === "rate-limit" || (f.kind === "server-error" && !f.afterHandling)) &&
        (f.on === "create" || f.on === "create-stream"),
    ).length;
    if (refused > refusals) {
      throw new RunInvariantError([
        `${refused} create requests created nothing, but only ${refusals} were refused by a fault`,
      ]);
    }
    assertRunInvariants({
      result,
      deltas: kept.deltas,
      emulator,
      expectedCreates: result.responseId !== undefined ? 1 : Math.min(created, 1),
      expectedOutcome: allowed.outcomes,
      deadlineMs: SCHEDULE_OPTIONS.deadlineMs ?? null,
      recording: { startedAt: started, finishedAt: Date.now() },
      saves,
    });
    const lostChars = kept.gaps.reduce((n, gap) => n + gap.to - gap.from, 0);
    return { result, executed, fired, lostChars, ms: Date.now() - started, log };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${message}\n  schedule: ${JSON.stringify(schedule)}\n  carried out: ${log.join("; ") || "nothing"}\n  result: ${result ? `${result.outcome}${result.reason ? ` (${result.reason})` : ""}` : "none"}`,
    );
  } finally {
    await emulator.close();
    await rm(directory, { recursive: true, force: true });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RunInvariantError([why()])), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The emulator rules of a schedule's request faults, in order. */
function requestRules(schedule: Schedule): { fault: Fault; rule: FaultRule }[] {
  const rules: { fault: Fault; rule: FaultRule }[] = [];
  const createKind: RequestKind = schedule.mode === "stream" ? "create-stream" : "create";
  for (const fault of schedule.faults) {
    switch (fault.kind) {
      case "drop":
        rules.push({ fault, rule: { on: fault.on, drop: { afterEvents: fault.afterEvents } } });
        break;
      case "stall":
        rules.push({ fault, rule: { on: fault.on, stall: { afterEvents: fault.afterEvents } } });
        break;
      case "rate-limit":
        rules.push({
          fault,
          rule: {
            on: fault.on,
            status: {
              code: 429,
              ...(fault.retryAfterMs !== undefined ? { retryAfterMs: fault.retryAfterMs } : {}),
              ...(fault.retryAfter !== undefined ? { retryAfter: fault.retryAfter } : {}),
            },
          },
        });
        break;
      case "server-error":
        rules.push({
          fault,
          rule: { on: fault.on, status: { code: fault.code, afterHandling: fault.afterHandling } },
        });
        break;
      case "poll-reset":
        rules.push({
          fault,
          rule: { on: "retrieve", reset: { afterHandling: fault.afterHandling } },
        });
        break;
      case "stuck-queued":
        rules.push({ fault, rule: { on: createKind, script: { stuckQueued: true } } });
        break;
    }
  }
  return rules;
}

/** Request faults that hit the create may have created a response the run never learned of. */
function createFaultsThatMayCreate(schedule: Schedule): boolean {
  return schedule.faults.some(
    (f) =>
      (f.kind === "server-error" && (f.on === "create" || f.on === "create-stream")) ||
      ((f.kind === "drop" || f.kind === "stall") &&
        f.on === "create-stream" &&
        f.afterEvents === 0),
  );
}

function firedKinds(
  rules: { fault: Fault; rule: FaultRule }[],
  pending: readonly FaultRule[],
  executed: Fault[],
): string[] {
  const left = [...pending];
  const fired: string[] = [];
  for (const { fault, rule } of rules) {
    const index = left.findIndex(
      (p) => JSON.stringify({ ...p, times: 1 }) === JSON.stringify({ ...rule, times: 1 }),
    );
    if (index >= 0) left.splice(index, 1);
    else fired.push(fault.kind);
  }
  for (const action of executed) {
    fired.push(action.kind === "crash" ? `crash (${action.via})` : action.kind);
  }
  return fired;
}

/**
 * The outcomes a schedule allows: `completed`, unless the response is stuck in `queued`;
 * `cancelled` after a cancel (by the consumer, or by the stuck-queued watchdog); `gave-up`
 * with `create-unknown` after a create that failed once the server may have handled it, with
 * `not-found` once the response expired.
 */
export function allowedOutcomes(
  schedule: Schedule,
  executed: Fault[],
): { outcomes: RunOutcome[]; reasons: string[] } {
  const outcomes = new Set<RunOutcome>(["completed"]);
  const reasons: string[] = [];
  const stuck = schedule.faults.some((f) => f.kind === "stuck-queued");
  if (stuck) {
    outcomes.delete("completed");
    outcomes.add("cancelled");
  }
  if (executed.some((f) => f.kind === "cancel")) outcomes.add("cancelled");
  if (createFaultsThatMayCreate(schedule)) {
    outcomes.add("gave-up");
    reasons.push("create-unknown");
  }
  // The clock only moves forward: two replay-window jumps (6 min each) expire the response too.
  const advanced = executed.reduce(
    (ms, f) => ms + (f.kind === "replay-expired" ? 6 : f.kind === "response-expired" ? 11 : 0),
    0,
  );
  if (advanced > 10) {
    outcomes.add("gave-up");
    reasons.push("not-found");
  }
  return { outcomes: [...outcomes], reasons };
}

/**
 * Starts the run in a child process (durable delivery, every save also appended to
 * `saves.jsonl`), kills it hard once it printed `atDelta` deltas; returns the run id.
 */
async function startInChild(
  schedule: Schedule,
  url: string,
  directory: string,
  atDelta: number,
  printed: RunDelta[],
  log: string[],
  saves: PersistedRun[],
): Promise<string> {
  const config = {
    url,
    directory,
    stream: schedule.mode === "stream",
    input: `schedule ${schedule.seed}`,
    options: SCHEDULE_OPTIONS,
  };
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "run-child.ts"), JSON.stringify(config)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise((resolve) => child.on("exit", resolve));
  let runId = "";
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith("run ")) {
      runId = line.slice(4);
      continue;
    }
    if (line === "done") continue;
    const delta = JSON.parse(line) as RunDelta;
    printed.push(delta);
    if (printed.length === atDelta) child.kill("SIGKILL");
  }
  await exited;
  log.push(`child killed after ${printed.length} deltas`);
  const text = await readFile(join(directory, "saves.jsonl"), "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    // The last line may be cut by the kill.
    if (line) {
      try {
        saves.push(JSON.parse(line) as PersistedRun);
      } catch {}
    }
  }
  if (!runId) throw new RunInvariantError(["the child process never started its run"]);
  return runId;
}
