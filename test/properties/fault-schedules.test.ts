/**
 * Randomized fault schedules (fast-check): streams dropped and stalled, 429s with retry-after,
 * 5xx, polls reset, processes crashed (in this process, or a child killed with SIGKILL) and
 * rehydrated, cancels, responses stuck in `queued`, replay windows and responses expired. For
 * every schedule: no text lost or repeated, no sequence number twice, one create, the outcome
 * the schedule implies within the deadline, every save rehydrates (see `schedule.ts`).
 *
 * CI runs `PROPERTY_RUNS` schedules (default 500); `npm run test:soak` runs 10 000
 * (`SOAK_RUNS`) and reports counts per outcome and per fault kind. A failure prints its seed
 * and the shrunk schedule; `PROPERTY_SEED=<seed>` replays it.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryRunStore, rehydrateRun, startRun } from "../../src/index.js";
import { emulatorClient, emulatorWithFaults, recordingStore } from "../../src/testing/index.js";
import { runSchedule, type ScheduleReport, scheduleArbitrary } from "./schedule.js";

const runs = Number(process.env.SOAK_RUNS ?? process.env.PROPERTY_RUNS ?? 500);
const seed = Number(process.env.PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));

const stats = {
  schedules: 0,
  outcomes: new Map<string, number>(),
  faults: new Map<string, number>(),
  lostChars: 0,
  schedulesWithLoss: 0,
  ms: 0,
};

function count<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function record(report: ScheduleReport): void {
  stats.schedules++;
  stats.ms += report.ms;
  const result = report.result;
  count(stats.outcomes, `${result?.outcome}${result?.reason ? ` (${result.reason})` : ""}`);
  for (const kind of new Set(report.fired)) count(stats.faults, kind);
  if (report.lostChars > 0) {
    stats.lostChars += report.lostChars;
    stats.schedulesWithLoss++;
  }
}

afterAll(() => {
  const lines = [
    `fault schedules: ${stats.schedules} run (seed ${seed}), ${(stats.ms / 1000).toFixed(1)} s of runs`,
    "  outcomes:",
    ...[...stats.outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `    ${n}\t${k}`),
    "  fault kinds that fired (schedules):",
    ...[...stats.faults].sort((a, b) => b[1] - a[1]).map(([k, n]) => `    ${n}\t${k}`),
    `  child kills between a save and its delivery (known limitation): ${stats.schedulesWithLoss} schedules, ${stats.lostChars} chars`,
  ];
  console.log(lines.join("\n"));
});

describe("randomized fault schedules", () => {
  it(
    `${runs} schedules keep every invariant`,
    async () => {
      await fc.assert(
        fc.asyncProperty(scheduleArbitrary(), async (schedule) => {
          record(await runSchedule(schedule));
        }),
        { seed, numRuns: runs, verbose: 1 },
      );
      expect(stats.schedules).toBeGreaterThanOrEqual(runs);
      // The schedules exercise what they are meant to: most faults actually fire.
      if (runs >= 200) {
        for (const kind of ["drop", "rate-limit", "crash (store)", "cancel", "stuck-queued"]) {
          expect(stats.faults.get(kind) ?? 0, kind).toBeGreaterThan(0);
        }
        expect(stats.outcomes.get("completed") ?? 0).toBeGreaterThan(runs / 3);
      }
    },
    Math.max(180_000, runs * 1_000),
  );

  it.each([
    ["a drop, a crash through the store, then a cancel", "stream", ["cancelled", "completed"]],
    ["a stuck response, cancelled by the watchdog", "stream", ["cancelled"]],
    ["a response expired while detached", "stream", ["gave-up"]],
    ["a poll reset, a 429, a crash through toPersisted", "poll", ["completed"]],
  ] as const)("fixed schedule: %s", async (name, mode, outcomes) => {
    const faults = {
      "a drop, a crash through the store, then a cancel": [
        { kind: "drop", on: "create-stream", afterEvents: 8 },
        { kind: "crash", atDelta: 4, via: "store" },
        { kind: "cancel", atDelta: 6 },
      ],
      "a stuck response, cancelled by the watchdog": [{ kind: "stuck-queued" }],
      "a response expired while detached": [{ kind: "response-expired", atDelta: 3 }],
      "a poll reset, a 429, a crash through toPersisted": [
        { kind: "poll-reset", afterHandling: false },
        { kind: "rate-limit", on: "retrieve", retryAfterMs: 5 },
        { kind: "crash", atDelta: 1, via: "to-persisted" },
      ],
    } as const;
    const report = await runSchedule({
      mode,
      seed: 7,
      outputTokens: 20,
      tokenDelayMs: 2,
      queuedMs: 2,
      delivery: "immediate",
      faults: faults[name].map((f) => ({ ...f })),
    });
    expect(outcomes).toContain(report.result?.outcome);
  });
});

/**
 * Bugs the schedules and the model found, now fixed in the machine: each stays as a
 * regression test. Then the one known limitation, pinned so that a change to it is noticed.
 */
describe("found by the schedules", () => {
  it("a cancel followed by a read that finds the response still running cancels again", async () => {
    // Was: cancelling.confirming → backoff waited on a deadline only failures set (null here),
    // so the run waited forever in cancelling.backoff.
    const emulator = await emulatorWithFaults(
      [{ on: "cancel", status: { code: 400, message: "Cannot cancel a completed response." } }],
      { tokenDelayMs: 50, outputTokens: 200 },
    );
    try {
      const run = startRun({
        client: emulatorClient(emulator),
        model: "o3",
        input: "x",
        options: { pollIntervalMs: 1_000 },
      });
      while (run.responseId === null) await new Promise((resolve) => setTimeout(resolve, 5));
      const result = await run.cancel();
      expect(result.outcome).toBe("cancelled");
      // Refused, read back (still running), after the poll interval cancelled again, confirmed.
      expect(emulator.requests.map((r) => r.kind)).toEqual([
        "create",
        "cancel",
        "retrieve",
        "cancel",
        "retrieve",
      ]);
    } finally {
      await emulator.close();
    }
  });

  it("a create that never answers ends the run soon after its deadline", async () => {
    // Was: the run stayed in started.creatingStream forever, past its deadline. The create may
    // answer until the deadline plus the first-event timeout (to learn the id and cancel).
    const emulator = await emulatorWithFaults([{ on: "create-stream", stall: { afterEvents: 0 } }]);
    try {
      const started = Date.now();
      const result = await startRun({
        client: emulatorClient(emulator),
        model: "o3",
        input: "x",
        stream: true,
        options: { deadlineMs: 200, firstEventTimeoutMs: 100, idleTimeoutMs: 100 },
      }).result();
      expect(result.outcome).toBe("gave-up");
      // The response was created (the server answered the headers): never create again.
      expect(result.reason).toBe("create-unknown");
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(emulator.countCreates()).toBe(1);
    } finally {
      await emulator.close();
    }
  });
});

describe("known limitation", () => {
  it("`after-save` delivery loses the deltas of a save when the process dies right after writing it", async () => {
    const emulator = await emulatorWithFaults([], { outputTokens: 30, tokenDelayMs: 1 });
    try {
      const inner = new MemoryRunStore();
      let dead = false;
      let lastSaved = 0;
      // The process dies right after the store wrote a save that covers more text than the one
      // before (whose text was printed).
      const store = {
        ...recordingStore(inner),
        async save(run: Parameters<MemoryRunStore["save"]>[0]) {
          await inner.save(run);
          const chars = run.snapshot.context.deliveredChars ?? 0;
          if (!dead && lastSaved > 0 && chars > lastSaved) dead = true;
          lastSaved = Math.max(lastSaved, chars);
        },
      };
      const run = startRun({
        client: emulatorClient(emulator),
        model: "o3",
        input: "x",
        stream: true,
        store,
        delivery: "after-save",
        checkpoint: { everyEvents: 3, everyMs: 10 },
      });
      let printed = "";
      run.on("delta", (delta) => {
        if (!dead) printed += delta.text; // a dead process prints nothing more
      });
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (dead) {
            clearInterval(timer);
            resolve();
          }
        }, 2);
      });
      run.actor.stop();
      const saved = await inner.load(run.id);
      const savedChars = saved?.snapshot.context.deliveredChars ?? 0;
      const again = await rehydrateRun(
        { client: emulatorClient(emulator) },
        { persisted: saved as NonNullable<typeof saved> },
      );
      let rest = "";
      again.on("delta", (delta) => {
        rest += delta.text;
      });
      const result = await again.result();
      expect(result.outcome).toBe("completed");
      // Correct behaviour: printed + rest === result.text. What happens: the chars between what
      // was printed and what the save covers are never printed.
      expect(printed.length).toBeLessThan(savedChars);
      expect(printed + rest).not.toBe(result.text);
      expect(printed + result.text.slice(printed.length, savedChars) + rest).toBe(result.text);
    } finally {
      await emulator.close();
    }
  });
});
