/**
 * Issue 13 item 7: the emulator, run as a CI service, must not be exhaustible. Bodies over the
 * limit are refused with 413 while they come in; malformed JSON, wrong-typed fields and
 * malformed `%` escapes are 400 `invalid_request_error`; the request log is bounded; idle,
 * slow and half-sent connections are closed. Every error body is checked against the spec.
 */
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { validateErrorBody } from "../support/openapi-schema.js";
import { emulator, MODEL, raw, rawCreate, sdk, until } from "./helpers.js";

/** Sends raw bytes on a new connection; resolves with everything read until the server closes. */
function rawExchange(target: Emulator, chunks: readonly (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(target.port, "127.0.0.1");
    let text = "";
    socket.on("data", (data) => {
      text += data.toString("latin1");
    });
    socket.on("error", (error) => (text ? resolve(text) : reject(error)));
    socket.on("close", () => resolve(text));
    socket.on("connect", () => {
      for (const chunk of chunks) socket.write(chunk);
    });
  });
}

/** The status and JSON body of a raw HTTP/1.1 reply. */
function parseReply(text: string): { status: number; body: unknown } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? Number.NaN);
  const json = text.slice(text.indexOf("\r\n\r\n") + 4);
  return { status, body: json ? JSON.parse(json) : undefined };
}

describe("request bodies", () => {
  it("a body announced over the limit is answered 413 before it is sent", async () => {
    const em = await emulator({ maxBodyBytes: 1024 });
    const reply = parseReply(
      await rawExchange(em, [
        "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
          `content-length: ${100 * 1024 * 1024}\r\n\r\n{"model":`,
      ]),
    );
    expect(reply.status).toBe(413);
    expect(validateErrorBody(reply.body)).toEqual([]);
    expect(reply.body).toMatchObject({
      error: { type: "invalid_request_error", code: "request_too_large" },
    });
    expect(em.countCreates()).toBe(0);
  });

  it("a chunked body is refused at the chunk that crosses the limit, not once it is whole", async () => {
    const em = await emulator({ maxBodyBytes: 64 * 1024 });
    const socket = connect(em.port, "127.0.0.1");
    let text = "";
    socket.on("data", (data) => {
      text += data.toString("latin1");
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
    socket.write(
      "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
        "transfer-encoding: chunked\r\n\r\n",
    );
    // 16 KiB chunks, never the end of the body: the answer must come while it is still open.
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let sent = 0;
    while (!text.includes("\r\n\r\n") && sent < 64) {
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      socket.write("\r\n");
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await until(() => text.includes("}}"), 10_000);
    const reply = parseReply(text);
    expect(reply.status).toBe(413);
    expect(validateErrorBody(reply.body)).toEqual([]);
    expect(sent).toBeLessThan(64);
    await closed; // the connection ends: the rest of the body is never read into memory
  });

  it("the SDK gets a 413 APIError for a create over the limit", async () => {
    const em = await emulator({ maxBodyBytes: 4096 });
    const error = await sdk(em)
      .responses.create({ model: MODEL, input: "x".repeat(10_000), background: true })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 413, code: "request_too_large" });
    // And the emulator still answers a good request.
    const ok = await sdk(em).responses.create({ model: MODEL, input: "hi", background: true });
    expect(ok.status).toBe("queued");
  });
});

describe("bad requests are 400 invalid_request_error", () => {
  const bodies: [string, string][] = [
    ["empty", ""],
    ["not JSON", "{model:"],
    ["an array", "[]"],
    ["null", "null"],
    ["a number", "42"],
    ["a string", '"hi"'],
    ["model missing", '{"input":"hi"}'],
    ["model a number", '{"model":5,"input":"hi"}'],
    ["model an object", '{"model":{},"input":"hi"}'],
    ["input a number", `{"model":"${MODEL}","input":5}`],
    ["input an object", `{"model":"${MODEL}","input":{"a":1}}`],
    ["input true", `{"model":"${MODEL}","input":true}`],
    ["input [1]", `{"model":"${MODEL}","input":[1]}`],
    ["input [null]", `{"model":"${MODEL}","input":[null]}`],
    ["input [[]]", `{"model":"${MODEL}","input":[[]]}`],
    ["input content a number", `{"model":"${MODEL}","input":[{"role":"user","content":3}]}`],
    ["background a string", `{"model":"${MODEL}","input":"hi","background":"true"}`],
    ["background a number", `{"model":"${MODEL}","input":"hi","background":1}`],
    ["stream an object", `{"model":"${MODEL}","input":"hi","stream":{}}`],
    ["temperature a string", `{"model":"${MODEL}","input":"hi","temperature":"hot"}`],
    ["temperature 3", `{"model":"${MODEL}","input":"hi","temperature":3}`],
    ["top_p -1", `{"model":"${MODEL}","input":"hi","top_p":-1}`],
    ["stream_options a string", `{"model":"${MODEL}","input":"hi","stream_options":"x"}`],
    ["metadata an array", `{"model":"${MODEL}","input":"hi","metadata":[]}`],
  ];
  it.each(bodies)("%s", async (_name, body) => {
    const em = await emulator();
    const reply = await raw(`${em.url}/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(reply.status).toBe(400);
    const parsed = JSON.parse(reply.text) as unknown;
    expect(validateErrorBody(parsed)).toEqual([]);
    expect(parsed).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it.each([
    ["GET", "/v1/responses/%E0%A4%A"],
    ["GET", "/v1/responses/%"],
    ["POST", "/v1/responses/%zz/cancel"],
    ["DELETE", "/v1/responses/resp_%FF"],
  ])("a malformed escape (%s %s)", async (method, path) => {
    const em = await emulator();
    const reply = parseReply(
      await rawExchange(em, [`${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`]),
    );
    expect(reply.status).toBe(400);
    expect(validateErrorBody(reply.body)).toEqual([]);
    expect(reply.body).toMatchObject({
      error: { type: "invalid_request_error", code: "invalid_url" },
    });
  });

  it("valid shapes are still accepted (input items, temperature at its bounds, null fields)", async () => {
    const em = await emulator();
    for (const body of [
      { model: MODEL, input: [{ role: "user", content: [{ type: "input_text", text: "a" }] }] },
      { model: MODEL, input: [{ role: "user", content: "a" }], temperature: 2, top_p: 0 },
      { model: MODEL, input: "a", temperature: null, top_p: null, stream_options: null },
      { model: MODEL, background: true },
    ]) {
      const reply = await rawCreate(em, { background: true, ...body });
      expect(reply.status, reply.text).toBe(200);
    }
  });
});

describe("the request log", () => {
  it("keeps at most maxEntries requests, the most recent ones, in the same array", async () => {
    const em = await emulator({ requestLog: { maxEntries: 32 } });
    const log = em.requests;
    for (let i = 0; i < 200; i++) await raw(`${em.url}/responses/resp_${i}`);
    expect(em.requests).toBe(log);
    expect(log.length).toBeLessThanOrEqual(32);
    expect(log.length).toBeGreaterThanOrEqual(30);
    expect(log.at(-1)?.responseId).toBe("resp_199");
    expect(em.droppedRequests()).toBe(200 - log.length);
  });

  it("keeps about maxBytes of recorded text", async () => {
    const em = await emulator({ requestLog: { maxBytes: 64 * 1024 } });
    const header = "v".repeat(4096);
    for (let i = 0; i < 100; i++) {
      await raw(`${em.url}/responses/resp_${i}`, { headers: { "x-big": header } });
    }
    expect(em.requests.length).toBeLessThan(20);
    expect(em.requests.at(-1)?.responseId).toBe("resp_99");
  });

  it("keeps every request by default in a test-sized run", async () => {
    const em = await emulator();
    for (let i = 0; i < 300; i++) await raw(`${em.url}/responses/resp_${i}`);
    expect(em.requests.length).toBe(300);
    expect(em.droppedRequests()).toBe(0);
  });
});

describe("connections", () => {
  /** Opens a socket and resolves once it is connected; `closed` settles when the server ends it. */
  async function openSocket(target: Emulator, first?: string) {
    const socket: Socket = connect(target.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.on("data", () => {});
    let isClosed = false;
    const closed = new Promise<void>((resolve) =>
      socket.on("close", () => {
        isClosed = true;
        resolve();
      }),
    );
    await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
    if (first) socket.write(first);
    return { socket, closed, isClosed: () => isClosed };
  }

  it("closes sockets that send nothing, half a request, or stay idle after a reply", async () => {
    const em = await emulator({
      headersTimeoutMs: 300,
      requestTimeoutMs: 600,
      keepAliveTimeoutMs: 300,
    });
    const silent = await Promise.all(Array.from({ length: 20 }, () => openSocket(em)));
    const halfHeaders = await openSocket(em, "GET /v1/responses/x HTTP/1.1\r\nhost: x\r\n");
    const halfBody = await openSocket(
      em,
      "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{",
    );
    const idle = await openSocket(em, "GET /v1/responses/x HTTP/1.1\r\nhost: x\r\n\r\n");
    const all = [...silent, halfHeaders, halfBody, idle];
    try {
      await until(() => all.every((s) => s.isClosed()), 15_000);
    } finally {
      for (const s of all) s.socket.destroy();
    }
  });

  it("closes a socket that never sends a byte after the headers timeout, not the request timeout", async () => {
    const em = await emulator({ headersTimeoutMs: 300, requestTimeoutMs: 120_000 });
    const silent = await Promise.all(Array.from({ length: 20 }, () => openSocket(em)));
    try {
      await until(() => silent.every((s) => s.isClosed()), 15_000);
    } finally {
      for (const s of silent) s.socket.destroy();
    }
  });

  it("does not cut a slow stream: the timeouts bound receiving a request, not the reply", async () => {
    const em = await emulator({
      headersTimeoutMs: 100,
      requestTimeoutMs: 200,
      keepAliveTimeoutMs: 100,
      tokenDelayMs: 150,
      outputTokens: 4,
    });
    const stream = await sdk(em).responses.create({
      model: MODEL,
      input: "slow",
      background: true,
      stream: true,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.at(-1)).toBe("response.completed");
  });
});

describe("generation scripts a client sends", () => {
  it.each([
    ['{"outputTokens":1e9}', "outputTokens"],
    ['{"tokenDelayMs":1e308}', "tokenDelayMs"],
    ['{"queuedMs":3000000000}', "queuedMs"],
  ])(
    "%s is refused with 400 (it would exhaust memory or overflow a timer)",
    async (script, key) => {
      const em = await emulator();
      const reply = await raw(`${em.url}/responses`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-emulator-script": script },
        body: JSON.stringify({ model: MODEL, input: "hi", background: true }),
      });
      expect(reply.status).toBe(400);
      const parsed = JSON.parse(reply.text) as { error: { message: string } };
      expect(validateErrorBody(parsed)).toEqual([]);
      expect(parsed.error.message).toContain(key);
      expect(em.countCreates()).toBe(1);
      expect(em.requests.at(-1)?.responseId).toBeUndefined();
    },
  );
});

describe("stored responses", () => {
  it("holds at most maxResponses; the oldest is forgotten first", async () => {
    const em = await emulator({ maxResponses: 5 });
    const client = sdk(em);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(
        (await client.responses.create({ model: MODEL, input: `n${i}`, background: true })).id,
      );
    }
    for (const id of ids.slice(0, 3)) {
      await expect(client.responses.retrieve(id)).rejects.toMatchObject({ status: 404 });
    }
    for (const id of ids.slice(3)) expect((await client.responses.retrieve(id)).id).toBe(id);
  });
});
