/**
 * The run harness starts the usual test run (test/support/run-harness.ts): what it sends and
 * with which options, so that the tests that use it start the run they used to start by hand.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { DEFAULT_RUN_OPTIONS, MemoryRunStore } from "../../src/index.js";
import {
  clientFor,
  emulatorFor,
  FAST,
  REQUEST,
  startPolledRun,
  startStreamedRun,
} from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

describe("the run harness", () => {
  it("starts a streamed run of the usual request with FAST options", async () => {
    emulator = await emulatorFor();
    const run = startStreamedRun(emulator);
    const { context } = run.getSnapshot();
    expect(context.mode).toBe("stream");
    expect(context.request).toEqual(REQUEST);
    expect(context.options).toEqual({ ...DEFAULT_RUN_OPTIONS, ...FAST });
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(emulator.getResponse(result.responseId as string)?.model).toBe("o3");
    expect(emulator.requests.map((r) => r.kind)).toEqual(["create-stream"]);
  });

  it("polls without stream, and lays request fields and options over the usual ones", async () => {
    emulator = await emulatorFor();
    const store = new MemoryRunStore();
    const run = startPolledRun(
      emulator,
      { store },
      {
        request: { input: "hi", maxOutputTokens: 16 },
        options: { pollIntervalMs: 20 },
        runId: "run_harness",
      },
    );
    const { context } = run.getSnapshot();
    expect(run.id).toBe("run_harness");
    expect(context.mode).toBe("poll");
    expect(context.request).toEqual({ model: "o3", input: "hi", maxOutputTokens: 16 });
    expect(context.options).toEqual({ ...DEFAULT_RUN_OPTIONS, ...FAST, pollIntervalMs: 20 });
    await run.result();
    expect(emulator.requests[0]?.kind).toBe("create");
    expect((await store.load("run_harness"))?.state).toBe("done");
  });

  it("takes the test's own client", async () => {
    emulator = await emulatorFor();
    let calls = 0;
    const client = clientFor(emulator, {
      fetch: (url, init) => {
        calls++;
        return fetch(url, init);
      },
    });
    const run = startStreamedRun(emulator, { client });
    expect((await run.result()).outcome).toBe("completed");
    expect(calls).toBe(emulator.requests.length);
    expect(calls).toBeGreaterThan(0);
  });
});
