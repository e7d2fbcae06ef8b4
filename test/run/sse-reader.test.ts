/**
 * baton reads stream bodies with its own SSE reader (src/sse/reader.ts) over the
 * SDK's raw `Response`. These tests hold it to the SDK's reading (same events, in the same
 * order, for the same emulator stream), to the SSE framing rules, and to the failure rules: a
 * bad event is a typed error after the good ones before it; an abort ends quietly; a body that
 * is not an event stream is refused.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { openAIResponsesClient, type ResponseStreamEvent } from "../../src/index.js";
import { ProtocolError } from "../../src/services/client-failure.js";
import { toStreamEvent } from "../../src/services/openai-responses-client.js";
import { type StreamResponse, sseEventStream } from "../../src/sse/reader.js";
import { clientFor, emulatorFor, startStreamedRun, storedText } from "../support/run-harness.js";

const SSE = "text/event-stream; charset=utf-8";

function responseOf(chunks: (string | Uint8Array)[], contentType: string | null = SSE) {
  return {
    headers: { get: (name: string) => (name === "content-type" ? contentType : null) },
    body: (async function* () {
      yield* chunks;
    })(),
  } satisfies StreamResponse;
}

async function readAll(response: StreamResponse, controller = new AbortController()) {
  const events: ResponseStreamEvent[] = [];
  for await (const event of sseEventStream(response, controller, toStreamEvent)) {
    events.push(event);
  }
  return events;
}

const delta = (n: number, text: string) =>
  JSON.stringify({ type: "response.output_text.delta", sequence_number: n, delta: text });

describe("SSE framing", () => {
  it("cuts events across chunk boundaries, inside a multi-byte character too", async () => {
    const body = new TextEncoder().encode(
      `event: response.output_text.delta\ndata: ${delta(1, "héllo ")}\n\n` +
        `: a comment line\ndata: ${delta(2, "wörld 🌍")}\n\n`,
    );
    // Every split point, one at a time: the same two events whatever the chunking.
    for (let cut = 1; cut < body.length; cut += 7) {
      const events = await readAll(responseOf([body.slice(0, cut), body.slice(cut)]));
      expect(events).toEqual([
        { kind: "delta", sequenceNumber: 1, text: "héllo " },
        { kind: "delta", sequenceNumber: 2, text: "wörld 🌍" },
      ]);
    }
  });

  it("reads CRLF framing, text chunks and multi-line data, and skips [DONE]", async () => {
    const events = await readAll(
      responseOf([
        `data: ${delta(1, "a")}\r\n\r\n`,
        'data: {"type":"response.output_text.delta",\r\ndata: "sequence_number":2,"delta":"b"}\r\n\r\n',
        "data: [DONE]\n\n",
      ]),
    );
    expect(events.map((e) => (e.kind === "delta" ? e.text : e.kind))).toEqual(["a", "b"]);
  });

  it("drops an event the body ended in the middle of (the cursor stays before it)", async () => {
    const events = await readAll(responseOf([`data: ${delta(1, "a")}\n\ndata: {"type":"resp`]));
    expect(events.map((e) => e.sequenceNumber)).toEqual([1]);
  });
});

describe("bad streams", () => {
  it("hands over the good events of a chunk, then fails with a ProtocolError", async () => {
    const seen: number[] = [];
    const stream = sseEventStream(
      responseOf([`data: ${delta(1, "a")}\n\ndata: ${delta(2, "b")}\n\ndata: {oops\n\n`]),
      new AbortController(),
      toStreamEvent,
    );
    const reading = (async () => {
      for await (const event of stream) seen.push(event.sequenceNumber);
    })();
    await expect(reading).rejects.toThrow(ProtocolError);
    await expect(reading).rejects.toThrow(/not JSON: \{oops/);
    expect(seen).toEqual([1, 2]);
  });

  it("an event without a sequence number is a ProtocolError", async () => {
    await expect(
      readAll(responseOf(['data: {"type":"response.output_text.delta","delta":"x"}\n\n'])),
    ).rejects.toThrow(/without type or sequence_number/);
  });

  it("refuses a body that is not an event stream, and closes its connection", () => {
    const controller = new AbortController();
    expect(() =>
      sseEventStream(responseOf(["<html>oops</html>"], "text/html"), controller, toStreamEvent),
    ).toThrow(ProtocolError);
    expect(controller.signal.aborted).toBe(true);
  });

  it("a missing body is a ProtocolError", async () => {
    await expect(readAll({ headers: { get: () => SSE }, body: null })).rejects.toThrow(/no body/);
  });

  it("an abort ends the reading quietly, even while the body read fails", async () => {
    const controller = new AbortController();
    const body = (async function* () {
      yield `data: ${delta(1, "a")}\n\n`;
      // As a fetch body does: reading after the abort fails.
      await new Promise((_, reject) => {
        if (controller.signal.aborted) reject(new Error("aborted"));
        controller.signal.addEventListener("abort", () => reject(new Error("aborted")));
      });
    })();
    const stream = sseEventStream({ headers: { get: () => SSE }, body }, controller, toStreamEvent);
    const seen: number[] = [];
    for await (const event of stream) {
      seen.push(event.sequenceNumber);
      stream.abort();
    }
    expect(seen).toEqual([1]);
  });
});

/** A streamed run read to its end; its deltas add up to its result, which is complete. */
async function streamToTheEnd(emulator: Emulator) {
  const run = startStreamedRun(emulator);
  let text = "";
  for await (const piece of run.deltas()) text += piece.text;
  const result = await run.result();
  expect(result.outcome).toBe("completed");
  expect(text).toBe(result.text);
  return { run, result };
}

describe("against the SDK's own reading, over the emulator", () => {
  let emulator: Emulator;
  afterEach(async () => {
    await emulator?.close();
  });

  it("yields the same events as the SDK's Stream for the same response", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 0, outputTokens: 500 });
    const openai = clientFor(emulator);
    let responseId = "";
    const created = await openai.responses.create({
      model: "o3",
      input: "compare the readers",
      background: true,
      stream: true,
    });
    for await (const event of created) {
      if (event.type === "response.created") responseId = event.response.id;
    }
    const sdkEvents: ResponseStreamEvent[] = [];
    for await (const event of await openai.responses.retrieve(responseId, { stream: true })) {
      sdkEvents.push(toStreamEvent(event));
    }
    const ours = await openAIResponsesClient(openai).streamFrom(
      responseId,
      undefined,
      new AbortController().signal,
    );
    const ourEvents: ResponseStreamEvent[] = [];
    for await (const event of ours) ourEvents.push(event);
    expect(sdkEvents.length).toBeGreaterThan(500);
    expect(sdkEvents.at(-1)?.kind).toBe("terminal");
    expect(ourEvents).toEqual(sdkEvents);
  });

  it("a proxy's HTML page on a resume is a protocol failure; the run resumes and completes", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 5 } });
    emulator.faults.add({ on: "retrieve-stream", garbage: {} });
    const { run, result } = await streamToTheEnd(emulator);
    expect(result.text).toBe(storedText(emulator, result.responseId as string));
    expect(run.getSnapshot().context.lastFailure?.kind).toBe("protocol");
    expect(emulator.countCreates()).toBe(1);
  });

  it("a resumed stream carrying a broken event fails as a protocol failure; nothing is lost", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create-stream", drop: { afterEvents: 5 } });
    emulator.faults.add({
      on: "retrieve-stream",
      garbage: { contentType: "text/event-stream", body: "data: {not json\n\n" },
    });
    const { run, result } = await streamToTheEnd(emulator);
    expect(result.text).toBe(storedText(emulator, result.responseId as string));
    expect(run.getSnapshot().context.lastFailure).toMatchObject({ kind: "protocol" });
    expect(run.getSnapshot().context.lastFailure?.message).toMatch(/not JSON/);
    expect(emulator.countCreates()).toBe(1);
  });
});
