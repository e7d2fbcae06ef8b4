/**
 * Issue 13.3: waits a server asks for are bounded where the machine computes a wake time.
 * `retry-after: 999999999` used to set the next wake 31.7 years out, `openai-poll-after-ms:
 * 1e308` never woke. Generated header values (fast-check) over the real SDK and a server that
 * sends them: every wake is at most MAX_SERVER_WAIT_MS away, and nonsense is taken as absent
 * (the run's own backoff applies). Also issue 12.2: retry-after is honoured as asked, not as a
 * floor under a long backoff.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeContinuationToken, type Run, rehydrateRun } from "../../src/index.js";
import { backoffDelay, resumeDelay } from "../../src/machines/backoff.js";
import {
  MAX_SERVER_WAIT_MS,
  NONSENSE_SERVER_WAIT_MS,
  readRetryAfterMs,
  serverWait,
} from "../../src/services/client-failure.js";
import {
  type FakeServer,
  fakeResponse,
  sendJson,
  startFakeServer,
} from "../support/fake-server.js";

const runs = Number(process.env.SOAK_RUNS ?? process.env.PROPERTY_RUNS ?? 60);
const POLICY = { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 50, jitter: 0 };

/** Header values a server may send: numbers of every size and sign, dates, garbage. */
const headerValue = fc.oneof(
  fc.integer({ min: -1_000_000_000, max: 2_000_000_000 }).map(String),
  fc.double({ noNaN: false }).map(String),
  fc.constantFrom("NaN", "Infinity", "-Infinity", "1e308", "-5", "0", "", " 7 ", "abc", "0x10"),
  fc
    .integer({ min: -100 * 365 * 86_400, max: 100 * 365 * 86_400 })
    .map((s) => new Date(Date.now() + s * 1000).toUTCString()),
  fc.string({ maxLength: 12 }),
);

let server: FakeServer;
let headers: Record<string, string> = {};
let pollAnswer: "429" | "503" | "in_progress" = "429";

beforeAll(async () => {
  server = await startFakeServer((_request, res) => {
    if (pollAnswer === "in_progress") {
      return sendJson(res, 200, fakeResponse("resp_wait", "in_progress"), headers);
    }
    const code = pollAnswer === "429" ? 429 : 503;
    sendJson(
      res,
      code,
      { error: { message: "wait", type: "x", code: null, param: null } },
      headers,
    );
  });
});
afterAll(async () => {
  await server.close();
});

/** Polls once by token and reads how far off the next wake was set. */
async function nextWakeAfterOnePoll(): Promise<number> {
  const run: Run = await rehydrateRun(
    { client: server.client() },
    {
      token: encodeContinuationToken({ responseId: "resp_wait" }),
      options: { pollIntervalMs: 10, retry: POLICY },
    },
  );
  try {
    const before = server.requests.length;
    return await new Promise<number>((resolve, reject) => {
      const check = () => {
        const snapshot = run.getSnapshot();
        if (snapshot.status !== "active") return reject(new Error(`run ended: ${run.state}`));
        const waiting = snapshot.matches({ polling: "waiting" });
        if (waiting && server.requests.length > before && snapshot.context.wakeAt !== null) {
          sub.unsubscribe();
          resolve(snapshot.context.wakeAt - Date.now());
        }
      };
      const sub = run.subscribe({ next: check, error: reject });
      check();
    });
  } finally {
    run.actor.stop();
  }
}

/** What the port parsed from the headers, in ms (the machine bounds it, whatever it is). */
function asked(values: Record<string, string>): number | undefined {
  return readRetryAfterMs(values);
}

describe("server-given waits", () => {
  it("serverWait: finite, non-negative, at most the maximum; nonsense is absent", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: false }), (ms) => {
        const wait = serverWait(ms);
        if (!Number.isFinite(ms) || ms < 0 || ms > NONSENSE_SERVER_WAIT_MS) {
          expect(wait).toBeUndefined();
        } else {
          expect(wait).toBe(Math.min(ms, MAX_SERVER_WAIT_MS));
        }
        const delay = backoffDelay(3, POLICY, ms);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS);
        // As asked when it makes sense, not a floor under the backoff.
        expect(delay).toBe(wait ?? 50);
        const resume = resumeDelay(3, POLICY, ms);
        expect(resume).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS);
      }),
      { numRuns: runs * 20 },
    );
  });

  it("retry-after is honoured as asked, not as a floor under a long backoff", () => {
    const defaults = { maxAttempts: 8, baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0.25 };
    for (let attempt = 0; attempt < 8; attempt++) {
      expect(backoffDelay(attempt, defaults, 20)).toBe(20);
      expect(resumeDelay(attempt, defaults, 20)).toBe(20);
    }
  });

  for (const [name, answer] of [
    ["a 429's retry-after / retry-after-ms", "429"],
    ["a 503's retry-after / retry-after-ms", "503"],
  ] as const) {
    it(`${name}: every wake bounded, nonsense taken as absent (real SDK, real HTTP)`, async () => {
      pollAnswer = answer;
      await fc.assert(
        fc.asyncProperty(
          fc.record(
            { "retry-after": headerValue, "retry-after-ms": headerValue },
            { requiredKeys: [] },
          ),
          async (values) => {
            headers = values;
            const wake = await nextWakeAfterOnePoll();
            expect(wake).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS + 50);
            const parsed = asked(values);
            if (
              parsed === undefined ||
              !Number.isFinite(parsed) ||
              parsed < 0 ||
              parsed > NONSENSE_SERVER_WAIT_MS
            ) {
              expect(wake).toBeLessThanOrEqual(POLICY.maxDelayMs + 50);
            }
          },
        ),
        { numRuns: runs },
      );
    });
  }

  it("openai-poll-after-ms: every wake bounded (real SDK, real HTTP)", async () => {
    pollAnswer = "in_progress";
    await fc.assert(
      fc.asyncProperty(headerValue, async (value) => {
        headers = { "openai-poll-after-ms": value };
        const wake = await nextWakeAfterOnePoll();
        expect(wake).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS + 50);
      }),
      { numRuns: runs },
    );
  });

  it("the examples of the issue", async () => {
    pollAnswer = "429";
    const examples: Record<string, string>[] = [
      { "retry-after": "999999999" },
      { "retry-after-ms": "-5", "retry-after": "Thu, 01 Jan 2099 00:00:00 GMT" },
      { "retry-after-ms": "1e308" },
    ];
    for (const values of examples) {
      headers = values;
      expect(await nextWakeAfterOnePoll()).toBeLessThanOrEqual(POLICY.maxDelayMs + 50);
    }
    pollAnswer = "in_progress";
    headers = { "openai-poll-after-ms": "1e308" };
    expect(await nextWakeAfterOnePoll()).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS + 50);
    headers = { "retry-after": "3600" };
    pollAnswer = "429";
    const hour = await nextWakeAfterOnePoll();
    expect(hour).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS);
    expect(hour).toBeGreaterThan(MAX_SERVER_WAIT_MS - 5_000);
  });
});
