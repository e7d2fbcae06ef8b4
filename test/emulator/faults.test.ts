/**
 * Fault injection through `emulator.faults` and the per-request headers, each mapped to what the
 * real `openai` SDK does with it: error classes, its own retries (retry-after-ms,
 * x-should-retry), connection errors, mid-stream drops, stalls, garbage and scripts.
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from "openai";
import { describe, expect, it } from "vitest";
import {
  type AnyEvent,
  createdId,
  emulator,
  events,
  MODEL,
  raw,
  rawCreate,
  sdk,
  types,
  until,
} from "./helpers.js";

const BACKGROUND = { model: MODEL, input: "faults", background: true } as const;

function gaps(at: readonly number[]): number[] {
  return at.slice(1).map((t, i) => t - (at[i] ?? 0));
}

describe("status faults and the SDK", () => {
  it("429 maps to RateLimitError with retry headers and the error envelope", async () => {
    const em = await emulator();
    em.faults.add({
      on: "create",
      status: { code: 429, retryAfter: 2, retryAfterMs: 1500, shouldRetry: true },
    });
    const reply = await rawCreate(em, BACKGROUND);
    expect(reply.status).toBe(429);
    expect(reply.headers.get("retry-after")).toBe("2");
    expect(reply.headers.get("retry-after-ms")).toBe("1500");
    expect(reply.headers.get("x-should-retry")).toBe("true");
    expect(reply.headers.get("x-request-id")).toMatch(/^req_/);
    expect(JSON.parse(reply.text)).toEqual({
      error: {
        message: expect.any(String),
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      },
    });
    expect(em.faults.pending).toEqual([]);

    em.faults.add({ on: "create", status: { code: 429, message: "slow down" } });
    const error = await sdk(em)
      .responses.create(BACKGROUND)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({
      status: 429,
      code: "rate_limit_exceeded",
      message: "429 slow down",
    });
    expect((error as RateLimitError).requestID).toMatch(/^req_/);
  });

  it("5xx maps to InternalServerError", async () => {
    const em = await emulator();
    em.faults.add({ on: "retrieve", status: { code: 503 } });
    const created = await sdk(em).responses.create(BACKGROUND);
    const error = await sdk(em)
      .responses.retrieve(created.id)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as InternalServerError).status).toBe(503);
  });

  it("the SDK's own retries wait retry-after-ms between attempts", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", times: 2, status: { code: 429, retryAfterMs: 150 } });
    const response = await sdk(em, { maxRetries: 2 }).responses.create(BACKGROUND);
    expect(response.status).toBe("queued");
    const creates = em.requests.filter((r) => r.kind === "create");
    expect(creates).toHaveLength(3);
    expect(creates.map((r) => r.headers["x-stainless-retry-count"])).toEqual(["0", "1", "2"]);
    for (const gap of gaps(creates.map((r) => r.at))) {
      expect(gap).toBeGreaterThanOrEqual(140);
      expect(gap).toBeLessThan(1_000);
    }
    expect(em.countCreates()).toBe(3);
    expect(creates.map((r) => r.responseId === undefined)).toEqual([true, true, false]);
  });

  it("x-should-retry:false stops the SDK from retrying a 500", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", times: 3, status: { code: 500, shouldRetry: false } });
    const error = await sdk(em, { maxRetries: 2 })
      .responses.create(BACKGROUND)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(em.countCreates()).toBe(1);
    expect(em.faults.pending).toEqual([{ on: "create", times: 2, status: expect.any(Object) }]);
  });

  it("x-should-retry:true makes the SDK retry even a 400", async () => {
    const em = await emulator();
    em.faults.add({ on: "retrieve", status: { code: 400, shouldRetry: true, retryAfterMs: 1 } });
    const created = await sdk(em).responses.create(BACKGROUND);
    const response = await sdk(em, { maxRetries: 1 }).responses.retrieve(created.id);
    expect(response.id).toBe(created.id);
    expect(em.requests.filter((r) => r.kind === "retrieve")).toHaveLength(2);
  });

  it("afterHandling: the response IS created, then the error is sent (duplicate create)", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", status: { code: 500, afterHandling: true, retryAfterMs: 1 } });
    const response = await sdk(em, { maxRetries: 1 }).responses.create(BACKGROUND);
    const [first, second] = em.requests;
    expect(first?.responseId).toMatch(/^resp_/);
    expect(second?.responseId).toBe(response.id);
    expect(first?.responseId).not.toBe(response.id);
    expect(em.getResponse(first?.responseId ?? "")?.status).toBeDefined();
    expect(em.countCreates()).toBe(2);
  });

  it("status faults can target one response id", async () => {
    const em = await emulator();
    const client = sdk(em);
    const a = await client.responses.create(BACKGROUND);
    const b = await client.responses.create(BACKGROUND);
    em.faults.add({
      on: ["retrieve", "cancel"],
      responseId: a.id,
      times: Infinity,
      status: { code: 404 },
    });
    await expect(client.responses.retrieve(a.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.responses.cancel(a.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await client.responses.retrieve(b.id)).id).toBe(b.id);
    expect(em.faults.pending).toHaveLength(1);
    expect(em.faults.pending[0]?.times).toBe(Infinity);
    em.faults.clear();
    expect((await client.responses.retrieve(a.id)).id).toBe(a.id);
  });
});

describe("authentication", () => {
  it("with apiKey set, a wrong or missing key is 401 AuthenticationError", async () => {
    const em = await emulator({ apiKey: "sk-right-0123456789" });
    const error = await sdk(em, { apiKey: "sk-wrong" })
      .responses.create(BACKGROUND)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).message).not.toContain("sk-wrong");
    expect((error as AuthenticationError).message).not.toContain("sk-right");
    const missing = await fetch(`${em.url}/responses/resp_x`);
    expect(missing.status).toBe(401);
    const ok = await sdk(em, { apiKey: "sk-right-0123456789" }).responses.create(BACKGROUND);
    expect(ok.status).toBe("queued");
    expect(JSON.stringify(em.requests)).not.toContain("sk-right");
  });
});

describe("connection faults", () => {
  it("reset before handling: APIConnectionError and nothing was created", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", reset: {} });
    const error = await sdk(em)
      .responses.create(BACKGROUND)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(em.requests[0]?.responseId).toBeUndefined();
  });

  it("reset after handling: the SDK retries and creates a duplicate", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", reset: { afterHandling: true } });
    const response = await sdk(em, { maxRetries: 1 }).responses.create(BACKGROUND);
    const ids = em.requests.map((r) => r.responseId);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(response.id);
    expect(ids[0]).toMatch(/^resp_/);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it("drop: the stream dies after N events and generation goes on", async () => {
    const em = await emulator({ tokenDelayMs: 2 });
    em.faults.add({ on: "create-stream", drop: { afterEvents: 4 } });
    const client = sdk(em);
    const stream = await client.responses.create({ ...BACKGROUND, stream: true });
    const seen: AnyEvent[] = [];
    const error = await (async () => {
      for await (const event of stream) seen.push(event as unknown as AnyEvent);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).toMatch(/terminated/);
    expect(seen.map((e) => e.sequence_number)).toEqual([0, 1, 2, 3]);
    const id = createdId(seen);
    await until(() => em.getResponse(id)?.status === "completed");
    // Resuming after the drop gets exactly the missing events.
    const rest = await events(
      await client.responses.retrieve(id, { stream: true, starting_after: 3 }),
    );
    expect(rest[0]?.sequence_number).toBe(4);
    expect(types(rest).at(-1)).toBe("response.completed");
  });

  it("drop rules are not used up by JSON requests; drop afterEvents 0 cuts before any event", async () => {
    const em = await emulator();
    em.faults.add({ on: ["create", "create-stream"], drop: { afterEvents: 0 } });
    const client = sdk(em);
    await client.responses.create(BACKGROUND); // JSON: unaffected
    expect(em.faults.pending).toHaveLength(1);
    const stream = await client.responses.create({ ...BACKGROUND, stream: true });
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const event of stream) seen.push(event);
      })(),
    ).rejects.toThrow();
    expect(seen).toEqual([]);
  });

  it("drop on a resume stream, then a clean resume", async () => {
    const em = await emulator();
    const client = sdk(em);
    const original = await events(await client.responses.create({ ...BACKGROUND, stream: true }));
    const id = createdId(original);
    em.faults.add({ on: "retrieve-stream", responseId: id, drop: { afterEvents: 2 } });
    const partial: unknown[] = [];
    await expect(
      (async () => {
        for await (const event of await client.responses.retrieve(id, { stream: true })) {
          partial.push(event);
        }
      })(),
    ).rejects.toThrow();
    expect(partial).toEqual(original.slice(0, 2));
    expect(await events(await client.responses.retrieve(id, { stream: true }))).toEqual(original);
  });
});

describe("stalls", () => {
  it("SSE stall after N events for ms, then the stream goes on", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    em.faults.add({ on: "create-stream", stall: { afterEvents: 2, ms: 150 } });
    const stream = await sdk(em).responses.create({ ...BACKGROUND, stream: true });
    const arrivals: number[] = [];
    const seen: string[] = [];
    for await (const event of stream) {
      arrivals.push(performance.now());
      seen.push(event.type);
    }
    expect(seen.at(-1)).toBe("response.completed");
    expect(seen).toHaveLength(17);
    const gap = (arrivals[2] ?? 0) - (arrivals[1] ?? 0);
    expect(gap).toBeGreaterThanOrEqual(140);
  });

  it("SSE stall forever right after the headers: the create resolves, no event comes", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    em.faults.add({ on: "create-stream", stall: { afterEvents: 0 } });
    const client = sdk(em);
    const stream = await client.responses.create({ ...BACKGROUND, stream: true });
    const seen: unknown[] = [];
    setTimeout(() => stream.controller.abort(), 100);
    for await (const event of stream) seen.push(event); // abort ends it silently
    expect(seen).toEqual([]);
    const id = em.requests[0]?.responseId ?? "";
    await until(() => em.getResponse(id)?.status === "completed");
  });

  it("JSON stall delays the reply by ms", async () => {
    const em = await emulator();
    const client = sdk(em);
    const created = await client.responses.create(BACKGROUND);
    em.faults.add({ on: "retrieve", stall: { afterEvents: 0, ms: 150 } });
    const started = performance.now();
    const response = await client.responses.retrieve(created.id);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(response.id).toBe(created.id);
  });

  it("a stalled create times out in the SDK although the response was created", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", stall: { afterEvents: 0 } });
    const error = await sdk(em, { timeout: 100 })
      .responses.create(BACKGROUND)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionTimeoutError);
    expect(em.getResponse(em.requests[0]?.responseId ?? "")).toBeDefined();
  });
});

describe("garbage", () => {
  it("default: 200 text/html '<html>oops</html>', nothing created", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", garbage: {} });
    const reply = await rawCreate(em, BACKGROUND);
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toBe("text/html");
    expect(reply.text).toBe("<html>oops</html>");
    expect(em.requests[0]?.responseId).toBeUndefined();
  });

  it("a garbage 502 is an InternalServerError in the SDK; a garbage 200 is not a Response", async () => {
    const em = await emulator();
    const client = sdk(em);
    const created = await client.responses.create(BACKGROUND);
    em.faults.add({ on: "retrieve", garbage: { status: 502, body: "Bad gateway" } });
    await expect(client.responses.retrieve(created.id)).rejects.toBeInstanceOf(InternalServerError);
    em.faults.add({ on: "retrieve", garbage: { contentType: "application/json", body: "{oops" } });
    await expect(client.responses.retrieve(created.id)).rejects.toThrow();
  });
});

describe("scripts", () => {
  it("a queued script rule shapes the next create only", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    em.faults.add({ on: "create-stream", script: { outputTokens: 3, keepaliveEvery: 1 } });
    const client = sdk(em);
    const first = await events(await client.responses.create({ ...BACKGROUND, stream: true }));
    const second = await events(await client.responses.create({ ...BACKGROUND, stream: true }));
    expect(first.filter((e) => e.type === "response.output_text.delta")).toHaveLength(3);
    expect(first.filter((e) => e.type === "keepalive")).toHaveLength(3);
    expect(second.filter((e) => e.type === "response.output_text.delta")).toHaveLength(8);
  });

  it("metadata.emulator_script works for SDK users without header access", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    const response = await sdk(em).responses.create({
      model: MODEL,
      input: "x",
      metadata: { emulator_script: JSON.stringify({ outputTokens: 2 }) },
    });
    expect(response.usage?.output_tokens).toBe(2);
    await expect(
      sdk(em).responses.create({ model: MODEL, input: "x", metadata: { emulator_script: "{" } }),
    ).rejects.toBeInstanceOf(BadRequestError);
  });

  it("the header script wins over metadata, which wins over the queue", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    em.faults.add({ on: "create", times: 2, script: { outputTokens: 5, failAfterDeltas: 1 } });
    const client = sdk(em);
    const a = await client.responses.create({
      model: MODEL,
      input: "x",
      metadata: { emulator_script: JSON.stringify({ outputTokens: 4, failAfterDeltas: 100 }) },
    });
    expect(a.status).toBe("completed");
    expect(a.usage?.output_tokens).toBe(4);
    const b = await client.responses.create(
      { model: MODEL, input: "x", metadata: { emulator_script: '{"outputTokens":4}' } },
      { headers: { "x-emulator-script": '{"outputTokens":3}' } },
    );
    expect(b.status).toBe("failed");
    expect(b.usage?.output_tokens).toBe(1);
  });

  it("stuckQueued never leaves queued", async () => {
    const em = await emulator({ queuedMs: 0 });
    em.faults.add({ on: "create", script: { stuckQueued: true } });
    const client = sdk(em);
    const created = await client.responses.create(BACKGROUND);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect((await client.responses.retrieve(created.id)).status).toBe("queued");
  });
});

describe("per-request fault header", () => {
  it("x-emulator-fault applies to that request (and every retry of it), not the queue", async () => {
    const em = await emulator();
    em.faults.add({ on: "create", status: { code: 429 } });
    const client = sdk(em, {
      maxRetries: 1,
      defaultHeaders: {
        "x-emulator-fault": JSON.stringify({ status: { code: 503, retryAfterMs: 1 } }),
      },
    });
    await expect(client.responses.create(BACKGROUND)).rejects.toBeInstanceOf(InternalServerError);
    expect(em.countCreates()).toBe(2);
    expect(em.faults.pending).toHaveLength(1); // the queued 429 was not consumed
  });

  it("per-call headers: drop and script on one create", async () => {
    const em = await emulator({ tokenDelayMs: 1 });
    const client = sdk(em);
    const stream = await client.responses.create(
      { ...BACKGROUND, stream: true },
      {
        headers: {
          "x-emulator-fault": JSON.stringify({ drop: { afterEvents: 6 } }),
          "x-emulator-script": JSON.stringify({ outputTokens: 30 }),
        },
      },
    );
    const seen: AnyEvent[] = [];
    await expect(
      (async () => {
        for await (const event of stream) seen.push(event as unknown as AnyEvent);
      })(),
    ).rejects.toThrow();
    expect(seen).toHaveLength(6);
    const id = createdId(seen);
    await until(() => em.getResponse(id)?.status === "completed");
    expect(em.getResponse(id)?.usage?.output_tokens).toBe(30);
  });

  it("a malformed fault header is a 400 naming the header", async () => {
    const em = await emulator();
    const reply = await raw(`${em.url}/responses/resp_x`, { headers: { "x-emulator-fault": "{" } });
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text).error.param).toBe("x-emulator-fault");
    const twoActions = await raw(`${em.url}/responses/resp_x`, {
      headers: { "x-emulator-fault": JSON.stringify({ reset: {}, garbage: {} }) },
    });
    expect(twoActions.status).toBe(400);
  });
});

describe("the fault queue", () => {
  it("rejects rules without exactly one action or with unknown kinds", async () => {
    const em = await emulator();
    expect(() => em.faults.add({ on: "create" })).toThrow(TypeError);
    expect(() => em.faults.add({ on: "create", reset: {}, garbage: {} })).toThrow(/exactly one/);
    expect(() => em.faults.add({ on: "fetch" as unknown as "create", reset: {} })).toThrow(/on/);
    expect(() => em.faults.add({ on: "create", times: 0, reset: {} })).toThrow(/times/);
  });

  it("faults given at start fire in order and are consumed", async () => {
    const em = await emulator({
      faults: [
        { on: "create", status: { code: 500 } },
        { on: "create", status: { code: 429 } },
      ],
    });
    const client = sdk(em);
    await expect(client.responses.create(BACKGROUND)).rejects.toBeInstanceOf(InternalServerError);
    await expect(client.responses.create(BACKGROUND)).rejects.toBeInstanceOf(RateLimitError);
    expect((await client.responses.create(BACKGROUND)).status).toBe("queued");
  });
});
