/**
 * Issue 13.8: token decoding is strict (the exact prefix `bt1.`, a length bound, a response id
 * of the shape servers give) and a checksum makes a mistyped token `malformed` rather than
 * another response id. Tokens issued before the checksum still decode.
 */
import { describe, expect, it } from "vitest";
import {
  decodeContinuationToken,
  encodeContinuationToken,
  InvalidContinuationTokenError,
} from "../../src/index.js";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function reasonOf(text: string): string | undefined {
  try {
    decodeContinuationToken(text);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidContinuationTokenError);
    return (err as InvalidContinuationTokenError).reason;
  }
}

describe("strict token decoding", () => {
  const token = encodeContinuationToken({ responseId: "resp_abc123", sequenceNumber: 7 });

  it("round-trips, with a checksum inside", () => {
    expect(decodeContinuationToken(token)).toEqual({
      responseId: "resp_abc123",
      sequenceNumber: 7,
    });
    expect(JSON.parse(Buffer.from(token.slice(4), "base64url").toString()).c).toMatch(/^[\w-]{8}$/);
  });

  it("the prefix is exactly 'bt1.': 'bt01.' and 'bt001.' are not version 1", () => {
    const body = token.slice(4);
    expect(reasonOf(`bt01.${body}`)).toBe("foreign");
    expect(reasonOf(`bt001.${body}`)).toBe("foreign");
    expect(reasonOf(`BT1.${body}`)).toBe("foreign");
    expect(reasonOf(`bt2.${body}`)).toBe("unsupported-version");
  });

  it("a 10 MB response id is refused without decoding it", () => {
    const huge = `bt1.${b64({ responseId: "r".repeat(10_000_000) })}`;
    expect(reasonOf(huge)).toBe("malformed");
  });

  it("a response id not of the shape servers give is refused", () => {
    for (const responseId of ["..", ".", "a/b", "resp\u001b[31m", "r".repeat(257)]) {
      expect(reasonOf(`bt1.${b64({ responseId })}`), responseId).toBe("malformed");
    }
  });

  it("every one-character change is refused (or says the same thing)", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let other = 0;
    let refused = 0;
    for (let i = 0; i < token.length; i++) {
      for (const char of alphabet) {
        if (char === token[i]) continue;
        const typo = token.slice(0, i) + char + token.slice(i + 1);
        if (reasonOf(typo) !== undefined) refused++;
        else if (
          JSON.stringify(decodeContinuationToken(typo)) !==
          JSON.stringify(decodeContinuationToken(token))
        )
          other++;
      }
    }
    expect(other).toBe(0);
    expect(refused).toBeGreaterThan(0);
  });

  it("a token issued without the checksum still decodes", () => {
    const old = `bt1.${b64({ responseId: "resp_old", sequenceNumber: 3 })}`;
    expect(decodeContinuationToken(old)).toEqual({ responseId: "resp_old", sequenceNumber: 3 });
    expect(decodeContinuationToken(`bt1.${b64({ responseId: "resp_old" })}`)).toEqual({
      responseId: "resp_old",
    });
  });

  it("a checksum that does not match is malformed", () => {
    const forged = `bt1.${b64({ responseId: "resp_other", sequenceNumber: 7, c: "AAAAAAAA" })}`;
    expect(reasonOf(forged)).toBe("malformed");
  });
});
