/**
 * A server that answers garbage (issue 13, "a server that answers garbage"): random statuses,
 * content types, bodies (JSON of any shape, Response objects with wrong fields, event streams of
 * random events, raw bytes, truncated JSON), huge and nonsense headers, cut and stalled
 * connections, for each of create, create-stream, retrieve, stream and cancel. Every call ends
 * in a typed `ClientFailureError` or a well-formed value: never another error (a crash), never
 * an uncaught exception, never a hang (a bounded time per call, with a signal as the machine
 * gives each call). Counts go to the test's output; `SOAK_RUNS` runs more.
 */
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  ClientFailureError,
  type ClientFailureKind,
  openAIResponsesClient,
  type ResponseState,
  type ResponseStreamEvent,
  type ResponsesClient,
} from "../../src/index.js";
import { type ScriptedServer, scriptedServer } from "../support/scripted-server.js";

const runs = Number(process.env.SOAK_RUNS ?? process.env.PROPERTY_RUNS ?? 200);
/** The signal every call gets (the machine bounds each call the same way). */
const CALL_TIMEOUT_MS = 400;
/** Past this, a call that has not settled is a hang. */
const HANG_MS = 15_000;
/** A stream is read to its end, or this many events. */
const MAX_EVENTS = 2_000;

type Cut = "none" | "mid-body" | "short-length" | "stall-headers" | "stall-body";
interface Reply {
  status: number;
  contentType: string | null;
  headers: Record<string, string>;
  body: string | Uint8Array;
  cut: Cut;
  cutAt: number;
}
type Call = "create" | "createStream" | "retrieve" | "streamFrom" | "cancel";

const ID = "resp_garbage";
const STATUSES = ["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"];
const EVENT_TYPES = [
  "response.created",
  "response.queued",
  "response.in_progress",
  "response.output_text.delta",
  "response.completed",
  "response.failed",
  "response.incomplete",
  "error",
  "keepalive",
];

const anyValue = fc.jsonValue({ maxDepth: 3 });
const responseLike = fc.record(
  {
    id: fc.oneof(fc.constant(ID), fc.string({ maxLength: 20 }), fc.integer(), fc.constant(null)),
    status: fc.oneof(fc.constantFrom(...STATUSES), fc.string({ maxLength: 10 }), fc.integer()),
    output: fc.oneof(
      anyValue,
      fc.array(
        fc.record(
          {
            type: fc.oneof(fc.constant("message"), fc.string({ maxLength: 8 })),
            content: fc.oneof(
              anyValue,
              fc.array(
                fc.record(
                  {
                    type: fc.oneof(fc.constant("output_text"), fc.string({ maxLength: 8 })),
                    text: fc.oneof(fc.string(), anyValue),
                  },
                  { requiredKeys: [] },
                ),
                { maxLength: 3 },
              ),
            ),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    ),
    usage: fc.oneof(
      anyValue,
      fc.record(
        {
          input_tokens: fc.oneof(fc.integer(), fc.double(), fc.string()),
          output_tokens: fc.oneof(fc.integer(), fc.double(), fc.string()),
          total_tokens: fc.oneof(fc.integer(), anyValue),
        },
        { requiredKeys: [] },
      ),
    ),
    error: fc.oneof(
      anyValue,
      fc.record({ code: anyValue, message: anyValue }, { requiredKeys: [] }),
    ),
    incomplete_details: fc.oneof(anyValue, fc.record({ reason: anyValue })),
    created_at: fc.oneof(fc.integer(), fc.double(), anyValue),
  },
  { requiredKeys: [] },
);

const eventLike = fc.record(
  {
    type: fc.oneof(fc.constantFrom(...EVENT_TYPES), fc.string({ maxLength: 12 }), fc.integer()),
    sequence_number: fc.oneof(
      fc.nat({ max: 50 }),
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 4 }),
      fc.constant(null),
    ),
    response: fc.oneof(responseLike, anyValue),
    delta: fc.oneof(fc.string({ maxLength: 10 }), anyValue),
    code: anyValue,
    message: anyValue,
    error: anyValue,
  },
  { requiredKeys: [] },
);

/** One frame of an event stream: mostly well framed, sometimes not. */
const sseFrame = fc.oneof(
  eventLike.map((e) => `event: ${String(e.type)}\ndata: ${JSON.stringify(e)}\n\n`),
  eventLike.map((e) => `data: ${JSON.stringify(e)}\n\n`),
  fc.string({ maxLength: 40 }).map((s) => `data: ${s}\n\n`),
  fc.constant("data: [DONE]\n\n"),
  fc.constant(": keepalive\n\n"),
  fc.string({ maxLength: 40 }),
  fc.constant(`data: ${"9".repeat(400)}\n\n`),
  fc.constant(
    'data: {"type":"response.output_text.delta","sequence_number":1e400,"delta":"x"}\n\n',
  ),
);

const textBody = fc.oneof(
  anyValue.map((v) => JSON.stringify(v)),
  responseLike.map((v) => JSON.stringify(v)),
  fc
    .record({ error: fc.oneof(anyValue, fc.record({ message: anyValue, code: anyValue })) })
    .map((v) => JSON.stringify(v)),
  fc.array(sseFrame, { maxLength: 12 }).map((frames) => frames.join("")),
  fc.string({ maxLength: 200 }),
  fc.constant("<html><body>502 Bad Gateway</body></html>"),
  fc.constant(""),
);

/** Truncated: the same kinds of body cut at a random place. */
const body = fc.oneof(
  textBody,
  fc
    .tuple(textBody, fc.double({ min: 0, max: 1, noNaN: true }))
    .map(([t, at]) => t.slice(0, Math.floor(t.length * at))),
  fc.uint8Array({ maxLength: 300 }),
);

const headerValue = fc.oneof(
  fc.constantFrom(
    "-5",
    "NaN",
    "1e308",
    "999999999",
    "0",
    "20",
    "Fri, 01 Jan 2099 00:00:00 GMT",
    "",
  ),
  fc.string({ maxLength: 20 }).map((s) => s.replace(/[^\x20-\x7e]/g, "")),
);
const someHeaders = fc.record(
  {
    "retry-after": headerValue,
    "retry-after-ms": headerValue,
    "openai-poll-after-ms": headerValue,
    "x-should-retry": fc.constantFrom("true", "false", "maybe"),
    "x-request-id": headerValue,
    location: fc.constantFrom("/v1/responses", "/v1/responses/resp_garbage", "", "::not a url::"),
  },
  { requiredKeys: [] },
);
/** Now and then a header past what `fetch` accepts (16 KB), or just under it. */
const headers = fc
  .tuple(
    someHeaders,
    fc.oneof(
      { weight: 12, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom("a".repeat(12_000), "b".repeat(70_000)) },
    ),
  )
  .map(([h, huge]) => (huge === undefined ? h : { ...h, "x-huge": huge }));

const reply: fc.Arbitrary<Reply> = fc.record({
  status: fc.oneof(
    { weight: 4, arbitrary: fc.constant(200) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        201,
        204,
        301,
        302,
        307,
        308,
        400,
        401,
        404,
        409,
        429,
        500,
        502,
        503,
      ),
    },
    { weight: 2, arbitrary: fc.integer({ min: 200, max: 599 }) },
  ),
  contentType: fc.oneof(
    fc.constant("application/json"),
    fc.constant("text/event-stream"),
    fc.constant("text/event-stream; charset=utf-8"),
    fc.constant("text/html"),
    fc.constant(null),
    fc.string({ maxLength: 20 }).map((s) => s.replace(/[^\x21-\x7e]/g, "") || "x/y"),
  ),
  headers,
  body,
  cut: fc.oneof(
    { weight: 12, arbitrary: fc.constant("none" as const) },
    { weight: 2, arbitrary: fc.constantFrom("mid-body" as const, "short-length" as const) },
    { weight: 1, arbitrary: fc.constantFrom("stall-headers" as const, "stall-body" as const) },
  ),
  cutAt: fc.double({ min: 0, max: 1, noNaN: true }),
});

const call = fc.constantFrom<Call>("create", "createStream", "retrieve", "streamFrom", "cancel");

/**
 * A reply that looks right at first (200, the right content type, a body of the call's shape)
 * and is wrong inside: what reaches the port's own parsing, past the SDK's status handling.
 */
function plausibleReply(which: Call): fc.Arbitrary<Reply> {
  const streaming = which === "createStream" || which === "streamFrom";
  const good = (i: number) =>
    `data: ${JSON.stringify({ type: "response.output_text.delta", sequence_number: i, delta: "ok" })}\n\n`;
  return fc.record({
    status: fc.constant(200),
    contentType: fc.constant(streaming ? "text/event-stream" : "application/json"),
    headers: someHeaders,
    body: streaming
      ? fc
          .array(fc.oneof(sseFrame, fc.nat({ max: 9 }).map(good)), { minLength: 1, maxLength: 20 })
          .map((frames) => frames.join(""))
      : fc.oneof(
          responseLike.map((r) => JSON.stringify(r)),
          responseLike.map((r) => JSON.stringify({ ...r, id: ID, status: "in_progress" })),
        ),
    cut: fc.oneof(
      { weight: 8, arbitrary: fc.constant("none" as const) },
      { weight: 1, arbitrary: fc.constantFrom("mid-body" as const, "stall-body" as const) },
    ),
    cutAt: fc.double({ min: 0, max: 1, noNaN: true }),
  });
}

const input = call.chain((which) =>
  fc.tuple(
    fc.constant(which),
    fc.oneof(plausibleReply(which), reply),
    fc.option(fc.nat({ max: 40 })),
  ),
);

let server: ScriptedServer;
let current: Reply | undefined;
let port: ResponsesClient;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);

beforeAll(async () => {
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  server = await scriptedServer((_req, res) => {
    const r = current;
    if (!r) return res.destroy();
    const bytes = typeof r.body === "string" ? Buffer.from(r.body) : Buffer.from(r.body);
    const head: Record<string, string> = { ...r.headers };
    if (r.contentType !== null) head["content-type"] = r.contentType;
    if (r.cut === "stall-headers") return; // never answers: the call's signal must end it
    if (r.cut === "short-length") head["content-length"] = String(bytes.length + 10);
    try {
      res.writeHead(r.status, head);
    } catch {
      return res.destroy();
    }
    if (r.cut === "none" || r.cut === "short-length") {
      res.end(bytes);
      if (r.cut === "short-length") setImmediate(() => res.destroy());
      return;
    }
    res.write(bytes.subarray(0, Math.floor(bytes.length * r.cutAt)));
    if (r.cut === "mid-body") setImmediate(() => res.destroy());
    // stall-body: the rest never comes
  });
  port = openAIResponsesClient(
    new OpenAI({ baseURL: server.url, apiKey: "sk-garbage-0123456789" }),
  );
});

afterAll(async () => {
  process.off("uncaughtException", onUncaught);
  process.off("unhandledRejection", onUncaught);
  await server.close();
});

const KINDS: ReadonlySet<ClientFailureKind> = new Set<ClientFailureKind>([
  "rate-limited",
  "server",
  "unreachable",
  "connection",
  "not-found",
  "replay-expired",
  "not-streamable",
  "already-finished",
  "unauthorized",
  "rejected",
  "protocol",
]);

/** A value the port may hand the machine: what `ResponseState` promises, checked. */
function wellFormedState(s: ResponseState): boolean {
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  return (
    typeof s.id === "string" &&
    STATUSES.includes(s.status) &&
    typeof s.outputText === "string" &&
    (s.usage === null ||
      (count(s.usage.inputTokens) && count(s.usage.outputTokens) && count(s.usage.totalTokens))) &&
    (s.error === null ||
      (typeof s.error.code === "string" && typeof s.error.message === "string")) &&
    (s.incompleteReason === null || typeof s.incompleteReason === "string") &&
    (s.createdAt === null || Number.isFinite(s.createdAt))
  );
}

function wellFormedEvent(e: ResponseStreamEvent): boolean {
  if (!Number.isSafeInteger(e.sequenceNumber) || e.sequenceNumber < 0) return false;
  switch (e.kind) {
    case "delta":
      return typeof e.text === "string";
    case "lifecycle":
    case "terminal":
      return wellFormedState(e.response);
    case "error":
      return typeof e.message === "string" && (e.code === null || typeof e.code === "string");
    case "other":
      return typeof e.type === "string";
  }
}

type Outcome =
  | { kind: "value" }
  | { kind: "typed"; failure: ClientFailureKind }
  | { kind: "crash"; detail: string };

async function readAll(stream: AsyncIterable<ResponseStreamEvent>): Promise<Outcome> {
  let n = 0;
  for await (const event of stream) {
    if (!wellFormedEvent(event))
      return { kind: "crash", detail: `bad event ${JSON.stringify(event)}` };
    if (++n >= MAX_EVENTS) break;
  }
  return { kind: "value" };
}

async function attempt(which: Call, startingAfter: number | undefined): Promise<Outcome> {
  const signal = AbortSignal.timeout(CALL_TIMEOUT_MS);
  try {
    switch (which) {
      case "create": {
        const state = await port.create({ model: "o3", input: "x" }, signal);
        return wellFormedState(state) ? { kind: "value" } : { kind: "crash", detail: "bad create" };
      }
      case "createStream": {
        const stream = await port.createStream({ model: "o3", input: "x" }, signal);
        try {
          return await readAll(stream);
        } finally {
          stream.abort();
        }
      }
      case "retrieve": {
        const { response, pollAfterMs } = await port.retrieve(ID, signal);
        const waitOk = pollAfterMs === undefined || (pollAfterMs >= 0 && pollAfterMs <= 600_000);
        return wellFormedState(response) && response.id === ID && waitOk
          ? { kind: "value" }
          : { kind: "crash", detail: "bad retrieve" };
      }
      case "streamFrom": {
        const stream = await port.streamFrom(ID, startingAfter, signal);
        try {
          return await readAll(stream);
        } finally {
          stream.abort();
        }
      }
      case "cancel": {
        const state = await port.cancel(ID, signal);
        return wellFormedState(state) && state.id === ID
          ? { kind: "value" }
          : { kind: "crash", detail: "bad cancel" };
      }
    }
  } catch (err) {
    if (err instanceof ClientFailureError && KINDS.has(err.failure.kind)) {
      const f = err.failure;
      const retryOk =
        f.retryAfterMs === undefined || (f.retryAfterMs >= 0 && f.retryAfterMs <= 600_000);
      if (typeof f.message === "string" && retryOk) return { kind: "typed", failure: f.kind };
    }
    return {
      kind: "crash",
      detail: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    };
  }
}

it("a garbage server gets a typed failure or a well-formed value for every call: 0 crashes, 0 hangs", async () => {
  const counts = { tried: 0, values: 0, typed: 0, crashes: 0, hangs: 0 };
  const byKind: Record<string, number> = {};
  const crashes: string[] = [];
  await fc.assert(
    fc.asyncProperty(input, async ([which, r, after]) => {
      current = r;
      counts.tried++;
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<"hang">((resolve) => {
        timer = setTimeout(() => resolve("hang"), HANG_MS);
      });
      const outcome = await Promise.race([attempt(which, after ?? undefined), hang]);
      clearTimeout(timer);
      if (outcome === "hang") {
        counts.hangs++;
        crashes.push(
          `hang: ${which} ${JSON.stringify({ ...r, body: String(r.body).slice(0, 200) })}`,
        );
        return false;
      }
      if (outcome.kind === "value") counts.values++;
      else if (outcome.kind === "typed") {
        counts.typed++;
        byKind[outcome.failure] = (byKind[outcome.failure] ?? 0) + 1;
      } else {
        counts.crashes++;
        crashes.push(`${which}: ${outcome.detail}`);
        return false;
      }
      return true;
    }),
    { numRuns: runs, endOnFailure: true },
  );
  console.info(`garbage server: ${JSON.stringify(counts)} typed by kind ${JSON.stringify(byKind)}`);
  expect(crashes).toEqual([]);
  expect(uncaught).toEqual([]);
  expect(counts.crashes + counts.hangs).toBe(0);
  expect(counts.typed).toBeGreaterThan(counts.tried / 2);
}, 600_000);
