/**
 * Issue 13.4: a deadline that cancel cannot meet. A server that keeps answering `in_progress`
 * after a cancel used to loop cancel → retrieve forever; the deadline now ends the run once
 * `cancelGraceMs` is over, and the result says the cancel was not confirmed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startRun } from "../../src/index.js";
import {
  type FakeServer,
  fakeResponse,
  sendJson,
  sseFrame,
  startFakeServer,
} from "../support/fake-server.js";

let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/**
 * Creates, then answers `in_progress` to every read and every cancel, forever; a stream sends
 * `response.created` (from a create) and nothing more.
 */
function neverFinishes() {
  return startFakeServer((request, res) => {
    const streamed =
      request.body.includes('"stream":true') || request.query.get("stream") === "true";
    if (streamed) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (request.method === "POST") {
        const response = fakeResponse("resp_stuck", "queued");
        res.write(sseFrame({ type: "response.created", sequence_number: 0, response }));
      }
      return; // and nothing more, ever
    }
    if (request.method === "POST" && request.path === "/responses") {
      return sendJson(res, 200, fakeResponse("resp_stuck", "queued"));
    }
    return sendJson(res, 200, fakeResponse("resp_stuck", "in_progress", "partial"));
  });
}

describe("a deadline ends the run whatever the cancel does", () => {
  it.each([
    ["poll", false],
    ["stream", true],
  ] as const)("%s mode: the server never confirms the cancel", async (_mode, stream) => {
    server = await neverFinishes();
    const run = startRun({
      client: server.client(),
      model: "o3",
      input: "x",
      stream,
      options: {
        deadlineMs: 400,
        cancelGraceMs: 300,
        pollIntervalMs: 20,
        retry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, jitter: 0 },
        // Long enough for a cold create on a loaded machine (the create may answer until the
        // deadline plus this); the deadline comes first.
        firstEventTimeoutMs: 5_000,
        idleTimeoutMs: 5_000,
      },
    });
    const result = await run.result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("deadline");
    expect(result.cancelConfirmed).toBe(false);
    expect(result.responseId).toBe("resp_stuck");
    const cancels = server.requests.filter((r) => r.path.endsWith("/cancel")).length;
    expect(cancels).toBeGreaterThanOrEqual(1);
    // Bounded by the grace, not by a request budget: no more cancels once the run is done.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.requests.filter((r) => r.path.endsWith("/cancel")).length).toBe(cancels);
  });

  it("a cancel the server confirms in time still ends cancelled (deadline)", async () => {
    let cancelled = false;
    server = await startFakeServer((request, res) => {
      if (request.method === "POST" && request.path === "/responses") {
        return sendJson(res, 200, fakeResponse("resp_ok", "queued"));
      }
      if (request.path.endsWith("/cancel")) cancelled = true;
      sendJson(res, 200, fakeResponse("resp_ok", cancelled ? "cancelled" : "in_progress"));
    });
    const result = await startRun({
      client: server.client(),
      model: "o3",
      input: "x",
      options: { deadlineMs: 100, cancelGraceMs: 5_000, pollIntervalMs: 20 },
    }).result();
    expect(result.outcome).toBe("cancelled");
    expect(result.cancelledBy).toBe("deadline");
    expect(result.cancelConfirmed).toBeUndefined();
  });
});
