/**
 * Schema conformance: every JSON body and every SSE event the emulator sends, over a tour of all
 * its behaviours, validates against the official OpenAPI spec (test/support/openapi-schema.ts),
 * and every event type it emits is a member of the spec's ResponseStreamEvent union, except the
 * documented non-spec `keepalive`.
 */
import { describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  specStreamEventTypes,
  validateDeletedResponse,
  validateErrorBody,
  validateResponse,
  validateStreamEvent,
} from "../support/openapi-schema.js";
import { emulator, MODEL, type RawReply, raw, rawCreate, until } from "./helpers.js";

/** What the tour saw on the wire. */
interface Seen {
  responses: { label: string; body: unknown }[];
  errors: { label: string; status: number; body: unknown }[];
  events: { label: string; event: unknown }[];
  deleted: unknown[];
}

function record(seen: Seen, label: string, reply: RawReply): void {
  if (
    reply.frames.length > 0 ||
    reply.headers.get("content-type")?.startsWith("text/event-stream")
  ) {
    for (const frame of reply.frames) seen.events.push({ label, event: JSON.parse(frame.data) });
    return;
  }
  expect(reply.headers.get("content-type"), label).toBe("application/json");
  const body: unknown = JSON.parse(reply.text);
  if (reply.status >= 400) seen.errors.push({ label, status: reply.status, body });
  else seen.responses.push({ label, body });
}

async function tour(): Promise<Seen> {
  const seen: Seen = { responses: [], errors: [], events: [], deleted: [] };
  const em: Emulator = await emulator({ tokenDelayMs: 0, outputTokens: 20, apiKey: "test-key" });
  const base = `${em.url}/responses`;
  const create = async (label: string, body: Record<string, unknown>, headers = {}) => {
    const reply = await raw(base, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: MODEL, input: "conformance", ...body }),
    });
    record(seen, label, reply);
    return reply;
  };
  const get = async (label: string, path: string, init: RequestInit = {}) => {
    const reply = await raw(`${base}/${path}`, init);
    record(seen, label, reply);
    return reply;
  };
  const script = (value: object) => ({ "x-emulator-script": JSON.stringify(value) });

  // Streams of every outcome.
  const streamed = await create("bg stream", { background: true, stream: true });
  const streamedId = (JSON.parse(streamed.frames[0]?.data ?? "{}") as { response: { id: string } })
    .response.id;
  await create("fg stream", { stream: true, instructions: "be brief", metadata: { k: "v" } });
  await create("incomplete stream", { background: true, stream: true, max_output_tokens: 16 });
  await create("failed stream", { background: true, stream: true }, script({ failAfterDeltas: 2 }));
  await create(
    "keepalive stream",
    { background: true, stream: true },
    script({ keepaliveEvery: 4 }),
  );
  await create("plain stream", {
    background: true,
    stream: true,
    stream_options: { include_obfuscation: false },
  });
  await get("replay", `${streamedId}?stream=true`);
  await get(
    "replay after 5",
    `${streamedId}?stream=true&starting_after=5&include_obfuscation=false`,
  );

  // Cancel while a stream follows: response.failed with status cancelled, and cancel replies.
  const cancelling = await emulator({ tokenDelayMs: 5, outputTokens: 500 });
  const created = await fetch(`${cancelling.url}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, input: "x", background: true, stream: true }),
  });
  const reader = created.body?.getReader();
  const first = new TextDecoder().decode((await reader?.read())?.value);
  await reader?.cancel(); // walk away; generation goes on
  const longId = (/"id":"(resp_[0-9a-f]+)"/.exec(first) ?? [])[1] ?? "";
  await until(() => cancelling.getResponse(longId)?.status === "in_progress");
  const following = raw(`${cancelling.url}/responses/${longId}?stream=true`);
  await until(() => cancelling.requests.length === 2);
  const cancelUrl = `${cancelling.url}/responses/${longId}/cancel`;
  record(seen, "cancel in_progress", await raw(cancelUrl, { method: "POST" }));
  record(seen, "cancel again", await raw(cancelUrl, { method: "POST" }));
  record(seen, "retrieve cancelled", await raw(`${cancelling.url}/responses/${longId}`));
  const followed = await following;
  expect(JSON.parse(followed.frames.at(-1)?.data ?? "{}")).toMatchObject({
    type: "response.failed",
    response: { status: "cancelled" },
  });
  record(seen, "stream cancelled", followed);
  record(
    seen,
    "metadata script",
    await rawCreate(cancelling, {
      model: MODEL,
      input: "x",
      background: true,
      stream: true,
      metadata: { emulator_script: JSON.stringify({ outputTokens: 3, tokenDelayMs: 0 }) },
    }),
  );

  // JSON bodies of every state.
  const queued = await create("bg create", { background: true });
  const queuedId = (JSON.parse(queued.text) as { id: string }).id;
  await until(() => em.getResponse(queuedId)?.status === "completed");
  await get("retrieve completed", queuedId);
  await create("fg create", {});
  await create("fg incomplete", { max_output_tokens: 16 });
  await create("fg failed", {}, script({ failAfterDeltas: 1 }));
  await create("fg message input", {
    input: [{ role: "user", content: [{ type: "input_text", text: "hi" }] }],
    temperature: 0.5,
    top_p: 0.9,
  });

  // Errors.
  await create("max_output_tokens < 16", { max_output_tokens: 3 });
  await create("background without store", { background: true, store: false });
  await create("unknown previous", { previous_response_id: "resp_missing" });
  await create("bad metadata", { metadata: { n: 1 } });
  await get("unknown id", "resp_missing");
  await get("cancel unknown", "resp_missing/cancel", { method: "POST" });
  await get("cancel completed", `${queuedId}/cancel`, { method: "POST" });
  await get("replay not streamed", `${queuedId}?stream=true`);
  await get("bad starting_after", `${streamedId}?stream=true&starting_after=x`);
  record(seen, "bad json", await raw(base, { method: "POST", body: "{" }));
  record(seen, "unknown route", await raw(`${em.url}/nope`));
  record(
    seen,
    "no api key",
    await raw(base, { method: "POST", headers: { authorization: "Bearer wrong" }, body: "{}" }),
  );
  for (const code of [429, 500, 503]) {
    await create(
      `fault ${code}`,
      {},
      {
        "x-emulator-fault": JSON.stringify({
          status: { code, retryAfterMs: 10, shouldRetry: false },
        }),
      },
    );
  }

  // Delete.
  const deleted = await raw(`${base}/${queuedId}`, { method: "DELETE" });
  expect(deleted.status).toBe(200);
  seen.deleted.push(JSON.parse(deleted.text));
  return seen;
}

describe("schema conformance", () => {
  it("every body and event of a tour of all behaviours validates against the spec", async () => {
    const seen = await tour();
    const problems: string[] = [];
    for (const { label, body } of seen.responses) {
      for (const line of validateResponse(body)) problems.push(`${label}: ${line}`);
    }
    for (const { label, body } of seen.errors) {
      for (const line of validateErrorBody(body)) problems.push(`${label}: ${line}`);
    }
    for (const { label, event } of seen.events) {
      for (const line of validateStreamEvent(event)) {
        problems.push(`${label} ${(event as { type: string }).type}: ${line}`);
      }
      const response = (event as { response?: unknown }).response;
      if (response !== undefined) {
        for (const line of validateResponse(response)) problems.push(`${label} response: ${line}`);
      }
    }
    for (const body of seen.deleted) {
      for (const line of validateDeletedResponse(body)) problems.push(`delete: ${line}`);
    }
    expect(problems).toEqual([]);

    // The tour really covered what it claims (so that an empty problem list means something).
    expect(seen.responses.length).toBeGreaterThanOrEqual(9);
    expect(new Set(seen.errors.map((e) => e.status))).toEqual(
      new Set([400, 401, 404, 429, 500, 503]),
    );
    const statuses = new Set(seen.responses.map((r) => (r.body as { status: string }).status));
    for (const status of ["queued", "completed", "incomplete", "failed", "cancelled"]) {
      expect(statuses).toContain(status);
    }
  });

  it("every event type emitted is in the spec's ResponseStreamEvent union, except keepalive", async () => {
    const seen = await tour();
    const emitted = new Set(seen.events.map(({ event }) => (event as { type: string }).type));
    const spec = new Set(specStreamEventTypes());
    expect(spec.size).toBeGreaterThan(50);
    const outside = [...emitted].filter((type) => !spec.has(type));
    expect(outside).toEqual(["keepalive"]);
    expect([...emitted].sort()).toEqual(
      [
        "keepalive",
        "response.completed",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.failed",
        "response.in_progress",
        "response.incomplete",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.queued",
      ].sort(),
    );
  });
});
