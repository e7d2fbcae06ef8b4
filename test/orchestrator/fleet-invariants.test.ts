/**
 * Issue 15: `baton/testing` gains what an app needs to test its own fleet, counted at the
 * server: `watchServer` (responses live at once, per model) and `assertFleetInvariants` (never
 * above the limits, one response per run id, every key done once, texts exact). Each check is
 * shown to pass on a good fleet and to fail, naming the invariant, on a fleet that breaks it.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { createOrchestrator, startRun } from "../../src/index.js";
import { assertFleetInvariants, RunInvariantError, watchServer } from "../../src/testing/index.js";
import { clientFor, emulatorFor, FAST } from "../support/run-harness.js";

let emulator: Emulator;
beforeEach(async () => {
  emulator = await emulatorFor({ tokenDelayMs: 2, outputTokens: 40 });
});
afterEach(async () => {
  await emulator.close();
});

function violationsOf(check: () => void): string[] {
  try {
    check();
  } catch (err) {
    expect(err).toBeInstanceOf(RunInvariantError);
    return [...(err as RunInvariantError).violations];
  }
  return [];
}

describe("fleet invariants", () => {
  it("hold for an orchestrated fleet: concurrency, per model, one response per key", async () => {
    const watch = watchServer(emulator);
    const fleet = createOrchestrator({
      client: clientFor(emulator),
      concurrency: 2,
      limits: [{ name: "model", max: 1, keyOf: (request) => request.model }],
      options: FAST,
    });
    const keys = ["k1", "k2", "k3", "k4", "k5", "k6"];
    const runs = await Promise.all(
      keys.map((key, i) =>
        fleet.startRun({ model: i % 2 ? "o3" : "o4-mini", input: key, stream: i < 3, key }),
      ),
    );
    const results = await Promise.all(runs.map((run) => run.result()));
    watch.stop();
    expect(watch.samples).toBeGreaterThan(5);
    expect(watch.maxLive).toBeGreaterThan(0);
    expect(
      violationsOf(() =>
        assertFleetInvariants({
          emulator,
          watch,
          concurrency: 2,
          perModel: { o3: 1, "o4-mini": 1 },
          keys,
          results,
        }),
      ),
    ).toEqual([]);
  });

  it("name a pool that goes above its concurrency", async () => {
    const watch = watchServer(emulator);
    const client = clientFor(emulator);
    const runs = Array.from({ length: 6 }, (_, i) =>
      startRun({ client }, { model: "o3", input: `bare ${i}` }, { options: FAST }),
    );
    await Promise.all(runs.map((run) => run.result()));
    watch.stop();
    const violations = violationsOf(() =>
      assertFleetInvariants({ emulator, watch, concurrency: 2 }),
    );
    expect(violations.some((v) => /live at once at the server; the concurrency is 2/.test(v))).toBe(
      true,
    );
  });

  it("name a run id with two responses, and a key never done", async () => {
    const client = clientFor(emulator);
    const twice = [1, 2].map(() =>
      startRun({ client }, { model: "o3", input: "twice" }, { runId: "run_twice", options: FAST }),
    );
    const results = await Promise.all(twice.map((run) => run.result()));
    const violations = violationsOf(() =>
      assertFleetInvariants({ emulator, keys: ["never-started"], results }),
    );
    expect(violations.some((v) => /^run run_twice has 2 responses/.test(v))).toBe(true);
    expect(violations.some((v) => /key 'never-started' .* has 0 responses, not 1/.test(v))).toBe(
      true,
    );
    expect(violations.some((v) => /key 'never-started' .* has no result/.test(v))).toBe(true);
  });

  it("name a completed run whose text is not its response's", async () => {
    const run = startRun(
      { client: clientFor(emulator) },
      { model: "o3", input: "x" },
      { options: FAST },
    );
    const result = await run.result();
    const violations = violationsOf(() =>
      assertFleetInvariants({ emulator, results: [{ ...result, text: `${result.text}!` }] }),
    );
    expect(violations).toEqual([
      `run ${result.runId}: its text differs from its response's stored text`,
    ]);
  });
});
