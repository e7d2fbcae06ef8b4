/**
 * What must hold for every run, whatever went wrong on the way: record what a consumer of a run
 * received ({@link recordRun}), keep every save ({@link recordingStore}), then check it all
 * ({@link assertRunInvariants}), which throws a {@link RunInvariantError} listing each
 * violation in words.
 */
import type { Subscription } from "xstate";
import type { Emulator } from "../emulator/index.js";
import { createRunMachine } from "../machines/run-machine.js";
import type { RunStateName } from "../machines/run-state.js";
import type { RunOutcome, RunResult } from "../machines/run-types.js";
import { type PersistedRun, readEnvelope } from "../persistence/envelope.js";
import type { RunStore, RunSummary } from "../persistence/run-store.js";
import type { Run, RunDelta } from "../run/index.js";
import { restoreRunActor } from "../run/restore.js";
import type { ResponseStatus, ResponsesClient } from "../services/responses-client.js";
import { MemoryRunStore } from "../stores/memory-run-store.js";

/** What a consumer received from one run (possibly across several processes or actors). */
export interface RunRecording {
  /** Every delta, in the order received. */
  readonly deltas: RunDelta[];
  /** Top-level states, each change once. */
  readonly states: RunStateName[];
  /** `segment` events: `initial`, `continuation`, `replay`, `poll-fallback`. */
  readonly segments: string[];
  readonly statuses: ResponseStatus[];
  /** Epoch ms recording began (the run's start, when recorded from `startRun`). */
  readonly startedAt: number;
  /** Epoch ms a recorded run delivered its result. */
  readonly finishedAt: number | undefined;
  readonly result: RunResult | undefined;
  /** The text received: the deltas joined. */
  readonly text: string;
  /** Sequence numbers received more than once (must stay empty). */
  readonly repeatedSequenceNumbers: number[];
  /** Records another run too (the same run rehydrated after a crash). */
  attach(run: Run): RunRecording;
  /** Stops listening. */
  stop(): void;
}

class Recorder implements RunRecording {
  readonly deltas: RunDelta[] = [];
  readonly states: RunStateName[] = [];
  readonly segments: string[] = [];
  readonly statuses: ResponseStatus[] = [];
  readonly startedAt = Date.now();
  finishedAt: number | undefined;
  result: RunResult | undefined;
  readonly #subscriptions: Subscription[] = [];

  attach(run: Run): RunRecording {
    this.#subscriptions.push(
      run.on("delta", ({ type: _type, ...delta }) => this.deltas.push(delta)),
      run.on("segment", (segment) => this.segments.push(segment.kind)),
      run.on("status", (status) => this.statuses.push(status.status)),
    );
    const push = () => {
      const state = run.state;
      if (this.states.at(-1) !== state) this.states.push(state);
    };
    push();
    this.#subscriptions.push(run.subscribe({ next: push, error: () => {} }));
    run.result().then(
      (result) => {
        this.result = result;
        this.finishedAt = Date.now();
      },
      () => {},
    );
    return this;
  }

  get text(): string {
    return this.deltas.map((d) => d.text).join("");
  }

  get repeatedSequenceNumbers(): number[] {
    return repeatedSequenceNumbers(this.deltas);
  }

  stop(): void {
    for (const subscription of this.#subscriptions.splice(0)) subscription.unsubscribe();
  }
}

function repeatedSequenceNumbers(deltas: readonly { sequenceNumber?: number }[]): number[] {
  const seen = new Set<number>();
  const repeated: number[] = [];
  for (const delta of deltas) {
    if (delta.sequenceNumber === undefined) continue;
    if (seen.has(delta.sequenceNumber)) repeated.push(delta.sequenceNumber);
    seen.add(delta.sequenceNumber);
  }
  return repeated;
}

/**
 * Records what a run delivers: deltas, states, segments, statuses, and when its result came.
 * Attach it right after `startRun` / `rehydrateRun`, before anything is awaited.
 *
 * @example
 * ```ts
 * const run = startRun({ client }, { model: "o3", input: "hi", stream: true });
 * const recording = recordRun(run);
 * const result = await run.result();
 * expect(recording.text).toBe(result.text);
 * ```
 */
export function recordRun(run: Run): RunRecording {
  return new Recorder().attach(run);
}

/** A store that keeps a copy of every save it is given, in order (`saves`). */
export interface RecordingStore extends RunStore {
  readonly saves: PersistedRun[];
}

/**
 * Wraps a store (default: a new `MemoryRunStore`) to keep a copy of every save (in `saves`, or
 * the array given), so that a test can check that each snapshot ever written rehydrates.
 *
 * @example
 * ```ts
 * const store = recordingStore();
 * const run = startRun({ client, store }, { model: "o3", input: "hi" });
 * await run.result();
 * assertRunInvariants({ result: await run.result(), deltas: [], saves: store.saves });
 * ```
 */
export function recordingStore(
  inner: RunStore = new MemoryRunStore(),
  saves: PersistedRun[] = [],
): RecordingStore {
  return {
    saves,
    async save(run: PersistedRun): Promise<void> {
      saves.push(JSON.parse(JSON.stringify(run)) as PersistedRun);
      await inner.save(run);
    },
    load: (runId: string) => inner.load(runId),
    list: (): Promise<RunSummary[]> => inner.list(),
    delete: (runId: string) => inner.delete(runId),
  };
}

import { RunInvariantError } from "../errors.js";

export { RunInvariantError };

/** What {@link assertRunInvariants} checks. Only `result` and `deltas` are required. */
export interface RunInvariantInput {
  /** The run's result. */
  result: RunResult;
  /**
   * What the consumer received, in order (`recordRun(run).deltas`, or your own). Across a
   * crash, only what the consumer really kept: with `delivery: "after-save"`, everything
   * received; otherwise the deltas the save used to rehydrate covers.
   */
  deltas: readonly { text: string; sequenceNumber?: number }[];
  /** The emulator the run used: its create requests and stored text are checked. */
  emulator?: Pick<Emulator, "requests" | "getResponse">;
  /**
   * True when other runs use the same emulator: creates are then told apart by the run id in
   * each response's metadata (responses that expired can no longer be told apart). Default
   * false: every create the emulator saw is this run's.
   */
  emulatorShared?: boolean;
  /**
   * Creates that started a response, expected: default 1 when the run ended with a response
   * id (0 for a run attached by token: pass 0), 0 when it has none.
   */
  expectedCreates?: number;
  /** The outcome (or one of the outcomes) the scenario implies. */
  expectedOutcome?: RunOutcome | readonly RunOutcome[];
  /** The run: its options give the deadline. */
  run?: Run;
  /** The run's recording: gives its start and finish times. */
  recording?: Pick<RunRecording, "startedAt" | "finishedAt">;
  /** The overall deadline in ms (default: the run's `options.deadlineMs`). */
  deadlineMs?: number | null;
  /** How late past the deadline the result may come (default 1 000 ms). */
  graceMs?: number;
  /** Every save written (`recordingStore().saves`): each must read back and rehydrate. */
  saves?: readonly PersistedRun[];
}

/** A client for rehydration checks: every call waits forever (the actor is stopped at once). */
const inertClient: ResponsesClient = {
  create: () => new Promise(() => {}),
  createStream: () => new Promise(() => {}),
  retrieve: () => new Promise(() => {}),
  streamFrom: () => new Promise(() => {}),
  cancel: () => new Promise(() => {}),
};

/**
 * Checks the invariants of a finished run and throws a {@link RunInvariantError} naming every
 * one that does not hold:
 * - `completed`: the text received equals the final text (`result.text`, and the emulator's
 *   stored `output_text`): nothing lost, nothing repeated; any other outcome: what was received
 *   is a prefix of the response's text;
 * - no sequence number received twice;
 * - exactly the expected number of creates that started a response (one, by default);
 * - the outcome is the one expected, and it came within the deadline;
 * - every save reads back (`readEnvelope`) and rehydrates (`restoreRunActor`).
 *
 * @example
 * ```ts
 * const run = startRun({ client: emulatorClient(emulator) }, { model: "o3", input: "hi", stream: true });
 * const recording = recordRun(run);
 * const result = await run.result();
 * assertRunInvariants({ run, emulator, deltas: recording.deltas, result, expectedOutcome: "completed" });
 * ```
 */
export function assertRunInvariants(input: RunInvariantInput): void {
  const violations: string[] = [];
  const { result, emulator } = input;
  const deltas = input.deltas;
  const received = deltas.map((d) => d.text).join("");
  const stored = storedText(emulator, result.responseId);

  if (result.outcome === "completed") {
    if (received !== result.text) {
      violations.push(
        `the text received differs from the final text: ${textDiff(received, result.text)}`,
      );
    }
    if (stored !== undefined && stored !== result.text) {
      violations.push(
        `the final text differs from the emulator's output_text: ${textDiff(result.text, stored)}`,
      );
    }
  } else {
    const reference = result.text.length > 0 ? result.text : stored;
    if (reference !== undefined && !reference.startsWith(received)) {
      violations.push(
        `the text received (outcome ${result.outcome}) is not a prefix of the response's text: ${textDiff(received, reference)}`,
      );
    }
  }

  const repeated = repeatedSequenceNumbers(deltas);
  if (repeated.length > 0) {
    violations.push(`sequence numbers received more than once: ${repeated.join(", ")}`);
  }

  if (emulator) {
    const created = emulator.requests.filter(
      (r) =>
        (r.kind === "create" || r.kind === "create-stream") &&
        r.responseId !== undefined &&
        (!input.emulatorShared ||
          emulator.getResponse(r.responseId)?.metadata.baton_run_id === result.runId),
    );
    const expected = input.expectedCreates ?? (result.responseId === undefined ? 0 : 1);
    if (created.length !== expected) {
      violations.push(
        `${created.length} create requests started a response (${created.map((r) => r.responseId).join(", ") || "none"}), expected ${expected}`,
      );
    }
  }

  if (input.expectedOutcome !== undefined) {
    const allowed: readonly RunOutcome[] =
      typeof input.expectedOutcome === "string" ? [input.expectedOutcome] : input.expectedOutcome;
    if (!allowed.includes(result.outcome)) {
      const why = result.reason
        ? ` (${result.reason}${result.failure ? `: ${result.failure.message}` : ""})`
        : "";
      violations.push(`the run ended ${result.outcome}${why}, expected ${allowed.join(" or ")}`);
    }
  }

  const deadlineMs =
    input.deadlineMs !== undefined
      ? input.deadlineMs
      : (input.run?.getSnapshot().context.options.deadlineMs ?? null);
  const recording = input.recording;
  if (deadlineMs !== null && recording?.finishedAt !== undefined) {
    const took = recording.finishedAt - recording.startedAt;
    const grace = input.graceMs ?? 1_000;
    if (took > deadlineMs + grace) {
      violations.push(
        `the run took ${took} ms, past its deadline of ${deadlineMs} ms (+${grace} ms grace)`,
      );
    }
  }

  for (const [index, save] of (input.saves ?? []).entries()) {
    try {
      const envelope = readEnvelope(JSON.parse(JSON.stringify(save)));
      const actor = restoreRunActor(createRunMachine(inertClient), envelope.snapshot);
      const status = actor.getSnapshot().status;
      actor.stop();
      if (status === "error") throw new Error("the restored actor is in error");
    } catch (err) {
      violations.push(
        `save #${index + 1} (state ${save.state}) does not rehydrate: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  if (violations.length > 0) throw new RunInvariantError(violations);
}

function storedText(
  emulator: RunInvariantInput["emulator"],
  responseId: string | undefined,
): string | undefined {
  if (!emulator || responseId === undefined) return undefined;
  const response = emulator.getResponse(responseId);
  if (!response) return undefined;
  return response.output.flatMap((item) => item.content.map((part) => part.text)).join("");
}

/** Where two texts part: `at char 12: received "…abc", expected "…abd"` (lengths too). */
export function textDiff(actual: string, expected: string): string {
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  const show = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 20), i + 20));
  return `at char ${i} of ${actual.length} (expected ${expected.length}): got ${show(actual)}, expected ${show(expected)}`;
}
