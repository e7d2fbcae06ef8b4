/**
 * Issue 12.3: requests that hang. Every request now has a bounded time of its own
 * (`requestTimeoutMs` for polls, checks, cancels and a resumed stream's headers;
 * `createTimeoutMs` for the create), and a request past it fails as `timeout`, whose message
 * says "timed out", not "cannot reach". Against the emulator's stall faults and a node:http
 * server that never answers, with the real SDK.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { encodeContinuationToken, type Run, rehydrateRun, startRun } from "../../src/index.js";
import type { ClientFailure } from "../../src/services/client-failure.js";
import { emulatorClient, emulatorWithFaults } from "../../src/testing/index.js";
import {
  type FakeServer,
  fakeResponse,
  sendJson,
  startFakeServer,
} from "../support/fake-server.js";

let emulator: Emulator | undefined;
let server: FakeServer | undefined;
afterEach(async () => {
  await emulator?.close();
  await server?.close();
  emulator = undefined;
  server = undefined;
});

const FAST_RETRY = { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, jitter: 0 };

/** Every failure the run met, in order. */
function failuresOf(run: Run): ClientFailure[] {
  const seen: ClientFailure[] = [];
  run.subscribe({
    next: () => {
      const failure = run.getSnapshot().context.lastFailure;
      if (failure && seen.at(-1) !== failure) seen.push(failure);
    },
  });
  return seen;
}

function expectTimedOut(failure: ClientFailure | undefined, what: string): void {
  expect(failure?.kind).toBe("timeout");
  expect(failure?.message).toMatch(new RegExp(`${what} timed out`));
  expect(failure?.message).not.toMatch(/cannot reach/i);
}

describe("every request has a time limit of its own", () => {
  it("a stalled poll times out and is retried", async () => {
    emulator = await emulatorWithFaults([{ on: "retrieve", stall: { afterEvents: 0 } }], {
      tokenDelayMs: 1,
    });
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      options: { pollIntervalMs: 10, retry: FAST_RETRY, requestTimeoutMs: 200 },
    });
    const failures = failuresOf(run);
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expectTimedOut(failures[0], "poll");
  });

  it("a stalled cancel times out and is retried", async () => {
    emulator = await emulatorWithFaults([{ on: "cancel", stall: { afterEvents: 0 } }], {
      tokenDelayMs: 50,
      outputTokens: 200,
    });
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      options: { pollIntervalMs: 10, retry: FAST_RETRY, requestTimeoutMs: 200 },
    });
    const failures = failuresOf(run);
    while (run.responseId === null) await new Promise((resolve) => setTimeout(resolve, 5));
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    expectTimedOut(failures[0], "cancel");
  });

  it("a resumed stream whose headers never come times out (not after firstEventTimeoutMs)", async () => {
    // The stream's GET is never answered; a plain retrieve says the response is running.
    server = await startFakeServer((request, res) => {
      if (request.query.get("stream") === "true") return; // never answers
      sendJson(res, 200, fakeResponse("resp_hang", "in_progress"));
    });
    const run = await rehydrateRun(
      { client: server.client() },
      {
        token: encodeContinuationToken({ responseId: "resp_hang", sequenceNumber: 3 }),
        options: {
          retry: FAST_RETRY,
          requestTimeoutMs: 200,
          firstEventTimeoutMs: 600_000,
          idleTimeoutMs: 600_000,
        },
      },
    );
    const failures = failuresOf(run);
    try {
      await new Promise<void>((resolve) => {
        const sub = run.subscribe({
          next: () => {
            if (failures.length > 0) {
              sub.unsubscribe();
              resolve();
            }
          },
        });
      });
      expectTimedOut(failures[0], "resume");
      expect(run.getSnapshot().context.interruption).toBe("resume-failed");
    } finally {
      run.actor.stop();
    }
  });

  it("a create that never answers times out: the run says timed out, and may have created", async () => {
    server = await startFakeServer(() => {}); // accepts, never answers
    const result = await startRun({
      client: server.client(),
      model: "o3",
      input: "x",
      options: { createTimeoutMs: 200 },
    }).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-unknown");
    expectTimedOut(result.failure, "create");
  });

  it("a streamed create with no response.created in time times out the same way", async () => {
    server = await startFakeServer((_request, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" }); // and no event, ever
    });
    const result = await startRun({
      client: server.client(),
      model: "o3",
      input: "x",
      stream: true,
      options: { createTimeoutMs: 200 },
    }).result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-unknown");
    expectTimedOut(result.failure, "create");
  });
});

describe("the SDK's own timeout", () => {
  it("is classified as timeout, not as a connection that cannot be reached", async () => {
    const { classifyClientError } = await import("../../src/services/client-failure.js");
    const OpenAI = (await import("openai")).default;
    const failure = classifyClientError(new OpenAI.APIConnectionTimeoutError());
    expect(failure.kind).toBe("timeout");
    expect(failure.message).toMatch(/timed out/);
  });
});
