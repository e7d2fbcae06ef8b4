/**
 * Every fault of the emulator against the run machine: the run recovers where recovery is
 * possible, never creates twice, and ends with a clear outcome where it is not.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createManualClock, type Emulator } from "../../src/emulator/index.js";
import { rehydrateRun, startRun } from "../../src/index.js";
import {
  clientFor,
  emulatorFor,
  FAST,
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

describe("stream faults", () => {
  it("a dropped connection is resumed after the last sequence number", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 8 } });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(recorder.repeatedSequenceNumbers).toEqual([]);
    expect(recorder.states).toEqual([
      "started",
      "streaming",
      "interrupted",
      "resumed",
      "streaming",
      "done",
    ]);
    expect(recorder.segments).toEqual(["initial", "continuation"]);
    expect(run.getSnapshot().context.interruption).toBe("dropped");
    const resume = emulator.requests.find((r) => r.kind === "retrieve-stream");
    expect(Number(resume?.query.starting_after)).toBe(7);
    expect(emulator.countCreates()).toBe(1);
  });

  it("drops during resumed streams too, several times", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 6 } });
    emulator.faults.add({ on: "retrieve-stream", drop: { afterEvents: 3 }, times: 3 });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(recorder.repeatedSequenceNumbers).toEqual([]);
    expect(run.getSnapshot().context.resumes).toBe(4);
    expect(emulator.countCreates()).toBe(1);
  });

  it("a stalled stream (no event, socket open) trips the idle watchdog and resumes", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", stall: { afterEvents: 7 } });
    const run = startStreamedRun(emulator, {}, { options: { idleTimeoutMs: 150 } });
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(recorder.states).toContain("interrupted");
  });

  it("a stream that goes silent after response.created trips the first-event watchdog", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", stall: { afterEvents: 1 } });
    const run = startStreamedRun(emulator, {}, { options: { firstEventTimeoutMs: 150 } });
    const recorder = new Recorder(run);
    await until(run, () => run.getSnapshot().context.interruption === "no-first-event");
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(emulator.countCreates()).toBe(1);
  });

  it("a resume whose server never answers is abandoned and tried again", async () => {
    // Slow enough to be still running when the check before the second resume looks.
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 5 } });
    emulator.faults.add({ on: "retrieve-stream", stall: { afterEvents: 0 } });
    const run = startStreamedRun(emulator, {}, { options: { firstEventTimeoutMs: 150 } });
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    expect(emulator.requests.filter((r) => r.kind === "retrieve-stream").length).toBe(2);
  });

  it("a resume rate-limited with retry-after-ms waits and tries again", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 5 } });
    emulator.faults.add({ on: "retrieve-stream", status: { code: 429, retryAfterMs: 120 } });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    const resumes = emulator.requests.filter((r) => r.kind === "retrieve-stream");
    expect(resumes.length).toBeGreaterThanOrEqual(2);
    expect((resumes[1]?.at ?? 0) - (resumes[0]?.at ?? 0)).toBeGreaterThanOrEqual(110);
  });

  it("falls back to polling when the replay window has passed, and still delivers all the text", async () => {
    const clock = createManualClock(Date.now());
    emulator = await emulatorFor({ clock, tokenDelayMs: 5 });
    const run = startStreamedRun(emulator);
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 3);
    run.disconnect();
    await until(run, inState("interrupted"));
    clock.advance(6 * 60_000);
    run.resume();
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.segments).toEqual(["initial", "poll-fallback"]);
    expect(recorder.text).toBe(result.text);
    expect(recorder.deltas.at(-1)?.source).not.toBe("stream");
  });

  it("falls back to polling when the response cannot be streamed (created without stream)", async () => {
    emulator = await emulatorFor();
    const first = startPolledRun(emulator);
    await until(first, (r) => r.responseId !== null);
    const responseId = first.responseId as string;
    await first.detach();
    const { encodeContinuationToken } = await import("../../src/index.js");
    const token = encodeContinuationToken({ responseId, sequenceNumber: 2 });
    const run = await rehydrateRun({ client: clientFor(emulator) }, { token, options: FAST });
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.segments).toContain("poll-fallback");
    expect(emulator.countCreates()).toBe(1);
  });
});

describe("poll faults", () => {
  it("honours retry-after on 429 and backs off on 5xx, then completes", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    emulator.faults.add({ on: "retrieve", status: { code: 429, retryAfterMs: 100 } });
    emulator.faults.add({ on: "retrieve", status: { code: 503 }, times: 2 });
    const run = startPolledRun(emulator);
    const recorder = new Recorder(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(recorder.text).toBe(result.text);
    const polls = emulator.requests.filter((r) => r.kind === "retrieve");
    expect((polls[1]?.at ?? 0) - (polls[0]?.at ?? 0)).toBeGreaterThanOrEqual(95);
    expect(emulator.countCreates()).toBe(1);
  });

  it("x-should-retry: false on a 5xx is the server's word: no retry", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "retrieve", status: { code: 503, shouldRetry: false } });
    const result = await startPolledRun(emulator).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("rejected");
    expect(result.failure?.shouldRetry).toBe(false);
    expect(emulator.requests.filter((r) => r.kind === "retrieve").length).toBe(1);
  });

  it("waits as long as the server's openai-poll-after-ms asks", async () => {
    emulator = await emulatorFor({ pollAfterMs: 120, tokenDelayMs: 10 });
    const run = startPolledRun(emulator);
    expect((await run.result()).outcome).toBe("completed");
    const polls = emulator.requests.filter((r) => r.kind === "retrieve").map((r) => r.at);
    expect(polls.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < polls.length; i++) {
      expect((polls[i] as number) - (polls[i - 1] as number)).toBeGreaterThanOrEqual(110);
    }
  });

  it("a dropped poll (socket reset) is retried", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "retrieve", reset: {} });
    const result = await startPolledRun(emulator).result();
    expect(result.outcome).toBe("completed");
  });

  it("a garbage reply is a protocol failure, retried", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "retrieve", garbage: {} });
    const run = startPolledRun(emulator);
    await until(run, () => run.getSnapshot().context.lastFailure?.kind === "protocol");
    expect((await run.result()).outcome).toBe("completed");
  });

  it("gives up with retries-exhausted when the server keeps failing", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "retrieve", status: { code: 500 }, times: Number.POSITIVE_INFINITY });
    const result = await startPolledRun(emulator).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("retries-exhausted");
    expect(result.failure?.status).toBe(500);
  });

  it("an unknown or expired response gives up with not-found", async () => {
    const clock = createManualClock(Date.now());
    emulator = await emulatorFor({ clock, queuedMs: 1_000 });
    const run = startPolledRun(emulator, {}, { options: { pollIntervalMs: 50 } });
    await until(run, inState("polling"));
    clock.advance(11 * 60_000);
    const result = await run.result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("not-found");
    expect(result.responseId).toBe(run.responseId);
  });
});

describe("create faults: never a second create", () => {
  it("retries a create rejected with 429 (nothing was created)", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create", status: { code: 429, retryAfterMs: 20 } });
    const result = await startPolledRun(emulator).result();
    expect(result.outcome).toBe("completed");
    expect(emulator.countCreates()).toBe(2);
  });

  it("does not retry a create that failed after the server may have created it", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create", status: { code: 500, afterHandling: true } });
    const run = startPolledRun(emulator);
    const result = await run.result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-unknown");
    expect(emulator.countCreates()).toBe(1);
  });

  it("does not retry a create whose connection broke", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", reset: { afterHandling: true } });
    const result = await startStreamedRun(emulator).result();
    expect(result.reason).toBe("create-unknown");
    expect(emulator.countCreates()).toBe(1);
  });

  it("retries a create when the server cannot be reached, then gives up clearly", async () => {
    emulator = await emulatorFor();
    const url = emulator.url;
    await emulator.close();
    const OpenAI = (await import("openai")).default;
    const client = new OpenAI({ baseURL: url, apiKey: "sk-x" });
    const result = await startRun({
      client,
      model: "o3",
      input: "x",
      options: { ...FAST, retry: { ...FAST.retry, maxAttempts: 3 } },
    }).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-failed");
    expect(result.failure?.kind).toBe("unreachable");
  });

  it("a rejected request (400) fails at once with the server's message", async () => {
    emulator = await emulatorFor();
    const result = await startPolledRun(
      emulator,
      {},
      { request: { previousResponseId: "resp_nope" } },
    ).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-failed");
    expect(result.failure?.kind).toBe("rejected");
    expect(result.failure?.message).toMatch(/not found/);
    expect(emulator.countCreates()).toBe(1);
  });
});

describe("watchdogs", () => {
  for (const stream of [false, true]) {
    it(`stuck in queued (${stream ? "stream" : "poll"}): cancels by default`, async () => {
      emulator = await emulatorFor();
      emulator.faults.add({
        on: stream ? "create-stream" : "create",
        script: { stuckQueued: true },
      });
      const start = stream ? startStreamedRun : startPolledRun;
      const result = await start(emulator, {}, { options: { queuedTimeoutMs: 150 } }).result();
      expect(result.outcome).toBe("cancelled");
      expect(result.cancelledBy).toBe("stuck-queued");
    });
  }

  it("stuck in queued with onStuckQueued 'fail' gives up", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create", script: { stuckQueued: true } });
    const result = await startPolledRun(
      emulator,
      {},
      { options: { queuedTimeoutMs: 100, onStuckQueued: "fail" } },
    ).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("stuck-queued");
  });

  it("the overall deadline cancels a run that takes too long", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 50, outputTokens: 100 });
    const result = await startStreamedRun(emulator, {}, { options: { deadlineMs: 300 } }).result();
    expect(result.outcome).toBe("cancelled");
    expect(result.cancelledBy).toBe("deadline");
  });

  it("a deadline that passes while the create is in flight cancels the response once created", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    emulator.faults.add({ on: "create", stall: { afterEvents: 0, ms: 250 } });
    const run = startPolledRun(emulator, {}, { options: { deadlineMs: 100 } });
    const result = await run.result();
    expect(result.outcome).toBe("cancelled");
    expect(result.cancelledBy).toBe("deadline");
    expect(emulator.getResponse(result.responseId as string)?.status).toBe("cancelled");
  });

  it("a create that does not answer within createTimeoutMs ends create-unknown, never created twice", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create", stall: { afterEvents: 0, ms: 2_000 } });
    const started = Date.now();
    const result = await startPolledRun(
      emulator,
      {},
      { options: { createTimeoutMs: 150 } },
    ).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-unknown");
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(emulator.countCreates()).toBe(1);
  });

  it("the overall deadline with onDeadline 'fail' gives up without cancelling", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 50, outputTokens: 100 });
    const run = startPolledRun(emulator, {}, { options: { deadlineMs: 200, onDeadline: "fail" } });
    const result = await run.result();
    expect(result.reason).toBe("deadline");
    expect(emulator.getResponse(result.responseId as string)?.status).not.toBe("cancelled");
  });
});
