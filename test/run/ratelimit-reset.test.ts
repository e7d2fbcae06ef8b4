/**
 * Issue 15 (shared backoff needs a wait to share): a 429 without `retry-after` but with
 * OpenAI's `x-ratelimit-remaining-*: 0` and `x-ratelimit-reset-*` (`6m0s`, `1.5s`, `20ms`) names
 * its wait through the reset of the spent limit. Generated durations and garbage (fast-check):
 * never a throw, never past MAX_SERVER_WAIT_MS; over the real SDK, the classified failure
 * carries the wait and the run's retry honours it.
 */
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  classifyClientError,
  MAX_SERVER_WAIT_MS,
  parseResetDuration,
  readRateLimitResetMs,
} from "../../src/services/client-failure.js";
import {
  type FakeServer,
  fakeResponse,
  sendJson,
  startFakeServer,
} from "../support/fake-server.js";

const runs = Number(process.env.SOAK_RUNS ?? process.env.PROPERTY_RUNS ?? 200);

describe("parseResetDuration", () => {
  it.each([
    ["1s", 1_000],
    ["6m0s", 360_000],
    ["59.88s", 59_880],
    ["12ms", 12],
    ["1m30.5s", 90_500],
    ["2h", MAX_SERVER_WAIT_MS],
    ["", undefined],
    ["soon", undefined],
    ["5", undefined],
    ["-1s", undefined],
    ["1e3s", undefined],
  ])("%j → %j", (raw, ms) => {
    expect(parseResetDuration(raw)).toBe(ms);
  });

  it("never throws and never names a wait past MAX_SERVER_WAIT_MS (generated)", () => {
    const duration = fc
      .tuple(
        fc.option(fc.nat(99), { nil: undefined }),
        fc.option(fc.nat(99), { nil: undefined }),
        fc.option(fc.double({ min: 0, max: 1e6, noNaN: true }), { nil: undefined }),
        fc.option(fc.nat(1e6), { nil: undefined }),
      )
      .map(
        ([h, m, s, ms]) =>
          `${h !== undefined ? `${h}h` : ""}${m !== undefined ? `${m}m` : ""}${s !== undefined ? `${s}s` : ""}${ms !== undefined ? `${ms}ms` : ""}`,
      );
    fc.assert(
      fc.property(fc.oneof(duration, fc.string({ maxLength: 50 })), (raw) => {
        const ms = parseResetDuration(raw);
        if (ms !== undefined) {
          expect(Number.isFinite(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(0);
          expect(ms).toBeLessThanOrEqual(MAX_SERVER_WAIT_MS);
        }
      }),
      { numRuns: runs },
    );
  });
});

describe("readRateLimitResetMs", () => {
  it("takes the reset of a spent limit only, the longer of two spent ones", () => {
    const h = (entries: Record<string, string>) => new Headers(entries);
    expect(
      readRateLimitResetMs(
        h({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s" }),
      ),
    ).toBe(2_000);
    expect(
      readRateLimitResetMs(
        h({ "x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "2s" }),
      ),
    ).toBeUndefined();
    expect(
      readRateLimitResetMs(
        h({
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "2s",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-tokens": "6m0s",
        }),
      ),
    ).toBe(360_000);
  });
});

describe("over the real SDK", () => {
  let server: FakeServer;
  let answered = 0;
  beforeAll(async () => {
    server = await startFakeServer((_request, res) => {
      answered++;
      if (answered === 1) {
        return sendJson(
          res,
          429,
          { error: { message: "Rate limit reached", type: "requests", code: null, param: null } },
          {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "250ms",
            "x-ratelimit-remaining-tokens": "9000",
            "x-ratelimit-reset-tokens": "9s",
          },
        );
      }
      sendJson(res, 200, fakeResponse("resp_reset", "completed"));
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it("a 429 naming its wait by x-ratelimit-reset is classified with that wait", async () => {
    const client = new OpenAI({ baseURL: server.url, apiKey: "sk-x", maxRetries: 0 });
    const error = await client.responses.retrieve("resp_reset").then(
      () => undefined,
      (err: unknown) => err,
    );
    const failure = classifyClientError(error);
    expect(failure.kind).toBe("rate-limited");
    expect(failure.retryAfterMs).toBe(250);
  });
});
