/**
 * Issue 12.2's figure: the time from the server's terminal state to the run's `done`, over
 * random fault schedules (fast-check) against the emulator with baton's DEFAULT options (what a
 * user gets): streams cut, 429s with a small retry-after, 503s, and cancels from another client
 * (live streams then end with `response.failed`, or with no terminal event at all:
 * `streamOnCancel: "close"`). Before the fix a cancel from elsewhere cost 74-78 s; the goal is a
 * p99 under 3 s.
 *
 * The test asserts a loose bound only (every run done within LATENCY_BOUND_MS of the terminal
 * state, default 15 s: a loaded machine must not fail it) and prints p50 / p99 / max. CI runs
 * LATENCY_RUNS schedules (default 30); the figures in the report come from
 * `LATENCY_RUNS=300 npx vitest run test/properties/terminal-latency.test.ts`.
 */

import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { type FaultRule, startEmulator } from "../../src/emulator/index.js";
import type { RequestKind } from "../../src/emulator/types.js";
import { startRun } from "../../src/index.js";
import { emulatorClient } from "../../src/testing/index.js";

const runs = Number(process.env.LATENCY_RUNS ?? 30);
const bound = Number(process.env.LATENCY_BOUND_MS ?? 15_000);
const seed = Number(process.env.PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));

type Fault =
  | { kind: "cut"; on: "create-stream" | "retrieve-stream"; afterEvents: number }
  | { kind: "429"; on: RequestKind; retryAfterMs?: number; retryAfter?: number }
  | { kind: "503"; on: RequestKind }
  | { kind: "cancel"; atChars: number };

interface LatencySchedule {
  stream: boolean;
  outputTokens: number;
  tokenDelayMs: number;
  streamOnCancel: "close" | "failed-event";
  faults: Fault[];
}

const schedule: fc.Arbitrary<LatencySchedule> = fc
  .record({
    stream: fc.constantFrom(true, true, true, false),
    outputTokens: fc.integer({ min: 20, max: 80 }),
    tokenDelayMs: fc.integer({ min: 2, max: 10 }),
    streamOnCancel: fc.constantFrom<"close" | "failed-event">("close", "failed-event"),
  })
  .chain((base) => {
    const reads: RequestKind[] = base.stream ? ["retrieve", "retrieve-stream"] : ["retrieve"];
    const fault: fc.Arbitrary<Fault> = fc.oneof(
      {
        weight: base.stream ? 4 : 0,
        arbitrary: fc.record({
          kind: fc.constant("cut" as const),
          on: fc.constantFrom<"create-stream" | "retrieve-stream">(
            "create-stream",
            "retrieve-stream",
          ),
          afterEvents: fc.integer({ min: 2, max: 90 }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.oneof(
          fc.record({
            kind: fc.constant("429" as const),
            on: fc.constantFrom(...reads, "cancel" as const),
            retryAfterMs: fc.integer({ min: 1, max: 50 }),
          }),
          fc.record({
            kind: fc.constant("429" as const),
            on: fc.constantFrom(...reads, "cancel" as const),
            retryAfter: fc.constant(0.02),
          }),
        ),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("503" as const),
          on: fc.constantFrom(...reads, "cancel" as const),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("cancel" as const),
          atChars: fc.integer({ min: 0, max: 200 }),
        }),
      },
    );
    return fc.array(fault, { maxLength: 4 }).map((faults) => ({ ...base, faults }));
  });

function rulesOf(faults: Fault[]): FaultRule[] {
  const rules: FaultRule[] = [];
  for (const f of faults) {
    if (f.kind === "cut") rules.push({ on: f.on, drop: { afterEvents: f.afterEvents } });
    if (f.kind === "429") {
      rules.push({
        on: f.on,
        status: {
          code: 429,
          ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
          ...(f.retryAfter !== undefined ? { retryAfter: f.retryAfter } : {}),
        },
      });
    }
    if (f.kind === "503") rules.push({ on: f.on, status: { code: 503 } });
  }
  return rules;
}

const latencies: { ms: number; stream: boolean; cancelled: boolean }[] = [];
const outcomes = new Map<string, number>();
let slowest: { ms: number; schedule: LatencySchedule } | undefined;

/** Carries out a schedule; returns ms from the server's terminal state to the run's `done`. */
async function measure(s: LatencySchedule): Promise<{ ms: number; cancelled: boolean }> {
  const emulator = await startEmulator({
    outputTokens: s.outputTokens,
    tokenDelayMs: s.tokenDelayMs,
    queuedMs: 5,
    streamOnCancel: s.streamOnCancel,
    faults: rulesOf(s.faults),
  });
  let watcher: NodeJS.Timeout | undefined;
  try {
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      stream: s.stream,
    });
    let chars = 0;
    run.on("delta", (d) => {
      chars += d.text.length;
    });
    let terminalAt: number | undefined;
    // The server's terminal state, seen from inside the emulator's process every millisecond
    // (and once more when the run ends: the last event can be read before the timer comes).
    const look = () => {
      const id = run.responseId;
      const status = id ? emulator.getResponse(id)?.status : undefined;
      if (terminalAt === undefined && status && status !== "queued" && status !== "in_progress") {
        terminalAt = Date.now();
      }
    };
    watcher = setInterval(look, 1);
    const cancel = s.faults.find(
      (f): f is Extract<Fault, { kind: "cancel" }> => f.kind === "cancel",
    );
    let doneAt: number | undefined;
    const result = run.result().then((r) => {
      doneAt = Date.now();
      look();
      return r;
    });
    if (cancel) {
      // Another client cancels by id once the follower has this much text (or never, if the
      // response completes first).
      while (doneAt === undefined && (run.responseId === null || chars < cancel.atChars)) {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      if (doneAt === undefined && run.responseId !== null) {
        const other = new OpenAI({ baseURL: emulator.url, apiKey: "sk-other", maxRetries: 0 });
        await other.responses.cancel(run.responseId).catch(() => undefined);
        const status = emulator.getResponse(run.responseId)?.status;
        if (terminalAt === undefined && status === "cancelled") terminalAt = Date.now();
      }
    }
    const ended = await Promise.race([
      result,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`not done after 60 s (state ${run.state})`)),
          60_000,
        ).unref(),
      ),
    ]);
    outcomes.set(ended.outcome, (outcomes.get(ended.outcome) ?? 0) + 1);
    expect(["completed", "cancelled"]).toContain(ended.outcome);
    expect(terminalAt).toBeDefined();
    return {
      ms: Math.max(0, (doneAt as number) - (terminalAt as number)),
      cancelled: ended.outcome === "cancelled",
    };
  } finally {
    clearInterval(watcher);
    await emulator.close();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function figures(name: string, picked: { ms: number }[]): string {
  const sorted = picked.map((l) => l.ms).sort((a, b) => a - b);
  return `  ${name} (${sorted.length}): p50 ${percentile(sorted, 50)} ms, p90 ${percentile(sorted, 90)} ms, p99 ${percentile(sorted, 99)} ms, max ${sorted.at(-1)} ms`;
}

afterAll(() => {
  console.log(
    [
      `terminal → done over ${latencies.length} schedules (seed ${seed}, default RunOptions):`,
      figures("all", latencies),
      figures(
        "stream",
        latencies.filter((l) => l.stream),
      ),
      figures(
        "poll",
        latencies.filter((l) => !l.stream),
      ),
      figures(
        "ended cancelled (by another client)",
        latencies.filter((l) => l.cancelled),
      ),
      `  outcomes: ${[...outcomes].map(([k, n]) => `${k} ${n}`).join(", ")}`,
      ...(slowest ? [`  slowest schedule: ${JSON.stringify(slowest.schedule)}`] : []),
    ].join("\n"),
  );
});

describe("time from the server's terminal state to the run's done", () => {
  it(
    `${runs} random fault schedules: every run done within ${bound} ms of its terminal state`,
    async () => {
      await fc.assert(
        fc.asyncProperty(schedule, async (s) => {
          const { ms, cancelled } = await measure(s);
          latencies.push({ ms, stream: s.stream, cancelled });
          if (!slowest || ms > slowest.ms) slowest = { ms, schedule: s };
          expect(ms).toBeLessThanOrEqual(bound);
        }),
        { seed, numRuns: runs, endOnFailure: true },
      );
    },
    Math.max(120_000, runs * 5_000),
  );
});
