/** `POST /v1/responses/{id}/cancel` in every state, and what live streams see on cancel. */
import { BadRequestError, NotFoundError } from "openai";
import { describe, expect, it } from "vitest";
import {
  type AnyEvent,
  createdId,
  emulator,
  events,
  MODEL,
  outputText,
  sdk,
  types,
  until,
} from "./helpers.js";

describe("cancel", () => {
  it("a queued response becomes cancelled and never starts", async () => {
    // Long enough that the cancel surely lands while queued, even on a loaded machine.
    const em = await emulator({ queuedMs: 300 });
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    const cancelled = await client.responses.cancel(created.id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.completed_at).toBeNull();
    expect(cancelled.usage).toBeNull();
    expect(cancelled.output).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await client.responses.retrieve(created.id)).status).toBe("cancelled");
    expect(em.getResponse(created.id)?.output).toEqual([]);
    expect(em.requests.at(-2)).toMatchObject({ kind: "cancel", responseId: created.id });
  });

  it("a stuck-queued response can be cancelled", async () => {
    const em = await emulator({ queuedMs: 0 });
    const client = sdk(em);
    const created = await client.responses.create(
      { model: MODEL, input: "x", background: true },
      { headers: { "x-emulator-script": JSON.stringify({ stuckQueued: true }) } },
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await client.responses.retrieve(created.id)).status).toBe("queued");
    expect((await client.responses.cancel(created.id)).status).toBe("cancelled");
  });

  it("an in_progress response stops generating and keeps its partial output", async () => {
    const em = await emulator({ tokenDelayMs: 5, outputTokens: 200 });
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    await until(() => outputText(em.getResponse(created.id) ?? { output: [] }).length > 0);
    const cancelled = await client.responses.cancel(created.id);
    expect(cancelled.status).toBe("cancelled");
    const partial = outputText(cancelled as Parameters<typeof outputText>[0]);
    expect(partial.length).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const later = await client.responses.retrieve(created.id);
    expect(later.status).toBe("cancelled");
    expect(later.output_text).toBe(partial);
    expect(later.usage).toBeNull();
  });

  it("twice is idempotent: 200 with the same object", async () => {
    const em = await emulator({ queuedMs: 100 });
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    const first = await client.responses.cancel(created.id);
    const second = await client.responses.cancel(created.id);
    expect(second).toEqual(first);
    expect(second.status).toBe("cancelled");
  });

  it("a completed response gives 400 'Cannot cancel a completed response.'", async () => {
    const em = await emulator({ tokenDelayMs: 0 });
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    await until(() => em.getResponse(created.id)?.status === "completed");
    const error = await client.responses.cancel(created.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({
      status: 400,
      type: "invalid_request_error",
      message: "400 Cannot cancel a completed response.",
    });
  });

  it("failed and incomplete responses give the same 400", async () => {
    const em = await emulator({ tokenDelayMs: 0, outputTokens: 20 });
    const client = sdk(em);
    const failed = await client.responses.create(
      { model: MODEL, input: "x", background: true },
      { headers: { "x-emulator-script": JSON.stringify({ failAfterDeltas: 1 }) } },
    );
    const incomplete = await client.responses.create({
      model: MODEL,
      input: "x",
      background: true,
      max_output_tokens: 16,
    });
    await until(() => em.getResponse(failed.id)?.status === "failed");
    await until(() => em.getResponse(incomplete.id)?.status === "incomplete");
    await expect(client.responses.cancel(failed.id)).rejects.toBeInstanceOf(BadRequestError);
    await expect(client.responses.cancel(incomplete.id)).rejects.toBeInstanceOf(BadRequestError);
  });

  it("cancelCompleted:'return' answers 200 with the final object instead", async () => {
    const em = await emulator({ tokenDelayMs: 0, cancelCompleted: "return" });
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    await until(() => em.getResponse(created.id)?.status === "completed");
    const result = await client.responses.cancel(created.id);
    expect(result.status).toBe("completed");
    expect(result.usage?.output_tokens).toBe(8);
  });

  it("a synchronous response gives 400 'Cannot cancel a synchronous response.'", async () => {
    const em = await emulator();
    const client = sdk(em);
    const response = await client.responses.create({ model: MODEL, input: "x" });
    await expect(client.responses.cancel(response.id)).rejects.toMatchObject({
      status: 400,
      message: "400 Cannot cancel a synchronous response.",
    });
  });

  it("an unknown id gives 404", async () => {
    const em = await emulator();
    await expect(sdk(em).responses.cancel("resp_unknown")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("live streams on cancel", () => {
  async function cancelMidStream(streamOnCancel: "failed-event" | "close") {
    const em = await emulator({ tokenDelayMs: 5, outputTokens: 500, streamOnCancel });
    const client = sdk(em);
    const stream = await client.responses.create({
      model: MODEL,
      input: "x",
      background: true,
      stream: true,
    });
    const seen: AnyEvent[] = [];
    let cancelled = false;
    for await (const event of stream) {
      seen.push(event as unknown as AnyEvent);
      const deltas = seen.filter((e) => e.type === "response.output_text.delta").length;
      if (deltas === 3 && !cancelled) {
        cancelled = true;
        await client.responses.cancel(createdId(seen));
      }
    }
    return { em, client, seen, id: createdId(seen) };
  }

  it("failed-event: the stream ends with response.failed whose status is cancelled", async () => {
    const { client, seen, id } = await cancelMidStream("failed-event");
    const last = seen.at(-1);
    expect(last?.type).toBe("response.failed");
    expect(last?.response).toMatchObject({ status: "cancelled" });
    expect(types(seen)).not.toContain("response.cancelled");
    expect(types(seen)).not.toContain("response.completed");
    // The terminal event is in the log: a replay ends the same way.
    const replay = await events(await client.responses.retrieve(id, { stream: true }));
    expect(replay.at(-1)).toEqual(last);
  });

  it("close: the stream just ends, without a terminal event", async () => {
    const { client, seen, id } = await cancelMidStream("close");
    expect(seen.at(-1)?.type).toBe("response.output_text.delta");
    expect((await client.responses.retrieve(id)).status).toBe("cancelled");
    const replay = await events(await client.responses.retrieve(id, { stream: true }));
    expect(replay.at(-1)?.type).toBe("response.output_text.delta");
  });
});

describe("delete", () => {
  it("answers the deleted object; later GETs are 404 and generation stops", async () => {
    const em = await emulator({ tokenDelayMs: 5, outputTokens: 100 });
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    const reply = await fetch(`${em.url}/responses/${created.id}`, { method: "DELETE" });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toBe("application/json");
    expect(await reply.json()).toEqual({ id: created.id, object: "response", deleted: true });
    await expect(client.responses.retrieve(created.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.responses.delete(created.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(em.getResponse(created.id)).toBeUndefined();
    expect(em.requests.filter((r) => r.kind === "delete").map((r) => r.responseId)).toEqual([
      created.id,
      created.id,
    ]);
  });

  it("the SDK's delete resolves", async () => {
    const em = await emulator();
    const client = sdk(em);
    const created = await client.responses.create({ model: MODEL, input: "x", background: true });
    await client.responses.delete(created.id); // typed void; must not throw
    expect(em.getResponse(created.id)).toBeUndefined();
  });

  it("ends live streams of the deleted response", async () => {
    const em = await emulator({ tokenDelayMs: 5, outputTokens: 1_000 });
    const client = sdk(em);
    const stream = await client.responses.create({
      model: MODEL,
      input: "x",
      background: true,
      stream: true,
    });
    const seen: string[] = [];
    for await (const event of stream) {
      seen.push(event.type);
      if (event.type === "response.created") await client.responses.delete(event.response.id);
    }
    expect(seen.length).toBeLessThan(10);
  });
});
