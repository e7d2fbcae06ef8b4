/**
 * Helpers of the emulator tests: an emulator per test (closed afterwards), a real `openai`
 * client on it, and a raw SSE reader for checking the wire format itself.
 */
import OpenAI from "openai";
import { afterEach } from "vitest";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js";

const open: Emulator[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((emulator) => emulator.close()));
});

/** A fast emulator (tiny delays, 8 tokens) that is closed after the test. */
export async function emulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const started = await startEmulator({
    tokenDelayMs: 1,
    queuedMs: 5,
    outputTokens: 8,
    ...options,
  });
  open.push(started);
  return started;
}

/** A real SDK client on the emulator; no retries unless asked for. */
export function sdk(target: Emulator, extra: ConstructorParameters<typeof OpenAI>[0] = {}): OpenAI {
  return new OpenAI({ baseURL: target.url, apiKey: "test-key", maxRetries: 0, ...extra });
}

/** Every item of an async iterable. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** A loosely typed stream event (the SDK's union does not know `keepalive` or `obfuscation`). */
export interface AnyEvent {
  type: string;
  sequence_number: number;
  [key: string]: unknown;
}

/** Events of an SDK stream as plain objects. */
export async function events(iterable: AsyncIterable<unknown>): Promise<AnyEvent[]> {
  return (await collect(iterable)) as AnyEvent[];
}

/** The concatenated text of the message items of a Response object. */
export function outputText(response: {
  output: readonly { content?: readonly { text?: string }[] }[];
}): string {
  return response.output.flatMap((item) => (item.content ?? []).map((p) => p.text ?? "")).join("");
}

/** One SSE frame as it came over the wire. */
export interface RawFrame {
  event: string | null;
  data: string;
  lines: string[];
}

/** A raw HTTP reply: status, headers and the body split into SSE frames (or the text). */
export interface RawReply {
  status: number;
  headers: Headers;
  text: string;
  frames: RawFrame[];
}

/** Sends a request with `fetch` and reads the whole reply, parsing SSE frames. */
export async function raw(url: string, init: RequestInit = {}): Promise<RawReply> {
  const response = await fetch(url, {
    ...init,
    headers: { authorization: "Bearer test-key", ...init.headers },
  });
  const text = await response.text();
  const frames: RawFrame[] = [];
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    for (const block of text.split("\n\n")) {
      if (block === "") continue;
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? null;
      const data = lines
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      frames.push({ event, data, lines });
    }
  }
  return { status: response.status, headers: response.headers, text, frames };
}

/** POSTs a JSON body to `/responses` with `fetch`. */
export function rawCreate(target: Emulator, body: unknown): Promise<RawReply> {
  return raw(`${target.url}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Waits until `predicate` holds, polling every few ms; fails after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The event types in order. */
export function types(list: readonly { type: string }[]): string[] {
  return list.map((event) => event.type);
}

/** The model used throughout the tests. */
export const MODEL = "gpt-4o-mini";

/** The response id carried by the `response.created` event of a list of events. */
export function createdId(list: readonly AnyEvent[]): string {
  const created = list.find((event) => event.type === "response.created");
  const id = (created?.response as { id?: unknown } | undefined)?.id;
  if (typeof id !== "string") throw new Error("no response.created event with an id");
  return id;
}
