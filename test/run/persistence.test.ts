/**
 * Persist a run at every state, throw the actor away, rehydrate it in a fresh actor with
 * another client instance: it carries on exactly where it stopped.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  MemoryRunStore,
  type PersistedRun,
  type RunStateName,
  type RunStore,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "../../src/index.js";
import {
  clientFor,
  emulatorFor,
  FAST,
  Recorder,
  startPolledRun,
  startStreamedRun,
  until,
} from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

/** Starts a run, captures its persisted form the first time `when` holds, and stops it at once. */
async function crashAt(
  options: Omit<StartRunOptions, "client">,
  state: RunStateName,
  extra: (run: ReturnType<typeof startRun>) => boolean = () => true,
) {
  const run = startRun({ client: clientFor(emulator), ...options });
  const first = new Recorder(run);
  const persisted = await new Promise<PersistedRun>((resolve) => {
    const check = () => {
      if (run.state === state && extra(run)) {
        sub.unsubscribe();
        const saved = run.toPersisted();
        run.actor.stop(); // the process dies: no flush, no goodbye
        resolve(JSON.parse(JSON.stringify(saved)));
      }
    };
    const sub = run.subscribe({ next: check, error: () => {} });
    check();
  });
  const saved = persisted.snapshot.context;
  // What the first process delivered and covered by the save: durable delivery shows no more.
  const firstText = first.text.slice(0, saved.deliveredChars ?? 0);
  const firstSeqs = first.deltas
    .map((d) => d.sequenceNumber)
    .filter((s): s is number => s !== undefined && s <= (saved.sequenceNumber ?? -1));
  return { persisted, firstText, firstSeqs };
}

async function rehydrate(persisted: PersistedRun) {
  const run = await rehydrateRun({ client: clientFor(emulator) }, { persisted });
  const second = new Recorder(run);
  const result = await run.result();
  return { run, second, result };
}

describe("persist at every state and rehydrate", () => {
  it("idle: restored idle, then started by run.start", async () => {
    emulator = await emulatorFor();
    const { createActor } = await import("xstate");
    const { runMachine, toEnvelope } = await import("../../src/index.js");
    const idle = createActor(runMachine, {
      input: {
        runId: "run_idle",
        mode: "poll",
        request: { model: "o3", input: "x" },
        options: FAST,
      },
    });
    const persisted = toEnvelope(idle.getPersistedSnapshot());
    expect(persisted.state).toBe("idle");
    const run = await rehydrateRun({ client: clientFor(emulator) }, { persisted });
    expect(run.state).toBe("idle");
    run.actor.send({ type: "run.start" });
    expect((await run.result()).outcome).toBe("completed");
    expect(emulator.countCreates()).toBe(1);
  });

  it("started (create in flight), default policy: never creates twice, ends create-unknown", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create", stall: { afterEvents: 0, ms: 200 } });
    const { persisted } = await crashAt({ model: "o3", input: "x", options: FAST }, "started");
    expect(persisted.state).toBe("started");
    expect(persisted.token).toBeNull();
    const { result } = await rehydrate(persisted);
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-unknown");
    await new Promise((r) => setTimeout(r, 250));
    // The first process's request may or may not have reached the server; the second made none.
    expect(emulator.countCreates()).toBeLessThanOrEqual(1);
  });

  it("started, with onUnknownCreate 'recreate': creates again, tagged with the same run id", async () => {
    emulator = await emulatorFor();
    emulator.faults.add({ on: "create", stall: { afterEvents: 0, ms: 100 } });
    const { persisted } = await crashAt(
      { model: "o3", input: "x", options: { ...FAST, onUnknownCreate: "recreate" } },
      "started",
    );
    const { result, run } = await rehydrate(persisted);
    expect(result.outcome).toBe("completed");
    expect(run.getSnapshot().context.creates).toBe(2);
    const stored = emulator.getResponse(result.responseId as string) as {
      metadata?: Record<string, string>;
    };
    expect(stored.metadata?.baton_run_id).toBe(persisted.runId);
  });

  it("polling: keeps polling the same response", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const { persisted } = await crashAt({ model: "o3", input: "x", options: FAST }, "polling");
    expect(persisted.token).not.toBeNull();
    const { result, second } = await rehydrate(persisted);
    expect(result.outcome).toBe("completed");
    expect(result.responseId).toBe(persisted.responseId);
    expect(second.text).toBe(result.text);
    expect(emulator.countCreates()).toBe(1);
  });

  for (const [state, options, extra] of [
    [
      "streaming",
      {},
      (r: ReturnType<typeof startRun>) => (r.getSnapshot().context.deliveredChars ?? 0) > 10,
    ],
    ["interrupted", { drop: 7 }, () => true],
    ["resumed", { drop: 7 }, () => true],
  ] as const) {
    it(`${state}: resumes after the last delivered event, no text lost or repeated`, async () => {
      emulator = await emulatorFor({ tokenDelayMs: 5 });
      if ("drop" in options)
        emulator.faults.add({ on: "create-stream", drop: { afterEvents: options.drop } });
      const { persisted, firstText, firstSeqs } = await crashAt(
        { model: "o3", input: "resume me", stream: true, options: FAST },
        state,
        extra,
      );
      expect(persisted.state).toBe(state);
      const { result, second } = await rehydrate(persisted);
      expect(result.outcome).toBe("completed");
      expect(firstText + second.text).toBe(result.text);
      const secondSeqs = second.deltas.map((d) => d.sequenceNumber).filter((s) => s !== undefined);
      expect(secondSeqs.filter((s) => firstSeqs.includes(s as number))).toEqual([]);
      expect(second.segments[0]).toBe("continuation");
      expect(emulator.countCreates()).toBe(1);
    });
  }

  it("cancelling: cancels again (idempotent) and ends cancelled", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 });
    emulator.faults.add({ on: "cancel", stall: { afterEvents: 0, ms: 200 } });
    const run = startPolledRun(emulator);
    await until(run, () => run.state === "polling");
    run.actor.send({ type: "run.cancel" });
    expect(run.state).toBe("cancelling");
    const persisted = JSON.parse(JSON.stringify(run.toPersisted())) as PersistedRun;
    run.actor.stop();
    const { result } = await rehydrate(persisted);
    expect(result.outcome).toBe("cancelled");
    expect(result.cancelledBy).toBe("consumer");
  });

  it("done: stays done with the same result, and makes no request", async () => {
    emulator = await emulatorFor();
    const run = startPolledRun(emulator);
    const result = await run.result();
    const persisted = run.toPersisted();
    expect(persisted.token).toBeNull();
    const before = emulator.requests.length;
    const again = await rehydrateRun({ client: clientFor(emulator) }, { persisted });
    expect(again.state).toBe("done");
    expect(await again.result()).toEqual(result);
    expect(emulator.requests.length).toBe(before);
  });
});

describe("store-backed runs", () => {
  /** Counts what is written, to check that a save's cost does not grow with the answer. */
  class CountingStore extends MemoryRunStore {
    readonly sizes: { state: string; bytes: number }[] = [];
    override async save(run: PersistedRun): Promise<void> {
      this.sizes.push({ state: run.state, bytes: JSON.stringify(run).length });
      return super.save(run);
    }
  }

  it("10,000 deltas: each save stays the same size (no O(n²) bytes)", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 0, outputTokens: 10_000 });
    const store = new CountingStore();
    const run = startStreamedRun(emulator, { store }, { request: { input: "a very long answer" } });
    const recorder = new Recorder(run);
    const result = await run.result();
    // Deltas come a network read at a time: fewer pieces than events, each tagged with the
    // last sequence number it covers, strictly increasing up to the last text event.
    const ends = recorder.deltas.map((d) => d.sequenceNumber ?? -1);
    expect(ends.every((end, i) => i === 0 || end > (ends[i - 1] as number))).toBe(true);
    expect(recorder.deltas.length).toBeLessThanOrEqual(10_000);
    // The same stream replayed with the raw SDK: where its 10,000 text events end.
    const replay = await clientFor(emulator).responses.retrieve(result.responseId as string, {
      stream: true,
    });
    const textEvents: number[] = [];
    for await (const event of replay) {
      if (event.type === "response.output_text.delta") textEvents.push(event.sequence_number);
    }
    expect(textEvents).toHaveLength(10_000);
    expect(ends.at(-1)).toBe(textEvents.at(-1));
    expect(recorder.text).toBe(result.text);
    const streaming = store.sizes.filter((s) => s.state === "streaming").map((s) => s.bytes);
    expect(streaming.length).toBeGreaterThan(10);
    expect(Math.max(...streaming) - Math.min(...streaming)).toBeLessThan(64);
    // Constant size, and far smaller than the text: the text is not in the saves.
    expect(Math.max(...streaming)).toBeLessThan(result.text.length / 10);
  }, 60_000);

  it("saves at every state change and throttles within a state", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 0, outputTokens: 500 });
    const store = new CountingStore();
    const run = startStreamedRun(emulator, {
      store,
      checkpoint: { everyEvents: 100, everyMs: 10_000 },
    });
    await run.result();
    const states = store.sizes.map((s) => s.state);
    expect(states[0]).toBe("idle");
    expect(states).toContain("started");
    expect(states).toContain("streaming");
    expect(states.at(-1)).toBe("done");
    const streamingSaves = states.filter((s) => s === "streaming").length;
    expect(streamingSaves).toBeGreaterThanOrEqual(4);
    expect(streamingSaves).toBeLessThanOrEqual(8);
  });

  it("detach while saves are in flight: flush() settles, the last save is a live snapshot", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 2 });
    class SlowStore extends MemoryRunStore {
      override async save(run: PersistedRun): Promise<void> {
        await new Promise((r) => setTimeout(r, 30));
        return super.save(run);
      }
    }
    const store = new SlowStore();
    const run = startStreamedRun(emulator, { store });
    const recorder = new Recorder(run);
    await until(run, () => recorder.deltas.length >= 3);
    const pending = run.result();
    const detached = await run.detach();
    await run.flush();
    await expect(pending).rejects.toMatchObject({ code: "run_detached" });
    const saved = await store.load(run.id);
    expect(saved?.snapshot.status).toBe("active");
    expect(detached.snapshot.status).toBe("active");
  });

  it("result() and deltas() asked for only after detach() reject / end at once", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const run = startStreamedRun(emulator, { store: new MemoryRunStore() });
    await until(run, () => run.state === "streaming");
    await run.detach();
    await expect(run.result()).rejects.toMatchObject({ code: "run_detached" });
    const pieces: string[] = [];
    for await (const delta of run.deltas()) pieces.push(delta.text);
    expect(pieces).toEqual([]);
  });

  it("rehydrates by run id from a store; an unknown id is a RunNotFoundError", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const store: RunStore = new MemoryRunStore();
    const run = startStreamedRun(emulator, { store });
    const first = new Recorder(run);
    await until(run, () => first.deltas.length >= 3);
    await run.detach();
    const again = await rehydrateRun(
      { client: clientFor(emulator), store },
      { runId: run.id, store },
    );
    const second = new Recorder(again);
    const result = await again.result();
    expect(first.text + second.text).toBe(result.text);
    const { RunNotFoundError } = await import("../../src/index.js");
    await expect(
      rehydrateRun({ client: clientFor(emulator), store }, { runId: "run_nope" }),
    ).rejects.toBeInstanceOf(RunNotFoundError);
  });

  it("a run resumes from its continuation token alone, in a fresh actor with no snapshot", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const run = startStreamedRun(emulator);
    const first = new Recorder(run);
    await until(run, () => first.deltas.length >= 4);
    const token = run.token as string;
    await run.detach();
    const again = await rehydrateRun({ client: clientFor(emulator) }, { token, options: FAST });
    const second = new Recorder(again);
    const result = await again.result();
    expect(result.outcome).toBe("completed");
    expect(first.text + second.text).toBe(result.text);
    expect(second.segments).toEqual(["continuation"]);
    expect(emulator.countCreates()).toBe(1);
  });

  it("a poll token resumes polling and yields the final text", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const run = startPolledRun(emulator);
    await until(run, () => run.token !== null);
    const token = run.token as string;
    await run.detach();
    const again = await rehydrateRun({ client: clientFor(emulator) }, { token, options: FAST });
    const result = await again.result();
    expect(result.outcome).toBe("completed");
    expect(result.responseId).toBe(run.responseId);
  });
});
