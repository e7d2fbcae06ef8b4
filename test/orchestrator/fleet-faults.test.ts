/**
 * Fault schedules for a fleet (fast-check): a few keyed runs under a random concurrency, with
 * random 429 bursts (retry-after-ms), dropped streams and failing polls, and at a random moment
 * a drain or a crash of the whole orchestrator (every run actor stopped with no last save),
 * then `recover()` in a new orchestrator on the same store. For every schedule:
 * - each key has at most one response at the server (never a second create);
 * - each run ends `completed` with exactly the emulator's text, except a run a crash caught with
 *   its create in flight, which ends `gave-up` / `create-unknown` (`onUnknownCreate: "fail"`);
 * - without a crash, the server never runs more responses at once than `concurrency`.
 *
 * `FLEET_RUNS` schedules (default 6); a failure prints its seed (`FLEET_SEED=<seed>` replays).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, FaultRule } from "../../src/emulator/index.js";
import { MemoryRunStore, type RunResult } from "../../src/index.js";
import { createOrchestrator, type Orchestrator } from "../../src/orchestrator/index.js";
import { clientFor, emulatorFor, FAST, storedText } from "../support/run-harness.js";

const numRuns = Number(process.env.FLEET_RUNS ?? 6);
const seed = Number(process.env.FLEET_SEED ?? Math.floor(Math.random() * 2 ** 31));

type Fault =
  | { kind: "429"; times: number; retryAfterMs: number }
  | { kind: "drop"; afterEvents: number }
  | { kind: "poll-500"; times: number };

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({
    kind: fc.constant("429" as const),
    times: fc.integer({ min: 1, max: 4 }),
    retryAfterMs: fc.integer({ min: 20, max: 120 }),
  }),
  fc.record({ kind: fc.constant("drop" as const), afterEvents: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant("poll-500" as const), times: fc.integer({ min: 1, max: 3 }) }),
);

const schedule = fc.record({
  concurrency: fc.integer({ min: 1, max: 3 }),
  streams: fc.array(fc.boolean(), { minLength: 2, maxLength: 5 }),
  faults: fc.array(fault, { maxLength: 3 }),
  interruption: fc.constantFrom("none" as const, "drain" as const, "crash" as const),
  atMs: fc.integer({ min: 0, max: 120 }),
});

function ruleOf(f: Fault): FaultRule {
  if (f.kind === "429") {
    return {
      on: ["create", "create-stream"],
      times: f.times,
      status: { code: 429, retryAfterMs: f.retryAfterMs },
    };
  }
  if (f.kind === "drop")
    return { on: ["create-stream", "retrieve-stream"], drop: { afterEvents: f.afterEvents } };
  return { on: "retrieve", times: f.times, status: { code: 500 } };
}

let emulator: Emulator;
let schedules = 0;
beforeAll(async () => {
  emulator = await emulatorFor({ tokenDelayMs: 3, outputTokens: 25 });
});
afterAll(async () => {
  await emulator.close();
});

/** Responses at the server per run id (`metadata.baton_run_id`). */
function responsesPerRun(): Map<string, string[]> {
  const byRun = new Map<string, string[]>();
  for (const request of emulator.requests) {
    if ((request.kind !== "create" && request.kind !== "create-stream") || !request.responseId)
      continue;
    const runId = emulator.getResponse(request.responseId)?.metadata.baton_run_id;
    if (!runId) continue;
    byRun.set(runId, [...(byRun.get(runId) ?? []), request.responseId]);
  }
  return byRun;
}

describe("fleet fault schedules", () => {
  it(`keeps every run's text, one create per key and the limit (${numRuns} schedules, seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(schedule, async (s) => {
        const prefix = `s${schedules++}-`;
        emulator.faults.clear();
        for (const f of s.faults) emulator.faults.add(ruleOf(f));
        const store = new MemoryRunStore();
        const options = { ...FAST, retry: { ...FAST.retry, maxAttempts: 12 } };
        const make = () =>
          createOrchestrator({
            client: clientFor(emulator),
            store,
            concurrency: s.concurrency,
            options,
          });
        let live = 0;
        let maxLive = 0;
        const counted = new Set<string>();
        const sampler = setInterval(() => {
          live = 0;
          for (const request of emulator.requests) {
            if (
              !request.responseId ||
              (request.kind !== "create" && request.kind !== "create-stream")
            )
              continue;
            const response = emulator.getResponse(request.responseId);
            if (!response?.metadata.baton_run_id?.startsWith("run_k_")) continue;
            if (!counted.has(response.metadata.baton_run_id)) continue;
            if (response.status === "queued" || response.status === "in_progress") live++;
          }
          maxLive = Math.max(maxLive, live);
        }, 2);
        let second: Orchestrator | undefined;
        /** Runs a drain saved in `started` (see DrainReport.started). */
        let inFlight: string[] = [];
        try {
          const first = make();
          const runs = [];
          for (const [i, stream] of s.streams.entries()) {
            const run = await first.startRun({
              model: "o3",
              input: `${prefix}${i}`,
              stream,
              key: `${prefix}${i}`,
            });
            counted.add(run.id);
            runs.push(run);
          }
          const ids = runs.map((r) => r.id);
          let results: RunResult[];
          if (s.interruption === "none") {
            results = await Promise.all(runs.map((r) => r.result()));
          } else {
            await new Promise((resolve) => setTimeout(resolve, s.atMs));
            if (s.interruption === "drain") {
              inFlight = (await first.drain({ createWaitMs: 200 })).started;
            } else {
              // A crash: nothing more is saved, the actors just stop.
              for (const r of first.runs()) r.run.actor.stop();
              first.gate.close();
              first.actor.stop();
            }
            second = make();
            const report = await second.recover();
            expect(report.unreadable).toEqual([]);
            // Every key, done or not, comes back through its key.
            const again = await Promise.all(
              s.streams.map((stream, i) =>
                second?.startRun({
                  model: "o3",
                  input: `${prefix}${i}`,
                  stream,
                  key: `${prefix}${i}`,
                }),
              ),
            );
            expect(again.map((r) => r?.id)).toEqual(ids);
            results = await Promise.all(again.map((r) => (r as NonNullable<typeof r>).result()));
          }
          const perRun = responsesPerRun();
          for (const result of results) {
            expect(perRun.get(result.runId)?.length ?? 0).toBeLessThanOrEqual(1);
            if (result.outcome === "completed") {
              expect(result.text).toBe(storedText(emulator, result.responseId as string));
            } else {
              // Only a run caught in `started`: by a crash, or a drain that reported it.
              if (s.interruption === "drain") expect(inFlight).toContain(result.runId);
              else expect(s.interruption).toBe("crash");
              expect(result).toMatchObject({ outcome: "gave-up", reason: "create-unknown" });
            }
          }
          if (s.interruption !== "crash") expect(maxLive).toBeLessThanOrEqual(s.concurrency);
        } finally {
          clearInterval(sampler);
          emulator.faults.clear();
          await second?.drain().catch(() => {});
        }
      }),
      { numRuns, seed, endOnFailure: true },
    );
  }, 120_000);
});
