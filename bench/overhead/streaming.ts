/**
 * Streaming through baton vs the raw SDK: the same emulator stream (token delay 0, a long
 * answer), read by `startRun(host, { stream: true })` + `run.deltas()` or by a hand-written
 * `responses.create({ background: true, stream: true })` + `for await` loop.
 */

import {
  type CheckpointOptions,
  encodeContinuationToken,
  openAIResponsesClient,
  type Run,
  type RunResult,
  type RunStore,
  rehydrateRun,
  startRun,
} from "baton";
import type OpenAI from "openai";
import { check, now } from "./stats.js";

export const MODEL = "o3";

/** A run's outcome, with why it gave up, for a failed check. */
export function describe(result: RunResult): string {
  return `'${result.outcome}'${result.reason ? ` (${result.reason})` : ""}${
    result.failure ? `: ${JSON.stringify(result.failure)}` : ""
  }`;
}

/** One pass over one stream. */
export interface StreamPass {
  responseId: string;
  /**
   * From the call to the end of the text: the terminal event received (raw, port; it follows
   * the last text event), the last piece of text delivered (baton, which delivers it in the
   * transition that reads the terminal event). What rates are over: the streaming part, without
   * baton's wait for the run's last save, which `totalMs` includes.
   */
  ms: number;
  /** From the call to the end: the stream closed (raw), the result resolved (baton). */
  totalMs: number;
  /**
   * Text events (`response.output_text.delta`) the stream carried: what rates are per. The raw
   * loop counts them; a baton pass is given the raw count of the same text (its caller checks
   * the text is identical), since baton hands over the text of events received together as one
   * piece.
   */
  events: number;
  /** Pieces the consumer received (raw: one per event; baton: one per batch received). */
  pieces: number;
  text: string;
  /** Process CPU (user + system) spent during the pass, ms. */
  cpuMs: number;
}

/** Times one pass: wall time from its start, and the process CPU it used. */
function startPass() {
  const cpu = process.cpuUsage();
  const start = now();
  return {
    start,
    /** Closes the pass once the stream ended (raw, port) or the run's result is in (baton). */
    end(read: Omit<StreamPass, "ms" | "totalMs" | "cpuMs"> & { textEndedAt: number }): StreamPass {
      const totalMs = now() - start;
      const used = process.cpuUsage(cpu);
      const { textEndedAt, ...rest } = read;
      return { ...rest, ms: textEndedAt - start, totalMs, cpuMs: (used.user + used.system) / 1000 };
    },
  };
}
type Pass = ReturnType<typeof startPass>;

/** The hand-written loop over an SDK stream: keeps the text, the response id and the status. */
async function readSdkStream(
  stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>,
  pass: Pass,
  what: string,
  responseId = "",
): Promise<StreamPass> {
  let text = "";
  let deltas = 0;
  let textEndedAt = pass.start;
  let status = "";
  for await (const event of stream) {
    if (event.type === "response.output_text.delta") {
      text += event.delta;
      deltas++;
    } else if (event.type === "response.created") {
      responseId = event.response.id;
    } else if (event.type === "response.completed") {
      textEndedAt = now();
      status = event.response.status ?? "";
    }
  }
  const done = pass.end({ responseId, events: deltas, pieces: deltas, text, textEndedAt });
  check(status === "completed", `${what} ended without response.completed (${status})`);
  return done;
}

/** The seed's pattern, hand-written: create with `stream: true`, iterate, keep the text. */
export async function rawStream(client: OpenAI, input: string): Promise<StreamPass> {
  const pass = startPass();
  const stream = await client.responses.create({
    model: MODEL,
    input,
    background: true,
    stream: true,
  });
  return readSdkStream(stream, pass, "the raw stream");
}

/**
 * baton's client port alone, hand-iterated: the same create call through
 * `openAIResponsesClient(client).createStream()`, no run machine. baton / port is what the machine
 * (batching, cursor, deltas, result) costs over baton's own reading of the stream.
 */
export async function portStream(client: OpenAI, input: string): Promise<StreamPass> {
  const pass = startPass();
  const stream = await openAIResponsesClient(client).createStream(
    { model: MODEL, input },
    new AbortController().signal,
  );
  let text = "";
  let deltas = 0;
  let textEndedAt = pass.start;
  let status = "";
  let responseId = "";
  for await (const event of stream) {
    if (event.kind === "delta") {
      text += event.text;
      deltas++;
    } else if (event.kind === "lifecycle") {
      responseId = event.response.id;
    } else if (event.kind === "terminal") {
      textEndedAt = now();
      status = event.response.status;
    }
  }
  const done = pass.end({ responseId, events: deltas, pieces: deltas, text, textEndedAt });
  check(status === "completed", `the port's stream ended without response.completed (${status})`);
  return done;
}

/** Raw replay of a finished response: `retrieve(id, { stream: true, starting_after: 0 })`. */
export async function rawReplay(client: OpenAI, responseId: string): Promise<StreamPass> {
  const pass = startPass();
  const stream = await client.responses.retrieve(responseId, {
    stream: true,
    starting_after: 0,
  });
  return readSdkStream(stream, pass, "the raw replay", responseId);
}

/**
 * Reads a baton run's deltas to the end and checks its result. `textEvents` is the raw pass's
 * count of the same text (baton hands over pieces).
 */
async function readRun(run: Run, pass: Pass, what: string, textEvents: number) {
  let text = "";
  let pieces = 0;
  let textEndedAt = pass.start;
  for await (const delta of run.deltas()) {
    text += delta.text;
    pieces++;
    textEndedAt = now();
  }
  const result = await run.result();
  const responseId = result.responseId ?? "";
  const done = pass.end({ responseId, events: textEvents, pieces, text, textEndedAt });
  check(result.outcome === "completed", `${what} ended ${describe(result)}`);
  check(result.text === text, `${what}: the deltas do not add up to the result's text`);
  return done;
}

/** The same replay through baton: `rehydrateRun` from a token whose cursor is event 0. */
export async function batonReplay(
  client: OpenAI,
  responseId: string,
  textEvents: number,
): Promise<StreamPass> {
  const pass = startPass();
  const token = encodeContinuationToken({ responseId, sequenceNumber: 0 });
  const run = await rehydrateRun({ client }, { token });
  return readRun(run, pass, "a baton replay", textEvents);
}

/** A store that counts its saves (the checkpointer's count is private to the run). */
export class CountingStore implements RunStore {
  saves = 0;
  constructor(readonly inner: RunStore) {}
  save(run: Parameters<RunStore["save"]>[0]): Promise<void> {
    this.saves++;
    return this.inner.save(run);
  }
  load(runId: string) {
    return this.inner.load(runId);
  }
  list() {
    return this.inner.list();
  }
  delete(runId: string) {
    return this.inner.delete(runId);
  }
}

/** The same stream through a baton run, consuming `run.deltas()`. */
export async function batonStream(
  client: OpenAI,
  input: string,
  textEvents: number,
  host: { store?: RunStore; checkpoint?: Partial<CheckpointOptions> } = {},
): Promise<StreamPass> {
  const pass = startPass();
  const run = startRun({ client, ...host }, { model: MODEL, input, stream: true });
  return readRun(run, pass, "a baton run", textEvents);
}
