/** The API key never appears in a snapshot, a token, a saved run or an inspection event. */
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { MemoryRunStore } from "../../src/index.js";
import {
  emulatorFor,
  SECRET_KEY,
  startPolledRun,
  startStreamedRun,
} from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

/** JSON of anything, cycles cut, functions named: what an inspector would be able to show. */
function dump(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === "function") return `[function ${v.name}]`;
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[cycle]";
      seen.add(v);
    }
    return v;
  });
}

it("keeps the API key out of snapshots, tokens, stores and inspection events", async () => {
  emulator = await emulatorFor({ apiKey: SECRET_KEY });
  emulator.faults.add({ on: "create-stream", drop: { afterEvents: 6 } });
  const inspected: unknown[] = [];
  const store = new MemoryRunStore();
  const run = startStreamedRun(emulator, {
    store,
    inspect: (event) =>
      inspected.push({
        type: event.type,
        event: "event" in event ? event.event : undefined,
        snapshot: event.type === "@xstate.snapshot" ? event.snapshot : undefined,
      }),
  });
  const tokens: string[] = [];
  run.subscribe({ next: () => run.token && tokens.push(run.token) });
  const result = await run.result();
  expect(result.outcome).toBe("completed");
  expect(inspected.length).toBeGreaterThan(20);
  expect(dump(inspected)).not.toContain(SECRET_KEY);
  expect(dump(run.toPersisted())).not.toContain(SECRET_KEY);
  expect(dump(await store.list())).not.toContain(SECRET_KEY);
  expect(dump(await store.load(run.id))).not.toContain(SECRET_KEY);
  expect(tokens.length).toBeGreaterThan(0);
  for (const token of tokens)
    expect(Buffer.from(token.slice(4), "base64url").toString()).not.toContain(SECRET_KEY);
});

it("a wrong key is refused without retrying and reported without the key", async () => {
  emulator = await emulatorFor({ apiKey: SECRET_KEY });
  const OpenAI = (await import("openai")).default;
  const wrongKey = "sk-wrong-KEY-fedcba9876543210";
  const run = startPolledRun(emulator, {
    client: new OpenAI({ baseURL: emulator.url, apiKey: wrongKey }),
  });
  const result = await run.result();
  expect(result.outcome).toBe("gave-up");
  expect(result.failure?.kind).toBe("unauthorized");
  expect(dump(result)).not.toContain(wrongKey);
  expect(emulator.countCreates()).toBe(1);
});
