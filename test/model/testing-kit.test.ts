/**
 * The user-facing test kit (`baton/testing`) tested on its own: the emulator in one line, the
 * run recorder and recording store, the invariants (which must fail on doctored evidence), and
 * the test model's paths and their runner.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { type PersistedRun, startRun } from "../../src/index.js";
import {
  assertRunInvariants,
  createPathRunner,
  emulatorClient,
  emulatorWithFaults,
  RunInvariantError,
  recordingStore,
  recordRun,
  runTestModel,
  runTestPaths,
  serializeRunSnapshot,
} from "../../src/testing/index.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

/** A streamed run through one dropped connection, recorded, with every save kept. */
async function droppedRun() {
  emulator = await emulatorWithFaults([{ on: "create-stream", drop: { afterEvents: 5 } }]);
  const store = recordingStore();
  const run = startRun({
    client: emulatorClient(emulator),
    model: "o3",
    input: "kit",
    stream: true,
    store,
    options: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, jitter: 0 } },
  });
  const recording = recordRun(run);
  const result = await run.result();
  return { run, store, recording, result, emulator };
}

function violationsOf(fn: () => void): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof RunInvariantError) return [...err.violations];
    throw err;
  }
  return [];
}

describe("emulatorWithFaults", () => {
  it("starts an emulator with the fault rules queued, in one line", async () => {
    emulator = await emulatorWithFaults([
      { on: "create-stream", drop: { afterEvents: 5 } },
      { on: "retrieve", status: { code: 429, retryAfterMs: 10 }, times: 2 },
    ]);
    expect(emulator.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(emulator.faults.pending.map((rule) => rule.on)).toEqual(["create-stream", "retrieve"]);
    expect(emulator.faults.pending[1]?.times).toBe(2);
  });
});

describe("recordRun, recordingStore, assertRunInvariants", () => {
  it("record a run through a dropped stream and find every invariant kept", async () => {
    const { run, store, recording, result } = await droppedRun();
    expect(result.outcome).toBe("completed");
    expect(recording.text).toBe(result.text);
    expect(recording.segments).toEqual(["initial", "continuation"]);
    expect(recording.states).toContain("interrupted");
    expect(recording.repeatedSequenceNumbers).toEqual([]);
    expect(recording.finishedAt).toBeGreaterThanOrEqual(recording.startedAt);
    expect(store.saves.length).toBeGreaterThan(2);
    expect(store.saves.at(-1)?.state).toBe("done");
    expect(() =>
      assertRunInvariants({
        run,
        emulator,
        deltas: recording.deltas,
        result,
        expectedOutcome: "completed",
        recording,
        saves: store.saves,
      }),
    ).not.toThrow();
  });

  it("fail on a delta list with a delta missing, or one delivered twice", async () => {
    const { recording, result } = await droppedRun();
    const deltas = recording.deltas;
    const missing = violationsOf(() =>
      assertRunInvariants({
        emulator,
        result,
        deltas: [...deltas.slice(0, 3), ...deltas.slice(4)],
      }),
    );
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(/^the text received differs from the final text: at char \d+/);

    const twice = violationsOf(() =>
      assertRunInvariants({
        emulator,
        result,
        deltas: [...deltas.slice(0, 4), ...deltas.slice(3)],
      }),
    );
    expect(twice).toHaveLength(2);
    expect(twice[1]).toBe(`sequence numbers received more than once: ${deltas[3]?.sequenceNumber}`);

    const error = (() => {
      try {
        assertRunInvariants({ result, deltas: deltas.slice(1) });
      } catch (err) {
        return err as Error;
      }
    })();
    expect(error).toBeInstanceOf(RunInvariantError);
    expect(error?.message).toMatch(/^run invariants violated:\n {2}- the text received differs/);
  });

  it("fail on the wrong outcome, a second create, a late result, a save that does not rehydrate", async () => {
    const { store, recording, result } = await droppedRun();
    const base = { emulator, result, deltas: recording.deltas };
    expect(
      violationsOf(() => assertRunInvariants({ ...base, expectedOutcome: "cancelled" })),
    ).toEqual(["the run ended completed, expected cancelled"]);
    expect(violationsOf(() => assertRunInvariants({ ...base, expectedCreates: 2 }))[0]).toMatch(
      /^1 create requests started a response \(resp_\w+\), expected 2$/,
    );
    expect(
      violationsOf(() =>
        assertRunInvariants({
          ...base,
          deadlineMs: 10,
          graceMs: 0,
          recording: { startedAt: 0, finishedAt: 100 },
        }),
      ),
    ).toEqual(["the run took 100 ms, past its deadline of 10 ms (+0 ms grace)"]);
    const corrupt = {
      ...store.saves[1],
      snapshot: { ...store.saves[1]?.snapshot, value: "nowhere" },
    };
    const saves = [store.saves[0], corrupt] as PersistedRun[];
    expect(violationsOf(() => assertRunInvariants({ ...base, saves }))).toEqual([
      `save #2 (state ${store.saves[1]?.state}) does not rehydrate: snapshot.value: 'nowhere' is not a state of 'run' (idle, started, polling, streaming, interrupted, resumed, cancelling, done)`,
    ]);
  });

  it("outside `completed`, accept a prefix of the text and nothing else", () => {
    const result = {
      outcome: "cancelled" as const,
      runId: "run_x",
      text: "Hello there",
      usage: null,
      error: null,
      incompleteReason: null,
    };
    expect(() => assertRunInvariants({ result, deltas: [{ text: "Hello" }] })).not.toThrow();
    expect(
      violationsOf(() => assertRunInvariants({ result, deltas: [{ text: "Help" }] }))[0],
    ).toMatch(/is not a prefix of the response's text/);
  });
});

describe("runTestModel, runTestPaths", () => {
  it("give the run machine's test model and its paths, from idle, described", () => {
    const model = runTestModel({ mode: "stream" });
    expect(model.getShortestPaths().length).toBeGreaterThan(20);
    const transitions = runTestPaths({ mode: "poll" }, { kind: "transitions" });
    expect(transitions.length).toBeGreaterThan(10);
    for (const path of transitions) {
      expect(
        path.description.startsWith("poll: run.start") || path.description.startsWith("poll: "),
      ).toBe(true);
      expect(path.steps.at(-1)?.edges.length).toBeGreaterThan(0);
    }
    const simple = runTestPaths({ mode: "poll" }, { kind: "simple", maxSteps: 6, maxPaths: 10 });
    expect(simple).toHaveLength(10);
    for (const path of simple) {
      expect(path.steps.length).toBeLessThanOrEqual(6);
      const keys = path.steps.map((step) => serializeRunSnapshot(step.state));
      expect(new Set(keys).size).toBe(keys.length);
    }
    const done = runTestPaths({ mode: "stream" }, { toState: (s) => s.status === "done" });
    expect(done.length).toBeGreaterThan(3);
    for (const path of done) expect(path.state.status).toBe("done");
  });

  it("replays a path against the emulator, and fails readably when the model is wrong", async () => {
    const runner = await createPathRunner();
    try {
      const path = runTestPaths({ mode: "stream" }, { kind: "transitions" }).find(
        (p) => p.steps.at(-1)?.event.type === "stream.failed",
      );
      if (!path) throw new Error("no path");
      const result = await runner.run(path);
      expect(result.ok).toBe(true);
      expect(result.states.has("run.interrupted.checking")).toBe(true);
      expect(result.scripted).toEqual([]);

      // A doctored model: the last step claims the run is still streaming.
      const last = path.steps.at(-1);
      if (!last) throw new Error("no step");
      const previous = path.steps.at(-2)?.state ?? last.state;
      const doctored = {
        ...path,
        steps: [...path.steps.slice(0, -1), { ...last, state: previous }],
      };
      const failed = await runner.run(doctored);
      expect(failed.ok).toBe(false);
      expect(failed.error?.message).toMatch(
        /step \d+: after stream\.failed: state is \{"interrupted":"checking"\}, the model says "streaming"/,
      );
    } finally {
      await runner.close();
    }
  });
});
