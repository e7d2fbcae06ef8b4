/**
 * Behaviours no honest emulator produces (a server that skips sequence numbers), checked with
 * a scripted implementation of the client port: the port is the seam users swap too.
 */
import { describe, expect, it } from "vitest";
import {
  classifyClientError,
  type ResponseState,
  type ResponseStreamEvent,
  type ResponsesClient,
  startRun,
} from "../../src/index.js";
import { backoffDelay } from "../../src/machines/backoff.js";

const words = ["One", " two", " three", " four", " five", " six"];

function response(status: ResponseState["status"], upto = words.length): ResponseState {
  return {
    id: "resp_s",
    status,
    outputText: words.slice(0, upto).join(""),
    usage: null,
    error: null,
    incompleteReason: null,
    createdAt: 1,
  };
}

function log(): ResponseStreamEvent[] {
  return [
    { kind: "lifecycle", sequenceNumber: 0, response: response("queued", 0) },
    ...words.map((text, i) => ({ kind: "delta" as const, sequenceNumber: i + 1, text })),
    { kind: "terminal", sequenceNumber: words.length + 1, response: response("completed") },
  ];
}

function streamOf(events: ResponseStreamEvent[]) {
  return {
    abort() {},
    async *[Symbol.asyncIterator]() {
      for (const event of events) {
        await new Promise((r) => setImmediate(r));
        yield event;
      }
    },
  };
}

describe("sequence numbers", () => {
  it("a gap interrupts the stream and resumes from the last contiguous event", async () => {
    const resumedAfter: Array<number | undefined> = [];
    const client: ResponsesClient = {
      create: () => Promise.reject(new Error("unused")),
      // The first stream skips sequence number 3.
      createStream: async () => streamOf(log().filter((e) => e.sequenceNumber !== 3)),
      retrieve: () => Promise.reject(new Error("unused")),
      streamFrom: async (_id, after) => {
        resumedAfter.push(after);
        return streamOf(log().filter((e) => e.sequenceNumber > (after ?? -1)));
      },
      cancel: () => Promise.reject(new Error("unused")),
    };
    const run = startRun({
      client,
      model: "m",
      input: "x",
      stream: true,
      options: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1, jitter: 0 } },
    });
    const seen: number[] = [];
    let text = "";
    run.on("delta", (d) => {
      seen.push(d.sequenceNumber as number);
      text += d.text;
    });
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(text).toBe(words.join(""));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(resumedAfter).toEqual([2]);
    expect(run.getSnapshot().context.interruption).toBe("gap");
  });

  it("events repeated by the server are delivered once", async () => {
    const client: ResponsesClient = {
      create: () => Promise.reject(new Error("unused")),
      createStream: async () => {
        const events = log();
        return streamOf([...events.slice(0, 4), ...events.slice(1)]);
      },
      retrieve: () => Promise.reject(new Error("unused")),
      streamFrom: () => Promise.reject(new Error("unused")),
      cancel: () => Promise.reject(new Error("unused")),
    };
    const run = startRun({ client, model: "m", input: "x", stream: true });
    let text = "";
    run.on("delta", (d) => {
      text += d.text;
    });
    await run.result();
    expect(text).toBe(words.join(""));
  });
});

describe("classifyClientError", () => {
  it("maps the SDK's errors by status and message", () => {
    const make = (status: number, message: string, headers: Record<string, string> = {}) =>
      Object.assign(new Error(`${status} ${message}`), {
        status,
        headers: new Headers(headers),
        error: { message, code: null },
      });
    expect(classifyClientError(make(429, "slow down", { "retry-after-ms": "250" }))).toMatchObject({
      kind: "rate-limited",
      retryAfterMs: 250,
    });
    expect(classifyClientError(make(429, "slow", { "retry-after": "2" })).retryAfterMs).toBe(2000);
    expect(classifyClientError(make(503, "busy")).kind).toBe("server");
    expect(classifyClientError(make(404, "Response with id 'x' not found.")).kind).toBe(
      "not-found",
    );
    expect(
      classifyClientError(
        make(400, "This response can no longer be streamed because it is more than 5 minutes old"),
      ).kind,
    ).toBe("replay-expired");
    expect(
      classifyClientError(
        make(400, "Response cannot be streamed, it was not created with background=true."),
      ).kind,
    ).toBe("not-streamable");
    expect(classifyClientError(make(400, "Cannot cancel a completed response.")).kind).toBe(
      "already-finished",
    );
    expect(classifyClientError(make(401, "bad key")).kind).toBe("unauthorized");
    expect(classifyClientError(make(400, "invalid")).kind).toBe("rejected");
  });

  it("maps a dropped stream, a refused connection and a garbage body", () => {
    const terminated = Object.assign(new TypeError("terminated"), {
      cause: { code: "UND_ERR_SOCKET" },
    });
    expect(classifyClientError(terminated).kind).toBe("connection");
    const refused = Object.assign(new Error("Connection error."), {
      cause: { cause: { code: "ECONNREFUSED" } },
    });
    expect(classifyClientError(refused).kind).toBe("unreachable");
    expect(
      classifyClientError(new TypeError("Cannot use 'in' operator to search for 'x' in oops")).kind,
    ).toBe("protocol");
  });
});

describe("backoff", () => {
  it("doubles, caps, takes jitter off and honours retry-after", () => {
    const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000, jitter: 0.5 };
    expect(backoffDelay(0, policy, undefined, () => 0)).toBe(100);
    expect(backoffDelay(3, policy, undefined, () => 0)).toBe(800);
    expect(backoffDelay(9, policy, undefined, () => 0)).toBe(1_000);
    expect(backoffDelay(3, policy, undefined, () => 1)).toBe(400);
    expect(backoffDelay(0, policy, 5_000, () => 0)).toBe(5_000);
  });
});
