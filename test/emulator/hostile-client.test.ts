/**
 * Issue 13 item 7: a hostile client must not take the emulator down. fast-check generates
 * requests over raw TCP against an emulator in a child process: random methods, paths (bad `%`
 * escapes, huge ids, `..`, odd slashes, queries), headers (junk, fault and script headers,
 * lying `content-length`), bodies (bad JSON, wrong shapes, over the size limit) and ways to
 * send them (all at once, in slow pieces, cut off midway, stopped midway and left open, reply
 * read partly then dropped). Asserts: no 5xx but the ones a fault header asked for; every
 * connection ends (the server answers and closes, or closes a stalled one by its timeouts);
 * the child stays up, answers a good request after every input, and its memory stays bounded.
 * Counts are printed. `SOAK_RUNS` raises the number of inputs (default 100).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { validateErrorBody } from "../support/openapi-schema.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RUNS = Number(process.env.SOAK_RUNS ?? 100);
const MAX_BODY = 64 * 1024;
/** Emulator options of the child: small limits and short timeouts, so stalls end quickly. */
const OPTIONS = {
  tokenDelayMs: 0,
  queuedMs: 0,
  outputTokens: 6,
  maxBodyBytes: MAX_BODY,
  headersTimeoutMs: 400,
  requestTimeoutMs: 800,
  keepAliveTimeoutMs: 300,
  requestLog: { maxEntries: 200 },
};
/** Longest an exchange may take before it counts as a hang (stalls end in ~1 s). */
const HANG_MS = 8_000;
/** Resident memory the child may reach (it starts around 100 MB under tsx). */
const MAX_RSS_BYTES = 400 * 1024 * 1024;

let child: ChildProcess;
let port = 0;
let baseURL = "";
let childExit: string | undefined;
let knownId = "resp_unknown";

beforeAll(async () => {
  child = spawn(
    process.execPath,
    ["--import", "tsx", "test/emulator/hostile-child.ts", JSON.stringify(OPTIONS)],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.once("exit", (code, signal) => {
    childExit = `exited (code ${code}, signal ${signal}): ${stderr.slice(-2000)}`;
  });
  baseURL = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf("\n");
      if (newline >= 0) resolve(buffer.slice(0, newline));
    });
    child.once("exit", () => reject(new Error(childExit)));
  });
  port = Number(new URL(baseURL).port);
  // A streamed background response, so that replays (`?stream=true`) of it are served too.
  const stream = await client().responses.create({
    model: "m",
    input: "hi",
    background: true,
    stream: true,
  });
  for await (const event of stream) {
    if (event.type === "response.created") knownId = event.response.id;
  }
}, 60_000);

afterAll(() => {
  if (child && child.exitCode === null) child.kill("SIGTERM");
});

function client(): OpenAI {
  return new OpenAI({ baseURL, apiKey: "sk-hostile", maxRetries: 0, timeout: 10_000 });
}

function rssBytes(): number {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

// ---------------------------------------------------------------------------------------------
// Generated requests.

type Delivery = "whole" | "pieces" | "cut" | "stall" | "drop-reply";

interface HostileRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: Buffer;
  /** `content-length` sent, when it lies (else the true length, or chunked). */
  contentLength: "true" | "chunked" | "none" | number;
  delivery: Delivery;
  /** Where a cut or stall happens, as a fraction of the bytes. */
  at: number;
  /** Whether a fault header asks for a status (a 5xx is then expected). */
  faulted: boolean;
}

const idArb = fc.oneof(
  fc.constant("KNOWN"),
  fc.constantFrom(
    "resp_x",
    "..",
    ".",
    "%",
    "%zz",
    "%E0%A4%A",
    "%00",
    "resp_%2F..%2F",
    "%2e%2e",
    "",
  ),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: "binary", maxLength: 20 }).map((s) => s.replace(/[\s]/g, "")),
  fc.integer({ min: 1_000, max: 12_000 }).map((n) => "r".repeat(n)),
);

const pathArb = fc
  .tuple(
    fc.constantFrom(
      "/v1/responses",
      "/v1/responses/ID",
      "/v1/responses/ID/cancel",
      "/v1/responses/ID/cancel/x",
      "/v1/responses//ID",
      "/v1//responses",
      "/v1/../v1/responses/ID",
      "/v1/responses/ID/../ID",
      "/",
      "*",
      "/v2/x",
      "http://evil.invalid/v1/responses/ID",
    ),
    idArb,
    fc.oneof(
      fc.constant(""),
      fc.constantFrom(
        "?stream=true",
        "?stream=true&starting_after=2",
        "?starting_after=abc&stream=true",
      ),
      fc.constantFrom(
        "?stream=true&starting_after=-5",
        "?stream=true&starting_after=1e308",
        "?%=%",
        "?a=%zz",
      ),
      fc.string({ maxLength: 30 }).map((s) => `?${encodeURIComponent(s)}=${encodeURIComponent(s)}`),
    ),
  )
  .map(([template, id, query]) => `${template.replaceAll("ID", id)}${query}`);

const methodArb = fc.oneof(
  fc.constantFrom("GET", "POST", "DELETE", "GET", "POST"),
  fc.constantFrom("PUT", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "FOO"),
);

const jsonish = fc.jsonValue({ maxDepth: 3 });
const createShape = fc.record(
  {
    model: fc.oneof(fc.constant("gpt-test"), jsonish),
    input: fc.oneof(fc.constant("hi"), jsonish, fc.array(jsonish, { maxLength: 3 })),
    background: fc.oneof(fc.boolean(), jsonish),
    stream: fc.oneof(fc.boolean(), jsonish),
    store: fc.oneof(fc.boolean(), jsonish),
    temperature: jsonish,
    top_p: jsonish,
    max_output_tokens: fc.oneof(fc.integer({ min: -5, max: 64 }), jsonish),
    instructions: jsonish,
    metadata: fc.oneof(
      fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })),
      jsonish,
    ),
    previous_response_id: fc.oneof(fc.constant("KNOWN"), jsonish),
    stream_options: jsonish,
  },
  { requiredKeys: [] },
);

const bodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: createShape.map((o) => Buffer.from(JSON.stringify(o))) },
  {
    weight: 2,
    arbitrary: fc.constant(
      Buffer.from('{"model":"gpt-test","input":"hi","background":true,"stream":true}'),
    ),
  },
  { weight: 2, arbitrary: jsonish.map((v) => Buffer.from(JSON.stringify(v) ?? "")) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_BODY - 64, max: MAX_BODY * 4 })
      .map((n) => Buffer.from(`{"model":"gpt-test","input":"${"x".repeat(n)}"}`)),
  },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);

const headerArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constantFrom<[string, string]>(
    ["content-type", "application/json"],
    ["content-type", "text/plain"],
    ["authorization", "Bearer sk-hostile"],
    ["x-emulator-fault", "{"],
    ["x-emulator-fault", '{"status":{"code":503}}'],
    ["x-emulator-fault", '{"garbage":{}}'],
    ["x-emulator-fault", '{"reset":{}}'],
    ["x-emulator-fault", '{"drop":{"afterEvents":2}}'],
    ["x-emulator-fault", '{"stall":{"ms":50}}'],
    ["x-emulator-fault", '{"status":{"code":"x"}}'],
    ["x-emulator-fault", "[]"],
    ["x-emulator-script", '{"outputTokens":-1}'],
    ["x-emulator-script", '{"outputTokens":5000,"tokenDelayMs":0}'],
    ["x-emulator-script", "nope"],
    ["x-emulator-script", '{"outputTokens":1e9}'],
    ["expect", "100-continue"],
    ["connection", "keep-alive"],
    ["transfer-encoding", "gzip"],
  ),
  fc.tuple(
    fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
    fc.string({ maxLength: 100 }).map((s) => s.replace(/[\r\n\0]/g, "")),
  ),
  fc.tuple(
    fc.constant("x-huge"),
    fc.integer({ min: 1_000, max: 20_000 }).map((n) => "h".repeat(n)),
  ),
);

/** Requests a client means: routes that exist, so that replies and streams get cut too. */
const meantArb = fc.constantFrom<[string, string]>(
  ["POST", "/v1/responses"],
  ["POST", "/v1/responses"],
  ["GET", "/v1/responses/KNOWN"],
  ["GET", "/v1/responses/KNOWN?stream=true"],
  ["GET", "/v1/responses/KNOWN?stream=true&starting_after=3"],
  ["POST", "/v1/responses/KNOWN/cancel"],
);
const goodBodyArb = fc
  .record({ stream: fc.boolean(), background: fc.boolean(), n: fc.nat(99) })
  .map(({ stream, background, n }) =>
    Buffer.from(JSON.stringify({ model: "gpt-test", input: `probe ${n}`, stream, background })),
  );

const requestArb: fc.Arbitrary<HostileRequest> = fc
  .record({
    target: fc.oneof({ weight: 2, arbitrary: fc.tuple(methodArb, pathArb) }, meantArb),
    good: fc.boolean(),
    headers: fc.array(headerArb, { maxLength: 4 }),
    body: bodyArb,
    goodBody: goodBodyArb,
    contentLength: fc.oneof(
      { weight: 6, arbitrary: fc.constant("true" as const) },
      { weight: 1, arbitrary: fc.constant("chunked" as const) },
      { weight: 1, arbitrary: fc.constant("none" as const) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 400 }) },
    ),
    delivery: fc.constantFrom<Delivery>(
      "whole",
      "whole",
      "whole",
      "pieces",
      "cut",
      "stall",
      "drop-reply",
    ),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ target: [method, path], good, goodBody, ...r }) => ({
    ...r,
    method,
    path: path.replaceAll("KNOWN", knownId),
    body: good
      ? goodBody
      : Buffer.from(r.body.toString("latin1").replaceAll("KNOWN", knownId), "latin1"),
    faulted: r.headers.some(
      ([name, value]) => name === "x-emulator-fault" && /"(status|garbage)"/.test(value),
    ),
  }));

function encode(request: HostileRequest): Buffer {
  const lines = [`${request.method} ${request.path} HTTP/1.1`, "host: 127.0.0.1"];
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  let body = request.body;
  if (request.contentLength === "true") lines.push(`content-length: ${body.length}`);
  else if (typeof request.contentLength === "number") {
    lines.push(`content-length: ${request.contentLength}`);
  } else if (request.contentLength === "chunked") {
    lines.push("transfer-encoding: chunked");
    body = Buffer.concat([
      Buffer.from(`${body.length.toString(16)}\r\n`),
      body,
      Buffer.from(body.length > 0 ? "\r\n0\r\n\r\n" : "\r\n"),
    ]);
  }
  lines.push("connection: close");
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

interface Outcome {
  status: number | null;
  reply: string;
  hung: boolean;
}

/** Sends one request as its delivery says; resolves once the connection has ended. */
function exchange(request: HostileRequest): Promise<Outcome> {
  const bytes = encode(request);
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = Buffer.alloc(0);
    let done = false;
    const finish = (hung: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(hang);
      socket.destroy();
      const text = reply.toString("latin1");
      // The final status: after an interim `100 Continue`, the one that follows it.
      const status = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3})/g)]
        .map((m) => m[1])
        .filter((code) => code !== undefined && !code.startsWith("1"))
        .at(0);
      resolve({ status: status === undefined ? null : Number(status), reply: text, hung });
    };
    const hang = setTimeout(() => finish(true), HANG_MS);
    socket.on("data", (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (request.delivery === "drop-reply" && reply.length > 40) finish(false);
    });
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("connect", async () => {
      const split = Math.floor(bytes.length * request.at);
      switch (request.delivery) {
        case "whole":
        case "drop-reply":
          socket.write(bytes);
          return;
        case "cut":
          socket.write(bytes.subarray(0, split), () => finish(false));
          return;
        case "stall":
          // Part of the request, then silence: the server's timeouts must end it.
          socket.write(bytes.subarray(0, Math.min(split, bytes.length - 1)));
          return;
        case "pieces": {
          const step = Math.max(1, Math.ceil(bytes.length / 5));
          for (let i = 0; i < bytes.length && !done; i += step) {
            socket.write(bytes.subarray(i, i + step));
            await new Promise((r) => setTimeout(r, 20));
          }
          return;
        }
      }
    });
  });
}

it(`survives ${RUNS} hostile requests: no 5xx, no hang, no crash, bounded memory`, async () => {
  const counts = {
    inputs: 0,
    "2xx": 0,
    "4xx": 0,
    "5xx asked": 0,
    "no reply": 0,
    crashes: 0,
    hangs: 0,
  };
  const byStatus = new Map<number, number>();
  let peakRss = rssBytes();
  const startRss = peakRss;
  await fc.assert(
    fc.asyncProperty(requestArb, async (request) => {
      counts.inputs++;
      const outcome = await exchange(request);
      if (outcome.hung) counts.hangs++;
      const { status } = outcome;
      if (status === null) counts["no reply"]++;
      else {
        byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
        if (status >= 500) counts["5xx asked"]++;
        else if (status >= 400) counts["4xx"]++;
        else counts["2xx"]++;
      }
      if (childExit !== undefined) counts.crashes++;
      expect(childExit, "the emulator process died").toBeUndefined();
      expect(outcome.hung, `no end within ${HANG_MS} ms`).toBe(false);
      if (status !== null && status >= 500) {
        expect(request.faulted, `unasked ${status}: ${outcome.reply.slice(0, 600)}`).toBe(true);
      }
      // A JSON error reply of the emulator's own is a spec error body.
      const json = outcome.reply.slice(outcome.reply.lastIndexOf("\r\n\r\n") + 4);
      const whole = request.method !== "HEAD" && request.delivery !== "drop-reply";
      if (
        whole &&
        status !== null &&
        status >= 400 &&
        !request.faulted &&
        /content-type: application\/json/i.test(outcome.reply)
      ) {
        expect(validateErrorBody(JSON.parse(json)), json).toEqual([]);
      }
      peakRss = Math.max(peakRss, rssBytes());
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
  // Still up and answering, with every connection it was sent ended.
  const sdk = client();
  const created = await sdk.responses.create({ model: "m", input: "after", background: true });
  expect((await sdk.responses.retrieve(created.id)).id).toBe(created.id);
  expect(peakRss).toBeLessThan(MAX_RSS_BYTES);
  console.log(
    `hostile-client probe: ${JSON.stringify(counts)}; statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort((a, b) => a[0] - b[0])))}; rss ${Math.round(startRss / 2 ** 20)} → peak ${Math.round(peakRss / 2 ** 20)} MiB`,
  );
}, 600_000);
