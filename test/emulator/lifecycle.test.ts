/**
 * Create, poll and stream: the event order and sequence numbers of background and foreground
 * responses, the Response object, text determinism, max_output_tokens, scripted failures,
 * obfuscation and keepalive, and request validation.
 */
import { BadRequestError, NotFoundError } from "openai";
import { describe, expect, it } from "vitest";
import {
  type AnyEvent,
  emulator,
  events,
  MODEL,
  outputText,
  raw,
  rawCreate,
  sdk,
  types,
  until,
} from "./helpers.js";

const BACKGROUND_ORDER = [
  "response.created",
  "response.queued",
  "response.in_progress",
  "response.output_item.added",
  "response.content_part.added",
  ...Array<string>(8).fill("response.output_text.delta"),
  "response.output_text.done",
  "response.content_part.done",
  "response.output_item.done",
  "response.completed",
];

function lifecycleStatus(list: AnyEvent[], type: string): unknown {
  return (list.find((e) => e.type === type)?.response as { status?: string } | undefined)?.status;
}

describe("background create", () => {
  it("answers 200 at once with a queued Response carrying every required field", async () => {
    const em = await emulator({ queuedMs: 200 });
    const client = sdk(em);
    const response = await client.responses.create({
      model: MODEL,
      input: "Hello",
      background: true,
      metadata: { run: "r1" },
    });
    expect(response.status).toBe("queued");
    expect(response.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(response.output).toEqual([]);
    expect(response.usage).toBeNull();
    expect(response.completed_at).toBeNull();
    expect(response.background).toBe(true);
    expect(response.service_tier).toBe("auto");
    expect(response.metadata).toEqual({ run: "r1" });
    for (const field of [
      "id",
      "object",
      "created_at",
      "error",
      "incomplete_details",
      "instructions",
      "model",
      "tools",
      "output",
      "parallel_tool_calls",
      "metadata",
      "tool_choice",
      "temperature",
      "top_p",
    ]) {
      expect(response).toHaveProperty(field);
    }
    expect(em.countCreates()).toBe(1);
  });

  it("does not send output_text: the SDK computes it", async () => {
    const em = await emulator();
    const reply = await rawCreate(em, { model: MODEL, input: "x", background: true });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(reply.text)).not.toHaveProperty("output_text");
  });

  it("polls from queued through in_progress (partial output) to completed", async () => {
    const em = await emulator({ tokenDelayMs: 20, queuedMs: 30, outputTokens: 20 });
    const client = sdk(em);
    const created = await client.responses.create({
      model: MODEL,
      input: "poll",
      background: true,
    });
    const seen = new Set<string>();
    let partial = "";
    let final = created;
    while (final.status === "queued" || final.status === "in_progress") {
      final = await client.responses.retrieve(created.id);
      seen.add(final.status ?? "");
      if (final.status === "in_progress" && final.output.length > 0) partial = final.output_text;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(seen).toContain("in_progress");
    expect(final.status).toBe("completed");
    expect(final.completed_at).toBeTypeOf("number");
    expect(final.service_tier).toBe("default");
    expect(final.output_text.startsWith(partial)).toBe(true);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(final.output_text.length);
    expect(final.usage).toMatchObject({
      output_tokens: 20,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
    expect(final.usage?.total_tokens).toBe(
      (final.usage?.input_tokens ?? 0) + (final.usage?.output_tokens ?? 0),
    );
  });
});

describe("background stream", () => {
  it("emits the documented order with sequence numbers 0..n and full snapshots", async () => {
    const em = await emulator();
    const stream = await sdk(em).responses.create({
      model: MODEL,
      input: "Order please",
      background: true,
      stream: true,
    });
    const list = await events(stream);
    expect(types(list)).toEqual(BACKGROUND_ORDER);
    expect(list.map((e) => e.sequence_number)).toEqual(list.map((_, i) => i));
    expect(lifecycleStatus(list, "response.created")).toBe("queued");
    expect(lifecycleStatus(list, "response.queued")).toBe("queued");
    expect(lifecycleStatus(list, "response.in_progress")).toBe("in_progress");
    const created = list[0]?.response as { usage: unknown; output: unknown[] };
    expect(created.usage).toBeNull();
    expect(created.output).toEqual([]);

    const deltas = list.filter((e) => e.type === "response.output_text.delta");
    const text = deltas.map((e) => e.delta).join("");
    const done = list.find((e) => e.type === "response.output_text.done");
    expect(done?.text).toBe(text);
    const completed = list.at(-1)?.response as {
      status: string;
      usage: { output_tokens: number };
      output: { status: string; content: { text: string }[] }[];
    };
    expect(completed.status).toBe("completed");
    expect(completed.usage.output_tokens).toBe(8);
    expect(completed.output[0]?.status).toBe("completed");
    expect(completed.output[0]?.content[0]?.text).toBe(text);
    const itemAdded = list[3]?.item as { id: string; status: string; content: unknown[] };
    expect(itemAdded.id).toMatch(/^msg_[0-9a-f]+$/);
    expect(itemAdded).toMatchObject({ status: "in_progress", content: [], role: "assistant" });
    for (const delta of deltas) expect(delta.item_id).toBe(itemAdded.id);
  });

  it("writes `event: <type>` + `data:` frames, no [DONE], with SSE headers", async () => {
    const em = await emulator();
    const reply = await rawCreate(em, {
      model: MODEL,
      input: "wire",
      background: true,
      stream: true,
    });
    expect(reply.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(reply.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]+$/);
    expect(reply.text).not.toContain("[DONE]");
    expect(reply.text.endsWith("\n\n")).toBe(true);
    expect(reply.frames.length).toBe(BACKGROUND_ORDER.length);
    for (const frame of reply.frames) {
      expect(frame.lines[0]).toMatch(/^event: /);
      expect(frame.lines.some((line) => line.startsWith("id:"))).toBe(false);
      expect(JSON.parse(frame.data).type).toBe(frame.event);
    }
  });

  it("keeps generating when the client disconnects mid-stream", async () => {
    const em = await emulator({ tokenDelayMs: 2, outputTokens: 200 });
    const client = sdk(em);
    const stream = await client.responses.create({
      model: MODEL,
      input: "walk away",
      background: true,
      stream: true,
    });
    let id = "";
    let deltasSeen = 0;
    for await (const event of stream) {
      if (event.type === "response.created") id = event.response.id;
      if (event.type === "response.output_text.delta") deltasSeen++;
      if (deltasSeen === 3) break; // aborts the HTTP request
    }
    expect(em.getResponse(id)?.status).toBe("in_progress");
    await until(() => em.getResponse(id)?.status === "completed");
    const final = await client.responses.retrieve(id);
    expect(final.status).toBe("completed");
    expect(final.usage?.output_tokens).toBe(200);
    expect(final.output_text.split(" ").length).toBeGreaterThan(100);
  });
});

describe("foreground", () => {
  it("JSON create waits for completion and returns the completed Response", async () => {
    const em = await emulator();
    const response = await sdk(em).responses.create({ model: MODEL, input: "sync" });
    expect(response.status).toBe("completed");
    expect(response.background).toBe(false);
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.usage?.output_tokens).toBe(8);
    // Stored by default, so it can be retrieved (but not streamed or cancelled).
    const again = await sdk(em).responses.retrieve(response.id);
    expect(again.output_text).toBe(response.output_text);
  });

  it("stream starts with created(in_progress) and has no queued event", async () => {
    const em = await emulator();
    const list = await events(
      await sdk(em).responses.create({ model: MODEL, input: "sync", stream: true }),
    );
    expect(types(list)).toEqual(BACKGROUND_ORDER.filter((t) => t !== "response.queued"));
    expect(lifecycleStatus(list, "response.created")).toBe("in_progress");
    expect(list.map((e) => e.sequence_number)).toEqual(list.map((_, i) => i));
  });

  it("store:false foreground responses cannot be retrieved", async () => {
    const em = await emulator();
    const response = await sdk(em).responses.create({ model: MODEL, input: "x", store: false });
    expect(response.status).toBe("completed");
    await expect(sdk(em).responses.retrieve(response.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("generated text", () => {
  it("is deterministic for (input, instructions, seed) and varies with each", async () => {
    const run = async (seed: number, input: string, instructions?: string) => {
      const em = await emulator({ seed, tokenDelayMs: 0, outputTokens: 30 });
      const response = await sdk(em).responses.create({ model: MODEL, input, instructions });
      return response.output_text;
    };
    const base = await run(7, "Tell me a story");
    expect(await run(7, "Tell me a story")).toBe(base);
    expect(await run(8, "Tell me a story")).not.toBe(base);
    expect(await run(7, "Tell me another story")).not.toBe(base);
    expect(await run(7, "Tell me a story", "Be brief")).not.toBe(base);
    expect(base).toMatch(/^[A-Z]/);
  });

  it("extracts text from message-array input", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    const client = sdk(em);
    const asString = await client.responses.create({ model: MODEL, input: "same words" });
    const asMessages = await client.responses.create({
      model: MODEL,
      input: [{ role: "user", content: [{ type: "input_text", text: "same words" }] }],
    });
    expect(asMessages.output_text).toBe(asString.output_text);
    expect(asMessages.usage?.input_tokens).toBe(asString.usage?.input_tokens);
  });

  it("deltas concatenate to the final text exactly", async () => {
    const em = await emulator({ tokenDelayMs: 0, outputTokens: 64 });
    const list = await events(
      await sdk(em).responses.create({
        model: MODEL,
        input: "concat",
        stream: true,
        background: true,
      }),
    );
    const joined = list
      .filter((e) => e.type === "response.output_text.delta")
      .map((e) => e.delta)
      .join("");
    const final = list.at(-1)?.response as { output: { content: { text: string }[] }[] };
    expect(outputText(final)).toBe(joined);
    expect(joined).toContain(".");
  });
});

describe("terminal outcomes", () => {
  it("max_output_tokens below the output length ends incomplete", async () => {
    const em = await emulator({ outputTokens: 40, tokenDelayMs: 0 });
    const list = await events(
      await sdk(em).responses.create({
        model: MODEL,
        input: "long",
        background: true,
        stream: true,
        max_output_tokens: 16,
      }),
    );
    expect(list.filter((e) => e.type === "response.output_text.delta")).toHaveLength(16);
    expect(list.at(-1)?.type).toBe("response.incomplete");
    const response = list.at(-1)?.response as {
      status: string;
      incomplete_details: unknown;
      completed_at: unknown;
      output: { status: string }[];
      usage: { output_tokens: number };
    };
    expect(response.status).toBe("incomplete");
    expect(response.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(response.completed_at).toBeNull();
    expect(response.output[0]?.status).toBe("incomplete");
    expect(response.usage.output_tokens).toBe(16);
    const itemDone = list.find((e) => e.type === "response.output_item.done")?.item;
    expect((itemDone as { status: string }).status).toBe("incomplete");
  });

  it("max_output_tokens at or above the output length completes", async () => {
    const em = await emulator({ outputTokens: 20, tokenDelayMs: 0 });
    const response = await sdk(em).responses.create({
      model: MODEL,
      input: "fits",
      max_output_tokens: 20,
    });
    expect(response.status).toBe("completed");
  });

  it("a scripted failure emits response.failed with an error after N deltas", async () => {
    const em = await emulator();
    const client = sdk(em);
    const list = await events(
      await client.responses.create(
        { model: MODEL, input: "fail", background: true, stream: true },
        { headers: { "x-emulator-script": JSON.stringify({ failAfterDeltas: 3 }) } },
      ),
    );
    expect(list.filter((e) => e.type === "response.output_text.delta")).toHaveLength(3);
    expect(types(list).slice(-2)).toEqual(["response.output_text.delta", "response.failed"]);
    const failed = list.at(-1)?.response as { id: string; status: string; error: unknown };
    expect(failed.status).toBe("failed");
    expect(failed.error).toEqual({ code: "server_error", message: expect.any(String) });
    const polled = await client.responses.retrieve(failed.id);
    expect(polled.status).toBe("failed");
    expect(polled.error?.code).toBe("server_error");
  });

  it("failCode / failMessage shape the error", async () => {
    const em = await emulator();
    const response = await sdk(em).responses.create(
      { model: MODEL, input: "fail" },
      {
        headers: {
          "x-emulator-script": JSON.stringify({
            failAfterDeltas: 0,
            failCode: "rate_limit_exceeded",
            failMessage: "slow down",
          }),
        },
      },
    );
    expect(response.status).toBe("failed");
    expect(response.error).toEqual({ code: "rate_limit_exceeded", message: "slow down" });
    expect(response.usage?.output_tokens).toBe(0);
  });
});

describe("obfuscation and keepalive", () => {
  it("delta events carry a seeded obfuscation string by default", async () => {
    const run = async () => {
      const em = await emulator({ seed: 3 });
      const list = await events(
        await sdk(em).responses.create({
          model: MODEL,
          input: "o",
          background: true,
          stream: true,
        }),
      );
      return list.filter((e) => e.type === "response.output_text.delta").map((e) => e.obfuscation);
    };
    const first = await run();
    for (const value of first) expect(value).toMatch(/^[A-Za-z0-9]+$/);
    expect(await run()).toEqual(first);
  });

  it("stream_options.include_obfuscation=false and the obfuscation option turn it off", async () => {
    const em = await emulator();
    const list = await events(
      await sdk(em).responses.create({
        model: MODEL,
        input: "o",
        background: true,
        stream: true,
        stream_options: { include_obfuscation: false },
      }),
    );
    const deltas = list.filter((e) => e.type === "response.output_text.delta");
    expect(deltas.length).toBe(8);
    for (const delta of deltas) expect(delta).not.toHaveProperty("obfuscation");

    const off = await emulator({ obfuscation: false });
    const plain = await events(
      await sdk(off).responses.create({ model: MODEL, input: "o", background: true, stream: true }),
    );
    for (const e of plain) expect(e).not.toHaveProperty("obfuscation");
  });

  it("keepaliveEvery inserts keepalive events that use up sequence numbers", async () => {
    const em = await emulator();
    const list = await events(
      await sdk(em).responses.create(
        { model: MODEL, input: "k", background: true, stream: true },
        { headers: { "x-emulator-script": JSON.stringify({ keepaliveEvery: 3 }) } },
      ),
    );
    const keepalives = list.filter((e) => e.type === "keepalive");
    expect(keepalives).toHaveLength(2); // after deltas 3 and 6 of 8
    expect(keepalives[0]).toEqual({ type: "keepalive", sequence_number: 8 });
    expect(list.map((e) => e.sequence_number)).toEqual(list.map((_, i) => i));
  });
});

describe("request validation", () => {
  it("max_output_tokens below 16 is integer_below_min_value", async () => {
    const em = await emulator();
    const error = await sdk(em)
      .responses.create({ model: MODEL, input: "x", max_output_tokens: 15 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({
      status: 400,
      code: "integer_below_min_value",
      param: "max_output_tokens",
      type: "invalid_request_error",
    });
    expect(em.countCreates()).toBe(1);
  });

  it("background:true with store:false is rejected", async () => {
    const em = await emulator();
    await expect(
      sdk(em).responses.create({ model: MODEL, input: "x", background: true, store: false }),
    ).rejects.toMatchObject({ status: 400, param: "background" });

    const lenient = await emulator({ rejectBackgroundWithoutStore: false });
    const response = await sdk(lenient).responses.create({
      model: MODEL,
      input: "x",
      background: true,
      store: false,
    });
    expect(response.status).toBe("queued");
    expect((response as unknown as { store: boolean }).store).toBe(false);
  });

  it("an unknown previous_response_id is previous_response_not_found", async () => {
    const em = await emulator();
    const client = sdk(em);
    await expect(
      client.responses.create({ model: MODEL, input: "x", previous_response_id: "resp_missing" }),
    ).rejects.toMatchObject({
      status: 400,
      code: "previous_response_not_found",
      param: "previous_response_id",
      message: "400 Previous response with id 'resp_missing' not found.",
    });
    const first = await client.responses.create({ model: MODEL, input: "x" });
    const second = await client.responses.create({
      model: MODEL,
      input: "y",
      previous_response_id: first.id,
    });
    expect(second.previous_response_id).toBe(first.id);
  });

  it("malformed JSON, a missing model and unknown routes are errors with an envelope", async () => {
    const em = await emulator();
    const bad = await raw(`${em.url}/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{nope",
    });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error).toMatchObject({ type: "invalid_request_error" });

    const noModel = await rawCreate(em, { input: "x" });
    expect(noModel.status).toBe(400);
    expect(JSON.parse(noModel.text).error).toMatchObject({ param: "model" });

    const unknown = await raw(`${em.url}/chat/completions`, { method: "POST", body: "{}" });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(unknown.text)).toEqual({
      error: {
        message: expect.any(String),
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    });
    expect(em.requests.map((r) => r.kind)).toEqual(["create", "create", "other"]);
  });

  it("every reply carries x-request-id, errors included", async () => {
    const em = await emulator();
    const replies = await Promise.all([
      rawCreate(em, { model: MODEL, input: "x", background: true }),
      raw(`${em.url}/responses/resp_unknown`),
      raw(`${em.url}/nowhere`),
    ]);
    const ids = replies.map((r) => r.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(3);
  });

  it("records requests with kinds, queries and headers but never the authorization", async () => {
    const em = await emulator();
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    await client.responses.retrieve(created.id, { include: ["message.output_text.logprobs"] });
    const [create, retrieve] = em.requests;
    expect(create).toMatchObject({ kind: "create", method: "POST", path: "/v1/responses" });
    expect(retrieve).toMatchObject({
      kind: "retrieve",
      method: "GET",
      responseId: created.id,
      query: { "include[]": "message.output_text.logprobs" },
    });
    expect(create?.headers).not.toHaveProperty("authorization");
    expect(JSON.stringify(em.requests)).not.toContain("test-key");
    expect(create?.headers["content-type"]).toBe("application/json");
  });
});
