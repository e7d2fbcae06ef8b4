/**
 * What the wire hands the machine: ids the SDK cannot send are refused at once (issue 13.9), a
 * reply about another response is a protocol failure (13.10), and server-given waits are
 * clamped or, when nonsense, ignored (13.3).
 */
import fc from "fast-check";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import {
  ClientFailureError,
  classifyClientError,
  MAX_SERVER_WAIT_MS,
  openAIResponsesClient,
  startRun,
} from "../../src/index.js";
import { parseServerWaitMs, readRetryAfterMs } from "../../src/services/client-failure.js";
import {
  json,
  responseObject,
  type ScriptedServer,
  scriptedServer,
  sse,
} from "../support/scripted-server.js";

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const runs = Number(process.env.SOAK_RUNS ?? 300);
const signal = () => AbortSignal.timeout(10_000);
const sdk = (s: ScriptedServer) => new OpenAI({ baseURL: s.url, apiKey: "sk-local-000000" });

async function failureOf(call: () => Promise<unknown>) {
  try {
    await call();
  } catch (err) {
    expect(err).toBeInstanceOf(ClientFailureError);
    return classifyClientError(err);
  }
  throw new Error("the call did not fail");
}

describe("ids the SDK throws on locally are rejected input", () => {
  it("the SDK's own error for '.' is classified rejected, not connection", async () => {
    server = await scriptedServer((_req, res) => json(res, 200, {}));
    let err: unknown;
    try {
      // The SDK throws before it returns a promise.
      await sdk(server).responses.retrieve("..");
    } catch (caught) {
      err = caught;
    }
    expect(classifyClientError(err).kind).toBe("rejected");
    expect(server.requests).toHaveLength(0);
  });

  it("the port refuses '.', '..', '' and control characters without a request", async () => {
    server = await scriptedServer((_req, res) => json(res, 200, {}));
    const port = openAIResponsesClient(sdk(server));
    for (const id of [".", "..", "", "resp_\u001b[31m", "a b", "x".repeat(2000)]) {
      for (const call of [
        () => port.retrieve(id, signal()),
        () => port.cancel(id, signal()),
        () => port.streamFrom(id, 3, signal()),
      ]) {
        expect((await failureOf(call)).kind).toBe("rejected");
      }
    }
    expect(server.requests).toHaveLength(0);
  });

  it("a run whose response id is '.' ends at once as rejected, without a retrieve", async () => {
    server = await scriptedServer((req, res) =>
      req.method === "POST" ? json(res, 200, responseObject(".", "queued")) : json(res, 500, {}),
    );
    const run = startRun({
      client: sdk(server),
      model: "o3",
      input: "x",
      options: {
        pollIntervalMs: 5,
        retry: { maxAttempts: 50, baseDelayMs: 50, maxDelayMs: 1000, jitter: 0 },
      },
    });
    const result = await run.result();
    expect(result.outcome).toBe("gave-up");
    expect(result.failure?.kind).toBe("rejected");
    expect(server.requests.map((r) => r.method)).toEqual(["POST"]);
  });
});

describe("a reply about another response is a protocol failure", () => {
  it("retrieve, cancel and stream", async () => {
    server = await scriptedServer((req, res) => {
      if (req.url.includes("stream=true")) {
        return sse(res, [
          { type: "response.in_progress", response: responseObject("resp_other", "in_progress") },
        ]);
      }
      return json(res, 200, responseObject("resp_other", "completed"));
    });
    const port = openAIResponsesClient(sdk(server));
    expect((await failureOf(() => port.retrieve("resp_ours", signal()))).kind).toBe("protocol");
    expect((await failureOf(() => port.cancel("resp_ours", signal()))).kind).toBe("protocol");
    const failure = await failureOf(async () => {
      for await (const _event of await port.streamFrom("resp_ours", 0, signal())) {
        // read to the end
      }
    });
    expect(failure.kind).toBe("protocol");
    expect(failure.message).toContain("resp_other");
  });

  it("a create's stream that changes response id halfway", async () => {
    server = await scriptedServer((_req, res) =>
      sse(res, [
        { type: "response.created", response: responseObject("resp_a", "queued") },
        { type: "response.in_progress", response: responseObject("resp_b", "in_progress") },
      ]),
    );
    const port = openAIResponsesClient(sdk(server));
    const stream = await port.createStream({ model: "o3", input: "x" }, signal());
    const seen: number[] = [];
    const failure = await failureOf(async () => {
      for await (const event of stream) seen.push(event.sequenceNumber);
    });
    expect(seen).toEqual([0]);
    expect(failure.kind).toBe("protocol");
  });
});

describe("server-given waits", () => {
  it("parse: nonsense is absent, sense is clamped to MAX_SERVER_WAIT_MS", () => {
    expect(MAX_SERVER_WAIT_MS).toBe(600_000);
    const cases: [string, 1 | 1000, number | undefined][] = [
      ["2", 1000, 2000],
      ["0.5", 1000, 500],
      ["0.30000000000000004", 1, 0.30000000000000004],
      ["20", 1, 20],
      [" 7 ", 1, 7],
      ["3600", 1000, MAX_SERVER_WAIT_MS],
      ["-5", 1, undefined],
      ["-1", 1000, undefined],
      ["NaN", 1, undefined],
      ["Infinity", 1, undefined],
      ["1e308", 1, undefined],
      ["1e3", 1, undefined],
      ["5abc", 1, undefined],
      ["", 1, undefined],
      ["999999999", 1000, undefined],
      ["Fri, 01 Jan 2099 00:00:00 GMT", 1000, undefined],
      ["Thu, 01 Jan 1970 00:00:00 GMT", 1000, 0],
      ["Fri, 01 Jan 2099 00:00:00 GMT", 1, undefined],
      ["tomorrow 2", 1000, undefined],
    ];
    for (const [raw, unit, expected] of cases) {
      expect(parseServerWaitMs(raw, unit), `${raw} (unit ${unit})`).toBe(expected);
    }
    const soon = new Date(Date.now() + 60 * 60_000).toUTCString();
    expect(parseServerWaitMs(soon, 1000)).toBe(MAX_SERVER_WAIT_MS);
  });

  it("parse: any header value is absent or a wait in [0, MAX_SERVER_WAIT_MS]", () => {
    const value = fc.oneof(
      fc.string(),
      fc.double().map(String),
      fc.integer().map(String),
      fc
        .date({ noInvalidDate: false })
        .map((d) => (Number.isNaN(d.getTime()) ? "Invalid" : d.toUTCString())),
    );
    fc.assert(
      fc.property(value, fc.constantFrom(1 as const, 1000 as const), (raw, unit) => {
        const ms = parseServerWaitMs(raw, unit);
        return ms === undefined || (Number.isFinite(ms) && ms >= 0 && ms <= MAX_SERVER_WAIT_MS);
      }),
      { numRuns: runs * 10 },
    );
  });

  it("retry-after-ms wins; when it is nonsense, retry-after is read", () => {
    expect(readRetryAfterMs(new Headers({ "retry-after-ms": "20", "retry-after": "5" }))).toBe(20);
    expect(
      readRetryAfterMs(
        new Headers({ "retry-after-ms": "-5", "retry-after": "Fri, 01 Jan 2099 00:00:00 GMT" }),
      ),
    ).toBeUndefined();
    expect(readRetryAfterMs(new Headers({ "retry-after-ms": "-5", "retry-after": "1" }))).toBe(
      1000,
    );
  });

  it("over the wire: 429 retry-after and openai-poll-after-ms", async () => {
    let headers: Record<string, string> = {};
    server = await scriptedServer((req, res) =>
      req.url.includes("/fail")
        ? json(res, 429, { error: { message: "slow down" } }, headers)
        : json(res, 200, responseObject("resp_1", "in_progress"), headers),
    );
    const port = openAIResponsesClient(sdk(server));
    const pollAfter = async (value: string) => {
      headers = { "openai-poll-after-ms": value };
      return (await port.retrieve("resp_1", signal())).pollAfterMs;
    };
    expect(await pollAfter("1e308")).toBeUndefined();
    expect(await pollAfter("-5")).toBeUndefined();
    expect(await pollAfter("3600000")).toBe(MAX_SERVER_WAIT_MS);
    expect(await pollAfter("250")).toBe(250);
    const retryAfter = async (h: Record<string, string>) => {
      headers = h;
      const failure = await failureOf(() => port.cancel("fail", signal()));
      expect(failure.kind).toBe("rate-limited");
      return failure.retryAfterMs;
    };
    expect(await retryAfter({ "retry-after": "999999999" })).toBeUndefined();
    expect(await retryAfter({ "retry-after-ms": "NaN", "retry-after": "2" })).toBe(2000);
    expect(await retryAfter({ "retry-after": "3600" })).toBe(MAX_SERVER_WAIT_MS);
  });
});
