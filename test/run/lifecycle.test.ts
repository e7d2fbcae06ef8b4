/**
 * The run machine end to end: the real `openai` SDK over real HTTP against the emulator.
 * Every state and outcome reached, text delivered exactly once, one create per run.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { decodeContinuationToken, MemoryRunStore, startRun } from "../../src/index.js";
import {
  clientFor,
  emulatorFor,
  FAST,
  inState,
  Recorder,
  startPolledRun,
  startStreamedRun,
  storedText,
  until,
} from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

describe("polling mode", () => {
  it("creates once, polls until completed, and delivers the whole text", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const run = startPolledRun(emulator, {}, { request: { input: "Explain relativity." } });
    const recorder = new Recorder(run);
    await until(run, (r) => r.responseId !== null);
    const token = run.token;
    expect(token).not.toBeNull();
    expect(decodeContinuationToken(token as string)).toEqual({ responseId: run.responseId });
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(result.text.length).toBeGreaterThan(20);
    expect(result.text).toBe(storedText(emulator, result.responseId as string));
    expect(recorder.text).toBe(result.text);
    expect(result.usage?.outputTokens).toBeGreaterThan(0);
    expect(recorder.states).toEqual(["started", "polling", "done"]);
    expect(run.token).toBeNull();
    expect(emulator.countCreates()).toBe(1);
    const create = emulator.requests.find((r) => r.kind === "create");
    expect(create).toBeDefined();
    expect(emulator.requests.filter((r) => r.kind === "retrieve").length).toBeGreaterThan(1);
  });

  it("tags the response with the run id in metadata", async () => {
    emulator = await emulatorFor();
    const run = startPolledRun(emulator, {}, { request: { input: "hi", metadata: { app: "x" } } });
    const result = await run.result();
    const stored = emulator.getResponse(result.responseId as string) as {
      metadata?: Record<string, string>;
    };
    expect(stored.metadata).toEqual({ app: "x", baton_run_id: run.id });
  });

  it("ends incomplete when max_output_tokens is hit", async () => {
    emulator = await emulatorFor({ outputTokens: 60 });
    const run = startPolledRun(emulator, {}, { request: { input: "long", maxOutputTokens: 16 } });
    const result = await run.result();
    expect(result.outcome).toBe("incomplete");
    expect(result.incompleteReason).toBe("max_output_tokens");
  });

  it("ends failed with the service's error", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({
      on: "create",
      script: { failAfterDeltas: 3, failCode: "server_error", failMessage: "boom" },
    });
    const run = startPolledRun(emulator);
    const result = await run.result();
    expect(result.outcome).toBe("failed");
    expect(result.error).toEqual({ code: "server_error", message: "boom" });
  });
});

describe("options", () => {
  it("an option given as undefined takes its default; runs started alike share one options object", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const client = clientFor(emulator);
    const start = (options: object) =>
      startRun({ client, model: "o3", input: "x", options: { ...FAST, ...options } });
    const a = start({ deadlineMs: undefined, retry: { ...FAST.retry, jitter: undefined } });
    const b = start({});
    const c = start({ pollIntervalMs: 11 });
    const options = (run: typeof a) => run.getSnapshot().context.options;
    expect(options(a).deadlineMs).toBeNull();
    expect(options(a).retry.jitter).toBe(0.25);
    expect(options(b).retry.jitter).toBe(0);
    expect(options(c).pollIntervalMs).toBe(11);
    const d = start({});
    expect(options(d)).toBe(options(b));
    expect(options(c)).not.toBe(options(b));
    expect(Object.isFrozen(options(b).retry)).toBe(true);
    const results = await Promise.all([a, b, c, d].map((run) => run.result()));
    expect(results.every((r) => r.outcome === "completed")).toBe(true);
  });

  it("result() is one promise per run, however often it is asked for, with a store or without", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const plain = startPolledRun(emulator, { client });
    const saved = startPolledRun(emulator, { client, store });
    for (const run of [plain, saved]) {
      const first = run.result();
      expect(run.result()).toBe(first);
      const result = await first;
      expect(result.outcome).toBe("completed");
      expect(run.result()).toBe(first);
    }
    // The stored run's result waited for its last save.
    expect((await store.load(saved.id))?.state).toBe("done");
  });
});

describe("streaming mode", () => {
  it("streams every delta once, in order, with its sequence number", async () => {
    emulator = await emulatorFor();
    const run = startStreamedRun(
      emulator,
      {},
      { request: { input: "three benefits of exercise" } },
    );
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(recorder.deltas.every((d) => d.source === "stream")).toBe(true);
    const seqs = recorder.deltas.map((d) => d.sequenceNumber as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(recorder.repeatedSequenceNumbers).toEqual([]);
    expect(recorder.states).toEqual(["started", "streaming", "done"]);
    expect(recorder.segments).toEqual(["initial"]);
    expect(emulator.countCreates()).toBe(1);
  });

  it("gives a token with the last sequence number while streaming", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 10 });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 3);
    const token = decodeContinuationToken(run.token as string);
    expect(token.responseId).toBe(run.responseId);
    expect(token.sequenceNumber).toBeGreaterThanOrEqual(
      recorder.deltas[2]?.sequenceNumber as number,
    );
    await run.result();
    expect(run.token).toBeNull();
  });

  it("the deltas() iterator yields the text and ends with the run", async () => {
    emulator = await emulatorFor();
    const run = startStreamedRun(emulator, {}, { request: { input: "iterate" } });
    let text = "";
    for await (const delta of run.deltas()) text += delta.text;
    expect(text).toBe((await run.result()).text);
  });

  it("ends incomplete and failed as the stream says", async () => {
    emulator = await emulatorFor({ outputTokens: 60 });
    const incomplete = await startStreamedRun(
      emulator,
      {},
      { request: { maxOutputTokens: 16 } },
    ).result();
    expect(incomplete.outcome).toBe("incomplete");
    emulator.faults.add({ on: "create-stream", script: { failAfterDeltas: 2 } });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    const failed = await run.result();
    expect(failed.outcome).toBe("failed");
    expect(failed.error?.code).toBeTruthy();
    expect(recorder.deltas.length).toBe(2);
  });

  it("skips keepalive events without losing text", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", script: { keepaliveEvery: 2 } });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
  });
});

describe("disconnect is not cancel", () => {
  it("a consumer that disconnects leaves the response running; resume() continues after the cursor", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 3);
    run.disconnect();
    await until(run, inState("interrupted"));
    const responseId = run.responseId as string;
    // The server goes on without us.
    await new Promise((r) => setTimeout(r, 60));
    expect(emulator.getResponse(responseId)?.status).not.toBe("cancelled");
    run.resume();
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(recorder.repeatedSequenceNumbers).toEqual([]);
    expect(recorder.segments).toEqual(["initial", "continuation"]);
    const resume = emulator.requests.find((r) => r.kind === "retrieve-stream");
    expect(resume?.query.starting_after).toBeDefined();
    expect(emulator.countCreates()).toBe(1);
  });

  it("an aborted AbortSignal disconnects", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const controller = new AbortController();
    const run = startStreamedRun(emulator, { signal: controller.signal });
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 2);
    controller.abort();
    await until(run, inState("interrupted"));
    expect(run.getSnapshot().context.interruption).toBe("consumer");
    await run.cancel();
  });
});
