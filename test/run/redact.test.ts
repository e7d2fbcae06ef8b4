/** `redactSecrets`: the client's key and anything shaped like a credential (issue 13.2). */
import fc from "fast-check";
import { expect, it } from "vitest";
import { classifyClientError, redactSecrets } from "../../src/index.js";

const runs = Number(process.env.SOAK_RUNS ?? 300);

it("removes the given key wherever it sits in any text", () => {
  const key = fc.string({ minLength: 6, maxLength: 60 }).filter((k) => !k.includes("*"));
  fc.assert(
    fc.property(key, fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }), (secret, parts) => {
      const text = parts.join(secret) + secret;
      return !redactSecrets(text, [secret]).includes(secret);
    }),
    { numRuns: runs * 10 },
  );
});

it("removes what is shaped like a key or a bearer token, and keeps the rest", () => {
  const cases: [string, string][] = [
    ["Incorrect API key provided: Bearer abc.DEF-123", "Incorrect API key provided: Bearer ***"],
    ["key sk-proj-AbC123_xyz-789 is wrong", "key sk-*** is wrong"],
    ["sk-svcacct-0123456789abcdef", "sk-***"],
    ['{"api_key": "hunter2hunter2"}', '{"api_key": "***"}'],
    ["x-api-key: 0123456789abcdef", "x-api-key: ***"],
    ["authorization=Basic dXNlcjpwYXNz", "authorization=*** ***"],
    ["token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig-nature_", "token ***"],
    ["The model o3 does not exist", "The model o3 does not exist"],
    ["Rate limit reached for requests", "Rate limit reached for requests"],
  ];
  for (const [text, expected] of cases) expect(redactSecrets(text)).toBe(expected);
  // Too short to be a secret: a test double's "x" key must not blank every x.
  expect(redactSecrets("xx", ["x"])).toBe("xx");
});

it("classifyClientError redacts the message, the code and the request id", () => {
  const key = "azure0123456789abcdef";
  const said = `no such key ${key}, Bearer ${key}`;
  const failure = classifyClientError(
    {
      status: 401,
      message: said,
      error: { message: said, code: said },
      headers: new Headers({ "x-request-id": said }),
      requestID: said,
    },
    [key],
  );
  expect(failure.kind).toBe("unauthorized");
  expect(JSON.stringify(failure)).not.toContain(key);
  expect(failure.message).toBe("no such key ***, Bearer ***");
});

it("a huge server message is kept bounded, and redacted before it is cut", () => {
  const key = "azure0123456789abcdef";
  const failure = classifyClientError(
    { status: 500, error: { message: `${"x".repeat(1995)}${key}${"y".repeat(10_000_000)}` } },
    [key],
  );
  expect(failure.message.length).toBeLessThanOrEqual(2_001);
  expect(failure.message).not.toContain(key.slice(0, 5));
});
