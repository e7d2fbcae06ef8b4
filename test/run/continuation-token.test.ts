import { describe, expect, it } from "vitest";
import {
  decodeContinuationToken,
  encodeContinuationToken,
  InvalidContinuationTokenError,
} from "../../src/index.js";

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

describe("continuation token", () => {
  it("round-trips with and without a sequence number", () => {
    const withSeq = encodeContinuationToken({ responseId: "resp_1", sequenceNumber: 17 });
    expect(withSeq.startsWith("bt1.")).toBe(true);
    expect(decodeContinuationToken(withSeq)).toEqual({ responseId: "resp_1", sequenceNumber: 17 });
    const poll = encodeContinuationToken({ responseId: "resp_2" });
    expect(decodeContinuationToken(poll)).toEqual({ responseId: "resp_2" });
  });

  it("is opaque: no API key, nothing but the id and cursor", () => {
    const token = encodeContinuationToken({ responseId: "resp_9", sequenceNumber: 3 });
    const inside = Buffer.from(token.slice(4), "base64url").toString();
    expect(JSON.parse(inside)).toEqual({
      responseId: "resp_9",
      sequenceNumber: 3,
      c: expect.stringMatching(/^[A-Za-z0-9_-]{8}$/), // the checksum (issue 13.8)
    });
  });

  const cases: Array<[string, string, InvalidContinuationTokenError["reason"], RegExp]> = [
    ["empty", "", "malformed", /empty/],
    ["a .NET token (base64 JSON, no prefix)", b64({ responseId: "r" }), "foreign", /not a baton/],
    ["a Python dict", '{"response_id":"resp_1"}', "foreign", /not a baton/],
    ["a future version", `bt2.${b64({ responseId: "r" })}`, "unsupported-version", /version 2/],
    ["bad base64 JSON", "bt1.bm90LWpzb24", "malformed", /base64 JSON/],
    ["an array", `bt1.${b64([1])}`, "malformed", /no object/],
    ["no responseId", `bt1.${b64({ sequenceNumber: 1 })}`, "malformed", /responseId/],
    ["unknown fields", `bt1.${b64({ responseId: "r", apiKey: "x" })}`, "malformed", /apiKey/],
    [
      "negative sequence",
      `bt1.${b64({ responseId: "r", sequenceNumber: -1 })}`,
      "malformed",
      /sequenceNumber/,
    ],
    [
      "fractional sequence",
      `bt1.${b64({ responseId: "r", sequenceNumber: 1.5 })}`,
      "malformed",
      /sequenceNumber/,
    ],
  ];
  for (const [name, token, reason, message] of cases) {
    it(`refuses ${name} with a typed error`, () => {
      let caught: unknown;
      try {
        decodeContinuationToken(token);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidContinuationTokenError);
      const error = caught as InvalidContinuationTokenError;
      expect(error.reason).toBe(reason);
      expect(error.message).toMatch(message);
    });
  }
});
