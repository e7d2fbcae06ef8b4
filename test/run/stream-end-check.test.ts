/**
 * Issue 12.2: a stream that ends without a terminal event must not cost minutes. A cancel from
 * another client ends live streams with no terminal event (the emulator's `streamOnCancel:
 * "close"`, as the service may); the follower used to resume 8 times with backoff up to 30 s
 * (74-78 s). Now one retrieve after the stream ends finds the response terminal and the run
 * finishes, with the text the consumer had not had, exactly once. Default options throughout:
 * what a user gets.
 */
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { type Run, startRun } from "../../src/index.js";
import { emulatorClient } from "../../src/testing/index.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

/** The run's result, or a failure well before the old 74 s (a loose bound for a loaded machine). */
function resultSoon(run: Run, ms = 20_000) {
  return Promise.race([
    run.result(),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still ${run.state} after ${ms} ms`)), ms).unref(),
    ),
  ]);
}

describe("a stream that ends without a terminal event", () => {
  it.each(["close", "failed-event"] as const)(
    "a cancel from another client ends a streaming follower (streamOnCancel: %s)",
    async (streamOnCancel) => {
      emulator = await startEmulator({ tokenDelayMs: 10, outputTokens: 400, streamOnCancel });
      const run = startRun({
        client: emulatorClient(emulator),
        model: "o3",
        input: "x",
        stream: true,
      });
      let text = "";
      const sources: string[] = [];
      run.on("delta", (delta) => {
        text += delta.text;
        sources.push(delta.source);
      });
      while (text.length < 20) await new Promise((resolve) => setTimeout(resolve, 5));
      // Another process, another client: cancels the response by id.
      const other = new OpenAI({ baseURL: emulator.url, apiKey: "sk-other", maxRetries: 0 });
      const cancelled = await other.responses.cancel(run.responseId as string);
      expect(cancelled.status).toBe("cancelled");
      const resumesBefore = emulator.requests.filter((r) => r.kind === "retrieve-stream").length;

      const result = await resultSoon(run);
      expect(result.outcome).toBe("cancelled");
      // Everything the server made, each character once, and the run's text is the server's.
      expect(text).toBe(result.text);
      const stored = emulator.getResponse(run.responseId as string);
      expect(result.text).toBe(
        stored?.output.map((m) => m.content.map((p) => p.text).join("")).join(""),
      );
      // No resume loop: at most one resume after the cancel.
      const resumes = emulator.requests.filter((r) => r.kind === "retrieve-stream").length;
      expect(resumes - resumesBefore).toBeLessThanOrEqual(1);
      if (streamOnCancel === "close")
        expect(run.getSnapshot().context.interruption).toBe("ended-early");
    },
  );

  it("a stream cut after the response completed finishes from the check, text exactly once", async () => {
    emulator = await startEmulator({
      tokenDelayMs: 0,
      outputTokens: 60,
      faults: [{ on: "create-stream", drop: { afterEvents: 10 } }],
    });
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      stream: true,
    });
    let text = "";
    run.on("delta", (delta) => {
      text += delta.text;
    });
    const result = await resultSoon(run);
    expect(result.outcome).toBe("completed");
    expect(text).toBe(result.text);
    // The response was done when the stream broke: no resume was needed.
    expect(emulator.requests.filter((r) => r.kind === "retrieve-stream")).toHaveLength(0);
  });

  it("a 429 asking for 20 ms, five times, costs no backoff (retry-after as asked)", async () => {
    emulator = await startEmulator({
      tokenDelayMs: 1,
      outputTokens: 30,
      faults: [
        { on: "create-stream", drop: { afterEvents: 5 } },
        { on: "retrieve-stream", status: { code: 429, retryAfterMs: 20 }, times: 5 },
        { on: "retrieve", status: { code: 429, retryAfterMs: 20 }, times: 5 },
      ],
    });
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      stream: true,
    });
    const waits: number[] = [];
    run.subscribe({
      next: () => {
        const snapshot = run.getSnapshot();
        if (snapshot.matches({ interrupted: "backoff" }) && snapshot.context.wakeAt !== null) {
          waits.push(snapshot.context.wakeAt - Date.now());
        }
      },
    });
    const result = await resultSoon(run);
    expect(result.outcome).toBe("completed");
    // Every wait the run set was what the server asked, or the gentle resume backoff.
    for (const wait of waits) expect(wait).toBeLessThanOrEqual(2_000);
  });
});
