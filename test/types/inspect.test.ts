/**
 * Issue 12.6: `startRun({ inspect })` and `rehydrateRun(host)` take what XState's own `inspect`
 * option takes: a function or an `Observer<InspectionEvent>`, so `@statelyai/inspect`'s
 * inspectors fit as they are. `npm run typecheck` (tsc over `test/`) is the type test: before the
 * fix, `inspect: inspector.inspect` did not compile. The run-time part checks that an observer
 * receives the run's events and never the API key.
 */
import {
  createBrowserInspector,
  createInspector,
  createSkyInspector,
  createWebSocketInspector,
  type StatelyInspectionEvent,
} from "@statelyai/inspect";
import OpenAI from "openai";
import { afterEach, expect, expectTypeOf, it } from "vitest";
import type { ActorOptions, AnyActorLogic, InspectionEvent, Observer } from "xstate";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import {
  MemoryRunStore,
  type RunHostOptions,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "../../src/index.js";

const KEY = "sk-inspect-SECRET-0123456789";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

it("types: `inspect` is XState's own option type", () => {
  type XStateInspect = ActorOptions<AnyActorLogic>["inspect"];
  expectTypeOf<XStateInspect>().toExtend<RunHostOptions["inspect"]>();
  expectTypeOf<Observer<InspectionEvent>>().toExtend<RunHostOptions["inspect"]>();
  expectTypeOf<(event: InspectionEvent) => void>().toExtend<RunHostOptions["inspect"]>();
  expectTypeOf<StartRunOptions["inspect"]>().toEqualTypeOf<RunHostOptions["inspect"]>();
});

/** Compiled, never called: the browser and Sky inspectors need a browser or a network. */
function _compilesWithEveryInspector(client: OpenAI): void {
  const browser = createBrowserInspector();
  startRun({ client, model: "o3", input: "x", inspect: browser.inspect });
  const sky = createSkyInspector();
  startRun({ client, model: "o3", input: "x", stream: true, inspect: sky.inspect });
  const socket = createWebSocketInspector({ url: "ws://localhost:8080" });
  void rehydrateRun({ client, inspect: socket.inspect }, { token: "bt1.x" });
  // A plain function and a partial observer, as XState accepts.
  startRun({ client, model: "o3", input: "x", inspect: (event) => void event.type });
  startRun({ client, model: "o3", input: "x", inspect: { next: (event) => void event.type } });
}
void _compilesWithEveryInspector;

it("an @statelyai/inspect observer follows a run and a rehydrated run, without the key", async () => {
  emulator = await startEmulator({ tokenDelayMs: 2, outputTokens: 200 });
  const client = new OpenAI({ baseURL: emulator.url, apiKey: KEY });
  const events: StatelyInspectionEvent[] = [];
  const inspector = createInspector({ send: (event) => void events.push(event) });
  const store = new MemoryRunStore();
  const run = startRun({
    client,
    model: "o3",
    input: "inspect me",
    stream: true,
    store,
    inspect: inspector.inspect,
  });
  await new Promise<void>((resolve) => run.on("delta", () => resolve()));
  await run.detach();
  expect(events.some((event) => event.type === "@xstate.snapshot")).toBe(true);
  expect(events.some((event) => event.type === "@xstate.event")).toBe(true);

  const before = events.length;
  const again = await rehydrateRun(
    { client, store, inspect: inspector.inspect },
    { runId: run.id },
  );
  expect((await again.result()).outcome).toBe("completed");
  expect(events.length).toBeGreaterThan(before);
  expect(JSON.stringify(events)).not.toContain(KEY);
});
