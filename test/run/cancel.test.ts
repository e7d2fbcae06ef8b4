/** `run.cancel` in every state: idempotent, and a response that finished meanwhile reports as finished. */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";

import {
  clientFor,
  emulatorFor,
  inState,
  Recorder,
  startPolledRun,
  startStreamedRun,
  until,
} from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

describe("cancel", () => {
  it("before anything is created: ends cancelled locally, no request sent", async () => {
    emulator = await emulatorFor();
    const { createActor } = await import("xstate");
    const { createRunMachine, openAIResponsesClient } = await import("../../src/index.js");
    const actor = createActor(createRunMachine(openAIResponsesClient(clientFor(emulator))), {
      input: { runId: "run_idle", mode: "poll", request: { model: "o3", input: "x" } },
    });
    actor.start();
    actor.send({ type: "run.cancel" });
    expect(actor.getSnapshot().status).toBe("done");
    expect(actor.getSnapshot().output?.outcome).toBe("cancelled");
    expect(emulator.requests).toEqual([]);
  });

  it("while the create call is in flight: cancels as soon as the response id is known", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    emulator.faults.add({ on: "create", stall: { afterEvents: 0, ms: 100 } });
    const run = startPolledRun(emulator);
    await until(run, inState("started"));
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    expect(result.cancelledBy).toBe("consumer");
    expect(emulator.getResponse(result.responseId as string)?.status).toBe("cancelled");
    expect(emulator.requests.filter((r) => r.kind === "cancel").length).toBe(1);
  });

  it("while polling", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    const run = startPolledRun(emulator);
    await until(run, inState("polling"));
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    expect(emulator.getResponse(result.responseId as string)?.status).toBe("cancelled");
  });

  for (const streamOnCancel of ["failed-event", "close"] as const) {
    it(`while streaming (live stream on cancel: ${streamOnCancel})`, async () => {
      emulator = await emulatorFor({ tokenDelayMs: 10, streamOnCancel });
      const run = startStreamedRun(emulator);
      const recorder = new Recorder(run);
      await until(run, () => recorder.deltas.length >= 2);
      const result = await run.cancel();
      expect(result.outcome).toBe("cancelled");
      expect(recorder.states).toContain("cancelling");
      expect(emulator.getResponse(result.responseId as string)?.status).toBe("cancelled");
    });
  }

  it("while interrupted (disconnected), and twice: idempotent", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 10 });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 1);
    run.disconnect();
    await until(run, inState("interrupted"));
    const [a, b] = await Promise.all([run.cancel(), run.cancel()]);
    expect(a).toEqual(b);
    expect(a.outcome).toBe("cancelled");
  });

  it("while resuming", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 10 });
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 6 } });
    emulator.faults.add({ on: "retrieve-stream", stall: { afterEvents: 0, ms: 300 } });
    const run = startStreamedRun(emulator);
    await until(run, inState("resumed"));
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
  });

  it("a response that completed meanwhile reports as completed (cancel answered 400)", async () => {
    emulator = await emulatorFor({ cancelCompleted: "error" });
    const run = startPolledRun(emulator, {}, { options: { pollIntervalMs: 5_000 } });
    await until(run, inState("polling"));
    const responseId = run.responseId as string;
    while (emulator.getResponse(responseId)?.status !== "completed")
      await new Promise((r) => setTimeout(r, 10));
    const result = await run.cancel();
    expect(result.outcome).toBe("completed");
    expect(result.text.length).toBeGreaterThan(0);
  });

  it("a response that completed meanwhile reports as completed (cancel answered 200)", async () => {
    emulator = await emulatorFor({ cancelCompleted: "return" });
    const run = startPolledRun(emulator, {}, { options: { pollIntervalMs: 5_000 } });
    await until(run, inState("polling"));
    const responseId = run.responseId as string;
    while (emulator.getResponse(responseId)?.status !== "completed")
      await new Promise((r) => setTimeout(r, 10));
    const result = await run.cancel();
    expect(result.outcome).toBe("completed");
  });

  it("after done: nothing happens", async () => {
    emulator = await emulatorFor();
    const run = startPolledRun(emulator);
    const result = await run.result();
    expect(await run.cancel()).toEqual(result);
    expect(emulator.requests.filter((r) => r.kind === "cancel")).toEqual([]);
  });

  it("a cancel rate-limited is retried", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    emulator.faults.add({ on: "cancel", status: { code: 429, retryAfterMs: 30 } });
    const run = startPolledRun(emulator);
    await until(run, inState("polling"));
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    expect(emulator.requests.filter((r) => r.kind === "cancel").length).toBe(2);
  });

  it("reads the final usage back after a cancel whose reply has none, keeping the reply if that fails", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 1);
    emulator.faults.add({ on: "retrieve", status: { code: 500, shouldRetry: false } });
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    const kinds = emulator.requests.map((r) => r.kind);
    expect(kinds.slice(kinds.indexOf("cancel"))).toEqual(["cancel", "retrieve"]);
  });
});
