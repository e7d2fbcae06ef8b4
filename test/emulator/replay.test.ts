/**
 * `GET /v1/responses/{id}?stream=true[&starting_after=N]`: replay of the event log, live
 * following, and the preconditions (background + stream, replay window), plus retention.
 */
import { BadRequestError, NotFoundError } from "openai";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../../src/emulator/index.js";
import { createdId, emulator, events, MODEL, raw, sdk, types, until } from "./helpers.js";

async function streamedResponse(em: Awaited<ReturnType<typeof emulator>>) {
  const client = sdk(em);
  const original = await events(
    await client.responses.create({
      model: MODEL,
      input: "replay me",
      background: true,
      stream: true,
    }),
  );
  const id = createdId(original);
  return { client, original, id };
}

describe("replay of a finished response", () => {
  it("without starting_after replays the whole log from sequence 0, identical", async () => {
    const em = await emulator();
    const { client, original, id } = await streamedResponse(em);
    const replay = await events(await client.responses.retrieve(id, { stream: true }));
    expect(replay).toEqual(original);
    expect(replay[0]?.type).toBe("response.created");
    expect(em.requests.at(-1)).toMatchObject({
      kind: "retrieve-stream",
      query: { stream: "true" },
    });
  });

  it("with starting_after=N yields only events with sequence_number > N", async () => {
    const em = await emulator();
    const { client, original, id } = await streamedResponse(em);
    const replay = await events(
      await client.responses.retrieve(id, { stream: true, starting_after: 6 }),
    );
    expect(replay.map((e) => e.sequence_number)).toEqual(
      original.filter((e) => e.sequence_number > 6).map((e) => e.sequence_number),
    );
    expect(replay).toEqual(original.slice(7));
  });

  it("starting_after at or past the last event gives an empty stream that closes", async () => {
    const em = await emulator();
    const { client, original, id } = await streamedResponse(em);
    const last = original.length - 1;
    expect(
      await events(await client.responses.retrieve(id, { stream: true, starting_after: last })),
    ).toEqual([]);
    expect(
      await events(await client.responses.retrieve(id, { stream: true, starting_after: 999 })),
    ).toEqual([]);
  });

  it("accepts include[] and include_obfuscation=false (which strips obfuscation)", async () => {
    const em = await emulator();
    const { original, id } = await streamedResponse(em);
    expect(original.some((e) => "obfuscation" in e)).toBe(true);
    const reply = await raw(
      `${em.url}/responses/${id}?stream=true&include_obfuscation=false&include[]=reasoning.encrypted_content`,
    );
    expect(reply.status).toBe(200);
    const replayed = reply.frames.map((f) => JSON.parse(f.data) as Record<string, unknown>);
    expect(replayed).toHaveLength(original.length);
    for (const event of replayed) expect(event).not.toHaveProperty("obfuscation");
    const { obfuscation: _o, ...firstDelta } = original[5] as Record<string, unknown>;
    expect(replayed[5]).toEqual(firstDelta);
  });

  it("rejects a non-integer starting_after", async () => {
    const em = await emulator();
    const { id } = await streamedResponse(em);
    const reply = await raw(`${em.url}/responses/${id}?stream=true&starting_after=abc`);
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text).error.param).toBe("starting_after");
  });
});

describe("replay of a running response", () => {
  it("replays what exists, then follows live to the terminal event", async () => {
    const em = await emulator({ tokenDelayMs: 10, outputTokens: 10 });
    const client = sdk(em);
    const created = await client.responses.create({
      model: MODEL,
      input: "live",
      background: true,
      stream: true,
    });
    const firstTwo: string[] = [];
    let id = "";
    for await (const event of created) {
      if (event.type === "response.created") id = event.response.id;
      firstTwo.push(event.type);
      if (firstTwo.length === 2) break;
    }
    const resumed = await events(
      await client.responses.retrieve(id, { stream: true, starting_after: 1 }),
    );
    expect(resumed[0]?.sequence_number).toBe(2);
    expect(types(resumed).at(-1)).toBe("response.completed");
    expect(resumed.map((e) => e.sequence_number)).toEqual(resumed.map((_, i) => i + 2));
    expect(resumed.filter((e) => e.type === "response.output_text.delta")).toHaveLength(10);
  });

  it("several followers of one response see the same frames", async () => {
    const em = await emulator({ tokenDelayMs: 3, outputTokens: 12 });
    const client = sdk(em);
    const stream = await client.responses.create({
      model: MODEL,
      input: "fan",
      background: true,
      stream: true,
    });
    let id = "";
    for await (const event of stream) {
      if (event.type === "response.created") id = event.response.id;
      break;
    }
    const [a, b, c] = await Promise.all([
      client.responses.retrieve(id, { stream: true }).then(events),
      client.responses.retrieve(id, { stream: true }).then(events),
      client.responses.retrieve(id, { stream: true, starting_after: 3 }).then(events),
    ]);
    expect(types(a).at(-1)).toBe("response.completed");
    expect(a).toEqual(b);
    expect(c).toEqual(a.slice(4));
  });
});

describe("the SDK's responses.stream() helper", () => {
  it("resumes by id (full replay, filtered locally) and accumulates the final response", async () => {
    const em = await emulator({ tokenDelayMs: 2 });
    const { client, original, id } = await streamedResponse(em);
    const emitted: number[] = [];
    const stream = client.responses.stream({ response_id: id, starting_after: 6 });
    stream.on("event", (event) => emitted.push(event.sequence_number));
    const final = await stream.finalResponse();
    expect(final.status).toBe("completed");
    expect(final.output_text).toBe(
      original
        .filter((e) => e.type === "response.output_text.delta")
        .map((e) => e.delta)
        .join(""),
    );
    expect(emitted).toEqual(original.slice(7).map((e) => e.sequence_number));
    // The helper never forwards starting_after: it asks for the whole log.
    expect(em.requests.at(-1)?.query).toEqual({ stream: "true" });
  });

  it("tolerates keepalive events (openai 6.49)", async () => {
    const em = await emulator();
    const final = await sdk(em)
      .responses.stream(
        { model: MODEL, input: "k", background: true },
        { headers: { "x-emulator-script": JSON.stringify({ keepaliveEvery: 2 }) } },
      )
      .finalResponse();
    expect(final.status).toBe("completed");
    expect(final.usage?.output_tokens).toBe(8);
  });
});

describe("replay preconditions", () => {
  it("a foreground response cannot be streamed (param stream)", async () => {
    const em = await emulator();
    const client = sdk(em);
    const response = await client.responses.create({ model: MODEL, input: "x" });
    const error = await client.responses
      .retrieve(response.id, { stream: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({
      param: "stream",
      message: "400 Response cannot be streamed, it was not created with background=true.",
    });
  });

  it("a background response created without stream cannot be streamed", async () => {
    const em = await emulator();
    const client = sdk(em);
    const response = await client.responses.create({ model: MODEL, input: "x", background: true });
    await expect(client.responses.retrieve(response.id, { stream: true })).rejects.toMatchObject({
      status: 400,
      param: "stream",
      message: expect.stringContaining("stream=true"),
    });
  });

  it("after the replay window (manual clock) streaming is refused but polling works", async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const em = await emulator({ clock });
    const { client, id } = await streamedResponse(em);
    clock.advance(299_000);
    expect(await events(await client.responses.retrieve(id, { stream: true }))).not.toEqual([]);
    clock.advance(2_000);
    const error = await client.responses.retrieve(id, { stream: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).message).toBe(
      "400 This response can no longer be streamed because it is more than 5 minutes old",
    );
    const polled = await client.responses.retrieve(id);
    expect(polled.status).toBe("completed");
    expect(polled.created_at).toBe(Date.UTC(2026, 0, 1, 12, 0, 0) / 1000);
  });

  it("the replay window is configurable", async () => {
    const clock = createManualClock();
    const em = await emulator({ clock, replayWindowMs: 10_000 });
    const { client, id } = await streamedResponse(em);
    clock.advance(11_000);
    await expect(client.responses.retrieve(id, { stream: true })).rejects.toBeInstanceOf(
      BadRequestError,
    );
  });
});

describe("retention", () => {
  it("after retentionMs a response is 404 for GET, cancel and delete", async () => {
    const clock = createManualClock();
    const em = await emulator({ clock, queuedMs: 10_000 });
    const client = sdk(em);
    const response = await client.responses.create({ model: MODEL, input: "x", background: true });
    clock.advance(600_000);
    expect((await client.responses.retrieve(response.id)).status).toBe("queued");
    clock.advance(1);
    await expect(client.responses.retrieve(response.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.responses.cancel(response.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.responses.delete(response.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(em.getResponse(response.id)).toBeUndefined();
  });

  it("expiry ends a live stream and stops generation", async () => {
    const clock = createManualClock();
    const em = await emulator({ clock, tokenDelayMs: 5, outputTokens: 1_000, retentionMs: 60_000 });
    const client = sdk(em);
    const stream = await client.responses.create({
      model: MODEL,
      input: "x",
      background: true,
      stream: true,
    });
    const seen: string[] = [];
    let id = "";
    const reading = (async () => {
      for await (const event of stream) {
        if (event.type === "response.created") id = event.response.id;
        seen.push(event.type);
      }
    })();
    await until(() => seen.includes("response.output_text.delta"));
    clock.advance(60_001);
    await expect(client.responses.retrieve(id)).rejects.toBeInstanceOf(NotFoundError);
    await reading; // the stream closed without a terminal event
    expect(seen.at(-1)).toBe("response.output_text.delta");
  });
});

describe("unknown ids", () => {
  it("404 with the documented wording and error type", async () => {
    const em = await emulator();
    const error = await sdk(em)
      .responses.retrieve("resp_nope")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({
      status: 404,
      type: "invalid_request_error",
      message: "404 Response with id 'resp_nope' not found.",
    });
    const streamError = await sdk(em)
      .responses.retrieve("resp_nope", { stream: true })
      .catch((e: unknown) => e);
    expect(streamError).toBeInstanceOf(NotFoundError);
  });
});
