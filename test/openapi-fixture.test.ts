/**
 * The spec validators of test/support/openapi-schema.ts, held against a hand-written background
 * stream (protocol.md §3, §4.3b) and against mutated copies of it that must fail.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  specStreamEventTypes,
  validateDeletedResponse,
  validateErrorBody,
  validateResponse,
  validateStreamEvent,
} from "./support/openapi-schema.js";

type Obj = Record<string, unknown>;

const fixture = JSON.parse(
  readFileSync(new URL("./fixtures/openapi-responses.schema.json", import.meta.url), "utf8"),
) as {
  "x-source": { sha256: string };
  "x-stream-event-count": number;
  "x-stream-events": Record<string, string>;
  $defs: Record<string, Obj>;
};

/** R(status) of protocol.md §4.3b: the §3 capture as a background response before it ends. */
function R(status: string, extra: Obj = {}): Obj {
  return {
    id: "resp_01ee",
    object: "response",
    created_at: 1789686481,
    status,
    background: true,
    completed_at: null,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: 32,
    max_tool_calls: null,
    model: "gpt-4o-mini-2024-07-18",
    output: [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: "auto",
    store: true,
    temperature: 1.0,
    text: { format: { type: "text" }, verbosity: "medium" },
    tool_choice: "auto",
    tools: [],
    top_logprobs: 0,
    top_p: 1.0,
    truncation: "disabled",
    usage: null,
    metadata: {},
    ...extra,
  };
}

const part = (text: string) => ({ type: "output_text", annotations: [], logprobs: [], text });
const message = (status: string, content: Obj[]) => ({
  id: "msg_01ee",
  type: "message",
  status,
  content,
  role: "assistant",
});
const usage = {
  input_tokens: 13,
  input_tokens_details: { cache_write_tokens: 0, cached_tokens: 0 },
  output_tokens: 6,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 19,
};

/** The frames of protocol.md §4.3b up to the terminal event, as the emulator would send them. */
function streamPrefix(text: string, itemStatus = "completed"): Obj[] {
  const ids = { item_id: "msg_01ee", output_index: 0, content_index: 0 };
  return [
    { type: "response.created", response: R("queued") },
    { type: "response.queued", response: R("queued") },
    { type: "response.in_progress", response: R("in_progress") },
    { type: "response.output_item.added", item: message("in_progress", []), output_index: 0 },
    { type: "response.content_part.added", ...ids, part: part("") },
    {
      type: "response.output_text.delta",
      ...ids,
      delta: "Hello",
      logprobs: [],
      obfuscation: "x9Qa",
    },
    { type: "response.output_text.delta", ...ids, delta: " there", logprobs: [], obfuscation: "k" },
    { type: "response.output_text.done", ...ids, text, logprobs: [] },
    { type: "response.content_part.done", ...ids, part: part(text) },
    { type: "response.output_item.done", item: message(itemStatus, [part(text)]), output_index: 0 },
  ];
}

function numbered(events: Obj[]): Obj[] {
  return events.map((event, sequence_number) => ({ ...event, sequence_number }));
}

const TEXT = "Hello there";
const terminal = {
  completed: {
    type: "response.completed",
    response: R("completed", {
      completed_at: 1789686482,
      output: [message("completed", [part(TEXT)])],
      service_tier: "default",
      usage,
    }),
  },
  incomplete: {
    type: "response.incomplete",
    response: R("incomplete", {
      incomplete_details: { reason: "max_output_tokens" },
      output: [message("incomplete", [part(TEXT)])],
      service_tier: "default",
      usage,
    }),
  },
  failed: {
    type: "response.failed",
    response: R("failed", {
      error: { code: "server_error", message: "The server had an error." },
      service_tier: "default",
      usage,
    }),
  },
};

const completedStream = numbered([...streamPrefix(TEXT), terminal.completed]);

/** Serialises events as SSE frames (§4.1) and parses them back, checking `event:` = `type`. */
function throughSse(events: Obj[]): Obj[] {
  const wire = events
    .map((event) => `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`)
    .join("");
  return wire
    .split("\n\n")
    .filter((frame) => frame.length > 0)
    .map((frame) => {
      const [eventLine, dataLine] = frame.split("\n");
      const data = JSON.parse(dataLine?.replace(/^data: /, "") ?? "") as Obj;
      expect(eventLine).toBe(`event: ${String(data.type)}`);
      return data;
    });
}

/** A deep copy of the event with the given sequence number, for mutation. */
function eventAt(sequence: number): Obj {
  const event = completedStream[sequence];
  if (!event) throw new Error(`no event ${sequence}`);
  return structuredClone(event);
}

function expectValid(errors: string[], what: string) {
  expect(errors, what).toEqual([]);
}

/** Fails unless some error line contains every fragment. */
function expectError(errors: string[], ...fragments: string[]) {
  expect(errors.length, "expected validation errors").toBeGreaterThan(0);
  const hit = errors.find((line) => fragments.every((fragment) => line.includes(fragment)));
  expect(hit, `no error mentions ${fragments.join(" + ")}:\n${errors.join("\n")}`).toBeDefined();
}

describe("a valid background stream transcript", () => {
  it("validates every event of queued → in_progress → text → completed", () => {
    const events = throughSse(completedStream);
    expect(events.map((e) => e.type)).toEqual([
      "response.created",
      "response.queued",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    for (const event of events) {
      expectValid(validateStreamEvent(event), `#${event.sequence_number} ${String(event.type)}`);
    }
  });

  it("validates the incomplete and failed endings and a spec-shaped error event", () => {
    const incomplete = numbered([...streamPrefix(TEXT, "incomplete"), terminal.incomplete]);
    const failed = numbered([...streamPrefix(TEXT).slice(0, 3), terminal.failed]);
    const error = { type: "error", code: "server_error", message: "boom", param: null };
    const errored = numbered([...streamPrefix(TEXT).slice(0, 6), error]);
    for (const event of [...incomplete, ...failed, ...errored]) {
      expectValid(validateStreamEvent(event), `#${event.sequence_number} ${String(event.type)}`);
    }
    expectValid(
      validateStreamEvent({
        type: "error",
        code: null,
        message: "m",
        param: null,
        sequence_number: 3,
      }),
      "error event with null code",
    );
  });

  it("validates the Response bodies: snapshot, terminal, cancelled, with the SDK's output_text", () => {
    for (const ending of Object.values(terminal)) {
      expectValid(validateResponse(ending.response), String(ending.response.status));
    }
    expectValid(validateResponse(R("queued")), "queued snapshot");
    // POST /responses/{id}/cancel example (spec): the item stays in_progress, usage stays null.
    const cancelled = R("cancelled", { output: [message("in_progress", [part("Hel")])] });
    expectValid(validateResponse(cancelled), "cancelled");
    expectValid(
      validateResponse({ ...R("completed"), output_text: "Hello there" }),
      "output_text (SDK-only convenience property)",
    );
  });

  it("accepts keepalive frames (openai-node#1964) but still requires their sequence_number", () => {
    expectValid(validateStreamEvent({ type: "keepalive", sequence_number: 466 }), "keepalive");
    expectError(
      validateStreamEvent({ type: "keepalive" }),
      'missing required property "sequence_number"',
    );
    expectError(
      validateStreamEvent({ type: "keepalive", sequence_number: 1, data: 1 }),
      "/data",
      "unexpected property",
    );
  });
});

describe("mutated events fail with an error naming the problem", () => {
  it("reports a missing sequence_number", () => {
    const delta = eventAt(5);
    delete delta.sequence_number;
    expectError(
      validateStreamEvent(delta),
      "(root)",
      'missing required property "sequence_number"',
    );
  });

  it("reports a status outside the enum, with its path", () => {
    const event = eventAt(2);
    (event.response as Obj).status = "running";
    expectError(validateStreamEvent(event), "/response/status", '"running"', "in_progress");
    const added = eventAt(3);
    (added.item as Obj).status = "done";
    expectError(validateStreamEvent(added), "/item/status", '"done"');
  });

  it("reports misspelled extra fields at the top level and in nested items and parts", () => {
    const delta = eventAt(5);
    delta.outputIndex = 0;
    expectError(validateStreamEvent(delta), "/outputIndex", "unexpected property");

    const added = eventAt(3);
    (added.item as Obj).rolee = "assistant";
    expectError(validateStreamEvent(added), "/item/rolee", "unexpected property");

    const partDone = eventAt(8);
    (partDone.part as Obj).anotations = [];
    expectError(validateStreamEvent(partDone), "/part/anotations", "unexpected property");

    const completed = eventAt(10);
    const response = completed.response as Obj;
    response.complete_at = response.completed_at;
    expectError(validateStreamEvent(completed), "/response/complete_at", "unexpected property");

    const nested = eventAt(10);
    const [item] = (nested.response as Obj).output as Obj[];
    const [content] = (item as Obj).content as Obj[];
    (content as Obj).txt = "Hello there";
    expectError(
      validateStreamEvent(nested),
      "/response/output/0/content/0/txt",
      "unexpected property",
    );
    // Only the misspelling is reported, not one line per member of the output item union.
    expect(validateStreamEvent(nested)).toHaveLength(1);
  });

  it("accepts obfuscation on delta events only", () => {
    const done = eventAt(7);
    done.obfuscation = "x9Qa";
    expectError(validateStreamEvent(done), "/obfuscation", "unexpected property");
  });

  it("rejects an unknown event type, naming it", () => {
    const cancelled = { type: "response.cancelled", response: R("cancelled"), sequence_number: 3 };
    expectError(validateStreamEvent(cancelled), "unknown stream event type", "response.cancelled");
    expectError(validateStreamEvent({ sequence_number: 1 }), "/type");
    expectError(validateStreamEvent("data: [DONE]"), "must be an object");
  });

  it("reports a missing required Response field inside an event and in a body", () => {
    const completed = eventAt(10);
    delete (completed.response as Obj).model;
    expectError(validateStreamEvent(completed), "/response", 'missing required property "model"');
    const body = R("completed");
    delete body.output;
    expectError(validateResponse(body), "(root)", 'missing required property "output"');
  });

  it("reports wrong types and enums deep inside the Response", () => {
    const completed = eventAt(10);
    ((completed.response as Obj).usage as Obj).total_tokens = "19";
    expectError(validateStreamEvent(completed), "/response/usage/total_tokens", "integer");
    const failed = structuredClone(terminal.failed) as Obj;
    ((failed.response as Obj).error as Obj).code = "boom";
    expectError(validateStreamEvent({ ...failed, sequence_number: 3 }), "/response/error/code");
  });

  it("rejects the non-spec nested error event that some servers send (protocol.md §4.4)", () => {
    const nested = { type: "error", error: { message: "m", code: null, param: null } };
    expectError(
      validateStreamEvent({ ...nested, sequence_number: 2 }),
      "/error",
      "unexpected property",
    );
  });

  it("accepts the Response fields that the spec's examples and real captures have", () => {
    // The schema does not declare `store` and types `usage` and `user` as non-nullable, yet the
    // spec's own examples and protocol.md §3 carry `store: true`, `usage: null`, `user: null`.
    expectValid(validateResponse(R("queued", { user: null })), "store, usage null, user null");
    expectError(validateResponse(R("queued", { user: 7 })), "/user", "string");
    expectError(validateResponse(R("queued", { store: "yes" })), "/store", "boolean");
    expectError(
      validateResponse(R("queued", { usage: { total_tokens: 1 } })),
      "/usage",
      "input_tokens",
    );
  });
});

describe("error envelope and delete reply", () => {
  it("validates the error envelope of protocol.md §2.5", () => {
    expectValid(
      validateErrorBody({
        error: {
          message: "Previous response with id 'resp_000' not found.",
          type: "invalid_request_error",
          param: "previous_response_id",
          code: "previous_response_not_found",
        },
      }),
      "400 envelope",
    );
    const notFound = {
      message: "Response with id 'resp_x' not found.",
      type: "invalid_request_error",
    };
    expectValid(validateErrorBody({ error: { ...notFound, param: null, code: null } }), "404");
    expectError(
      validateErrorBody({ error: notFound }),
      "/error",
      'missing required property "param"',
    );
    expectError(validateErrorBody({ ...notFound, param: null, code: null }), 'property "error"');
    expectError(
      validateErrorBody({ error: { ...notFound, param: null, code: null, status: 404 } }),
      "/error/status",
      "unexpected property",
    );
  });

  it("validates the DELETE /responses/{id} reply of the spec's example", () => {
    expectValid(validateDeletedResponse({ id: "resp_1", object: "response", deleted: true }), "ok");
    expectError(
      validateDeletedResponse({ id: "resp_1", object: "response.deleted", deleted: true }),
      "/object",
    );
    expectError(validateDeletedResponse({ id: "resp_1", object: "response" }), '"deleted"');
  });
});

describe("specStreamEventTypes", () => {
  const types = specStreamEventTypes();

  it("lists the core text events, sorted and unique, without extensions", () => {
    for (const type of [
      "response.created",
      "response.queued",
      "response.in_progress",
      "response.output_item.added",
      "response.output_item.done",
      "response.content_part.added",
      "response.content_part.done",
      "response.output_text.delta",
      "response.output_text.done",
      "response.completed",
      "response.incomplete",
      "response.failed",
      "error",
    ]) {
      expect(types).toContain(type);
    }
    expect(types).toEqual([...new Set(types)].sort());
    expect(types).not.toContain("keepalive");
    expect(types).not.toContain("response.cancelled");
  });

  it("has as many members as the spec's ResponseStreamEvent union", () => {
    const union = fixture.$defs.ResponseStreamEvent?.anyOf as unknown[];
    expect(union.length).toBeGreaterThan(50);
    expect(types).toHaveLength(union.length);
    expect(types).toHaveLength(fixture["x-stream-event-count"]);
  });

  it("routes every listed type to its own schema", () => {
    for (const type of types) {
      const errors = validateStreamEvent({ type });
      expect(errors.join("\n")).not.toContain("unknown stream event type");
      expectError(errors, 'missing required property "sequence_number"');
    }
  });
});
