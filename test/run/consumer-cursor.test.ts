/**
 * Issue 12.1, consumer-held offsets: a consumer that stored "I applied up to character C (after
 * stream event N)" with its own effects rehydrates with `from: { chars: C, sequenceNumber: N }`
 * and receives exactly what follows, whatever the store's own cursor says (ahead of the consumer,
 * behind it, level with it), streaming or polling, running or finished. Real SDK, real HTTP,
 * the emulator. Also: every delta's `chars` is the text's length up to its end.
 */
import fc from "fast-check";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import {
  BatonError,
  type ConsumerCursor,
  MemoryRunStore,
  type Run,
  type RunDelta,
  rehydrateRun,
  startRun,
} from "../../src/index.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

function clientFor(e: Emulator): OpenAI {
  return new OpenAI({ baseURL: e.url, apiKey: "sk-cursor-test" });
}

const FAST = { pollIntervalMs: 20 };

/** Every delta of a run, in order, to its end. */
async function collect(run: Run): Promise<RunDelta[]> {
  const deltas: RunDelta[] = [];
  for await (const delta of run.deltas()) deltas.push(delta);
  return deltas;
}

function textOf(deltas: readonly RunDelta[]): string {
  return deltas.map((delta) => delta.text).join("");
}

/** Each delta's `chars` is where it ends in the output text, counted from the first char. */
function expectOffsets(deltas: readonly RunDelta[], startAt: number): void {
  let end = startAt;
  for (const delta of deltas) {
    end += delta.text.length;
    expect(delta.chars).toBe(end);
  }
}

/**
 * A consumer that applies deltas until it has at least `stopAt` chars, keeping the cursor of
 * the last one it applied; the run goes on (the store may get ahead) until `detachAt` chars are
 * delivered in all, then detaches.
 */
async function consumeThenDetach(
  run: Run,
  stopAt: number,
  detachAt: number,
): Promise<{ applied: string; cursor: ConsumerCursor }> {
  let applied = "";
  let cursor: ConsumerCursor = { chars: 0 };
  let seen = 0;
  await new Promise<void>((resolve) => {
    const subscription = run.on("delta", (delta) => {
      seen += delta.text.length;
      if (applied.length < stopAt) {
        applied += delta.text;
        cursor = {
          chars: delta.chars as number,
          ...(delta.sequenceNumber !== undefined ? { sequenceNumber: delta.sequenceNumber } : {}),
        };
      }
      if (seen >= detachAt) {
        subscription.unsubscribe();
        resolve();
      }
    });
  });
  await run.detach();
  return { applied, cursor };
}

describe.each(["stream", "poll"] as const)("%s mode", (mode) => {
  const stream = mode === "stream";

  it("the store ahead of the consumer: exactly what follows the consumer's cursor", async () => {
    emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 250 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const first = startRun({
      client,
      model: "o3",
      input: `ahead ${mode}`,
      stream,
      store,
      options: FAST,
      checkpoint: { everyEvents: 5, everyMs: 10 },
    });
    const { applied, cursor } = await consumeThenDetach(first, 60, 400);
    const saved = await store.load(first.id);
    const savedChars = saved?.snapshot.context.deliveredChars ?? 0;
    expect(savedChars).toBeGreaterThan(cursor.chars);

    const again = await rehydrateRun({ client, store }, { runId: first.id, from: cursor });
    const rest = await collect(again);
    const result = await again.result();
    expect(result.outcome).toBe("completed");
    expect(applied + textOf(rest)).toBe(result.text);
    expectOffsets(rest, cursor.chars);
    expect(emulator.countCreates()).toBe(1);
  });

  it("the store behind the consumer: nothing the consumer applied comes again", async () => {
    emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 250 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    // Saves at changes of state only: the consumer gets far ahead of the store.
    const first = startRun({
      client,
      model: "o3",
      input: `behind ${mode}`,
      stream,
      store,
      options: FAST,
      checkpoint: { everyEvents: 1_000_000, everyMs: 1_000_000 },
    });
    let applied = "";
    let cursor: ConsumerCursor = { chars: 0 };
    await new Promise<void>((resolve) => {
      first.on("delta", (delta) => {
        if (applied.length >= 300) return;
        applied += delta.text;
        cursor = { chars: delta.chars as number };
        if (applied.length >= 300) resolve();
      });
    });
    // The process dies: no last save.
    first.actor.stop();
    const saved = await store.load(first.id);
    expect(saved?.snapshot.context.deliveredChars ?? 0).toBeLessThan(cursor.chars);

    const again = await rehydrateRun({ client, store }, { runId: first.id, from: cursor });
    const rest = await collect(again);
    const result = await again.result();
    expect(result.outcome).toBe("completed");
    expect(applied + textOf(rest)).toBe(result.text);
    expectOffsets(rest, cursor.chars);
    expect(emulator.countCreates()).toBe(1);
  });

  it("without a sequence number, a stream the store is ahead of is replayed and skipped", async () => {
    emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 250 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const first = startRun({
      client,
      model: "o3",
      input: `chars only ${mode}`,
      stream,
      store,
      options: FAST,
      checkpoint: { everyEvents: 5, everyMs: 10 },
    });
    const { applied, cursor } = await consumeThenDetach(first, 80, 400);
    const again = await rehydrateRun(
      { client, store },
      { runId: first.id, from: { chars: cursor.chars } },
    );
    const rest = await collect(again);
    const result = await again.result();
    expect(applied + textOf(rest)).toBe(result.text);
    expectOffsets(rest, cursor.chars);
  });
});

describe("a finished run", () => {
  it("hands over the rest of its text after any cursor, as one final delta", async () => {
    emulator = await startEmulator({ tokenDelayMs: 0, outputTokens: 60 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const run = startRun({ client, model: "o3", input: "done", stream: true, store });
    const deltas = await collect(run);
    const result = await run.result();
    expectOffsets(deltas, 0);
    const persisted = await store.load(run.id);
    if (!persisted) throw new Error("no save");
    const requests = emulator.requests.length;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: result.text.length }), async (chars) => {
        const again = await rehydrateRun({ client }, { persisted, from: { chars } });
        const rest = await collect(again);
        expect(textOf(rest)).toBe(result.text.slice(chars));
        expect(rest.length).toBe(chars < result.text.length ? 1 : 0);
        if (rest[0]) expect(rest[0]).toMatchObject({ source: "final", chars: result.text.length });
        // A callback subscribed after the rehydrate hears it too.
        const heard: string[] = [];
        const third = await rehydrateRun({ client }, { persisted, from: { chars } });
        third.on("delta", (delta) => heard.push(delta.text));
        await third.result();
        await new Promise((resolve) => setImmediate(resolve));
        expect(heard.join("")).toBe(result.text.slice(chars));
      }),
      { numRuns: 20 },
    );
    // Finished: nothing asked of the server.
    expect(emulator.requests.length).toBe(requests);
  });
});

describe("cursors that cannot be", () => {
  it("are a BatonError with code invalid_cursor, before anything runs", async () => {
    emulator = await startEmulator({ tokenDelayMs: 0, outputTokens: 20 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const run = startRun({ client, model: "o3", input: "x", stream: true, store });
    const result = await run.result();
    const persisted = await store.load(run.id);
    if (!persisted) throw new Error("no save");
    const bad = fc.oneof(
      fc.record({ chars: fc.integer({ max: -1 }) }),
      fc.record({ chars: fc.double().filter((n) => !Number.isInteger(n)) }),
      fc.record({ chars: fc.integer({ min: result.text.length + 1 }) }),
      fc.record({ chars: fc.nat(), sequenceNumber: fc.integer({ max: -2 }) }),
      fc.record({
        chars: fc.nat(),
        sequenceNumber: fc.double().filter((n) => !Number.isInteger(n)),
      }),
    );
    await fc.assert(
      fc.asyncProperty(bad, async (from) => {
        const error = await rehydrateRun({ client }, { persisted, from }).catch((e) => e);
        expect(error).toBeInstanceOf(BatonError);
        expect((error as BatonError).code).toBe("invalid_cursor");
      }),
      { numRuns: 100 },
    );
  });

  it("a run attached by token does not know its offsets: its deltas have no chars, a cursor is refused", async () => {
    emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 100 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const first = startRun({ client, model: "o3", input: "x", stream: true });
    await new Promise<void>((resolve) => first.on("delta", () => resolve()));
    const token = first.token as string;
    await first.detach();
    const attached = await rehydrateRun({ client, store }, { token });
    const deltas = await collect(attached);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.every((delta) => delta.chars === undefined)).toBe(true);
    await attached.result();
    // A live save of it (deliveredChars unknown) refuses a character cursor.
    const live = startRun({ client, model: "o3", input: "y", stream: true });
    await new Promise<void>((resolve) => live.on("delta", () => resolve()));
    const liveToken = live.token as string;
    await live.detach();
    const again = await rehydrateRun({ client, store }, { token: liveToken });
    await new Promise<void>((resolve) => again.on("delta", () => resolve()));
    const persisted = await again.detach();
    const error = await rehydrateRun({ client }, { persisted, from: { chars: 3 } }).catch((e) => e);
    expect((error as BatonError).code).toBe("invalid_cursor");
  });
});

describe("the store in one place", () => {
  it("rehydrateRun({ client, store }, { runId }) loads from the host's store and saves there", async () => {
    emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 100 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const first = startRun({ client, model: "o3", input: "x", stream: true, store });
    await new Promise<void>((resolve) => first.on("delta", () => resolve()));
    await first.detach();
    const again = await rehydrateRun({ client, store }, { runId: first.id });
    await again.result();
    expect((await store.load(first.id))?.state).toBe("done");
  });

  it("the deprecated { runId, store } alone still saves the rehydrated run", async () => {
    emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 100 });
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const first = startRun({ client, model: "o3", input: "x", stream: true, store });
    await new Promise<void>((resolve) => first.on("delta", () => resolve()));
    await first.detach();
    const again = await rehydrateRun({ client }, { runId: first.id, store });
    await again.result();
    // Was: never saved again, so the store still said the run was streaming.
    expect((await store.load(first.id))?.state).toBe("done");
  });

  it("a run id with no store anywhere is a BatonError", async () => {
    emulator = await startEmulator();
    const error = await rehydrateRun({ client: clientFor(emulator) }, { runId: "run_x" }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(BatonError);
    expect((error as BatonError).code).toBe("store_missing");
  });
});
