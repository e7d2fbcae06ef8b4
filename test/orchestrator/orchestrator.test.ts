/**
 * The orchestrator against the emulator, over HTTP through the real `openai` SDK: concurrency
 * and per-key limits counted at the server (responses `queued` or `in_progress` at the same
 * time), FIFO admission, cancel of a waiting run, idempotent keys (in this process and through
 * a store in the next), unreadable saves in recover(), drain mid-stream then recover() in a new
 * orchestrator (exact text, one create per key).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { FileRunStore, MemoryRunStore, type Run } from "../../src/index.js";
import {
  createOrchestrator,
  type Orchestrator,
  runIdForKey,
} from "../../src/orchestrator/index.js";
import {
  clientFor,
  emulatorFor,
  FAST,
  Recorder,
  storedText,
  until,
} from "../support/run-harness.js";

let emulator: Emulator | undefined;
const orchestrators: Orchestrator[] = [];
afterEach(async () => {
  for (const o of orchestrators.splice(0)) await o.cancelAll().catch(() => {});
  await emulator?.close();
  emulator = undefined;
});

function orchestrator(e: Emulator, extra: Partial<Parameters<typeof createOrchestrator>[0]> = {}) {
  const o = createOrchestrator({ client: clientFor(e), concurrency: 3, options: FAST, ...extra });
  orchestrators.push(o);
  return o;
}

/** Samples the emulator every 2 ms: most responses queued/in_progress at once, overall and by model. */
function serverSampler(e: Emulator) {
  let max = 0;
  const maxByModel = new Map<string, number>();
  const timer = setInterval(() => {
    let live = 0;
    const byModel = new Map<string, number>();
    for (const request of e.requests) {
      if ((request.kind !== "create" && request.kind !== "create-stream") || !request.responseId) {
        continue;
      }
      const response = e.getResponse(request.responseId);
      if (response && (response.status === "queued" || response.status === "in_progress")) {
        live++;
        byModel.set(response.model, (byModel.get(response.model) ?? 0) + 1);
      }
    }
    max = Math.max(max, live);
    for (const [model, n] of byModel)
      maxByModel.set(model, Math.max(maxByModel.get(model) ?? 0, n));
  }, 2);
  return {
    stop: () => clearInterval(timer),
    get max() {
      return max;
    },
    maxByModel,
  };
}

/** Resolves once `predicate` holds (checked every 2 ms). */
async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error("waitFor: timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const creates = (e: Emulator) =>
  e.requests.filter((r) => r.kind === "create" || r.kind === "create-stream");

describe("orchestrator: admission under limits, counted at the server", () => {
  it("never has more responses running at the server than `concurrency`, admitted FIFO", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 4, outputTokens: 15 });
    const o = orchestrator(emulator, { concurrency: 3 });
    const admitted: string[] = [];
    o.on("run.admitted", (e) => admitted.push(e.runId));
    const sampler = serverSampler(emulator);
    const runs: Run[] = [];
    for (let i = 0; i < 9; i++) {
      runs.push(await o.startRun({ model: "o3", input: `q${i}`, stream: i % 2 === 0 }));
    }
    expect(o.counts()).toMatchObject({ total: 9, active: 3, waiting: 6 });
    expect(runs.slice(3).every((r) => r.state === "idle")).toBe(true);
    const results = await Promise.all(runs.map((r) => r.result()));
    sampler.stop();
    expect(results.map((r) => r.outcome)).toEqual(Array(9).fill("completed"));
    expect(sampler.max).toBeLessThanOrEqual(3);
    expect(sampler.max).toBe(3); // it did run three at once
    expect(admitted).toEqual(runs.map((r) => r.id)); // FIFO
    expect(emulator.countCreates()).toBe(9);
    for (const [i, r] of results.entries()) {
      expect(r.text).toBe(storedText(emulator, r.responseId as string));
      expect(runs[i]?.id).toBe(r.runId);
    }
    expect(o.counts()).toMatchObject({ done: 9, active: 0, byOutcome: { completed: 9 } });
  });

  it("holds a per-key limit (per model) at the server, and a held key does not block others", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 4, outputTokens: 12 });
    const o = orchestrator(emulator, {
      concurrency: 3,
      limits: [{ name: "model", max: 1, keyOf: (request) => request.model }],
    });
    const sampler = serverSampler(emulator);
    const runs: Run[] = [];
    for (const model of ["o3", "o3", "o3", "gpt-5", "gpt-5", "o4-mini"]) {
      runs.push(await o.startRun({ model, input: "x", stream: true }));
    }
    // One of each model runs at once: the second o3 waits, the first gpt-5 does not.
    expect(runs.map((r) => r.state !== "idle")).toEqual([true, false, false, true, false, true]);
    await Promise.all(runs.map((r) => r.result()));
    sampler.stop();
    expect(Math.max(...sampler.maxByModel.values())).toBe(1);
    expect(sampler.max).toBeLessThanOrEqual(3);
    expect(emulator.countCreates()).toBe(6);
  });

  it("cancel() of a waiting run ends it without a create; priority goes first", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 3, outputTokens: 10 });
    const o = orchestrator(emulator, { concurrency: 1 });
    const first = await o.startRun({ model: "o3", input: "first" });
    const dropped = await o.startRun({ model: "o3", input: "dropped" });
    const later = await o.startRun({ model: "o3", input: "later" });
    const urgent = await o.startRun({ model: "o3", input: "urgent", priority: 1 });
    const order: string[] = [];
    o.on("run.admitted", (e) => order.push(e.runId));
    expect(dropped.state).toBe("idle");
    const cancelled = await dropped.cancel();
    expect(cancelled).toMatchObject({ outcome: "cancelled", cancelledBy: "consumer" });
    expect(cancelled.responseId).toBeUndefined();
    await Promise.all([first.result(), later.result(), urgent.result()]);
    expect(order).toEqual([urgent.id, later.id]);
    expect(emulator.countCreates()).toBe(3);
    expect(o.counts().byOutcome).toEqual({ completed: 3, cancelled: 1 });
  });

  it("cancelAll(filter) drops the waiting ones only", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 3, outputTokens: 10 });
    const o = orchestrator(emulator, { concurrency: 2 });
    const runs: Run[] = [];
    for (let i = 0; i < 5; i++) runs.push(await o.startRun({ model: "o3", input: `c${i}` }));
    const results = await o.cancelAll((r) => r.phase === "waiting");
    expect(results.map((r) => r.outcome)).toEqual(["cancelled", "cancelled", "cancelled"]);
    const kept = await Promise.all(runs.slice(0, 2).map((r) => r.result()));
    expect(kept.map((r) => r.outcome)).toEqual(["completed", "completed"]);
    expect(emulator.countCreates()).toBe(2);
  });
});

describe("orchestrator: idempotent keys", () => {
  it("the same key twice in one process is the same Run and one create", async () => {
    emulator = await emulatorFor();
    const o = orchestrator(emulator);
    const [a, b] = await Promise.all([
      o.startRun({ model: "o3", input: "k", stream: true, key: "report-42" }),
      o.startRun({ model: "o3", input: "k", stream: true, key: "report-42" }),
    ]);
    expect(b).toBe(a);
    expect(a.id).toMatch(/^run_k_[0-9a-f]{24}$/);
    const again = await o.startRun({ model: "o3", input: "k", stream: true, key: "report-42" });
    expect(again).toBe(a);
    await a.result();
    expect(await o.startRun({ model: "o3", input: "k", key: "report-42" })).toBe(a);
    expect(emulator.countCreates()).toBe(1);
  });

  it("a new orchestrator on the same store finds the key's run: finished, or still running", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5, outputTokens: 30 });
    const store = new MemoryRunStore();
    const first = orchestrator(emulator, { store });
    const done = await first.startRun({ model: "o3", input: "d", stream: true, key: "done-key" });
    const result = await done.result();
    const running = await first.startRun({
      model: "o3",
      input: "r",
      stream: true,
      key: "live-key",
    });
    await until(running, (r) => r.state === "streaming");
    await first.drain();

    const second = orchestrator(emulator, { store });
    const sameDone = await second.startRun({
      model: "o3",
      input: "d",
      stream: true,
      key: "done-key",
    });
    expect(sameDone.id).toBe(done.id);
    expect(await sameDone.result()).toMatchObject({ outcome: "completed", text: result.text });
    const sameRunning = await second.startRun({
      model: "o3",
      input: "r",
      stream: true,
      key: "live-key",
    });
    expect(sameRunning.id).toBe(running.id);
    expect(second.counts().active).toBe(1); // adopted: it holds a slot
    const rest = await sameRunning.result();
    expect(rest.text).toBe(storedText(emulator, rest.responseId as string));
    expect(emulator.countCreates()).toBe(2);
  });
});

describe("orchestrator: ids and input", () => {
  it("a given run id already saved is that run; bad input rejects, nothing is sent", async () => {
    emulator = await emulatorFor();
    const store = new MemoryRunStore();
    const first = orchestrator(emulator, { store });
    const done = await first.startRun({ model: "o3", input: "x" }, { runId: "run_mine" });
    await done.result();
    const second = orchestrator(emulator, { store });
    const same = await second.startRun({ model: "o3", input: "x" }, { runId: "run_mine" });
    expect(await same.result()).toMatchObject({ outcome: "completed", runId: "run_mine" });
    await expect(second.startRun({ model: "o3", input: "x", key: "" })).rejects.toMatchObject({
      code: "invalid_input",
    });
    await expect(
      second.startRun({ model: "o3", input: "x", priority: Number.NaN }),
    ).rejects.toMatchObject({ code: "invalid_input" });
    await expect(second.startRun({ model: "", input: "x" })).rejects.toMatchObject({
      code: "invalid_input",
    });
    expect(() =>
      createOrchestrator({ client: clientFor(emulator as Emulator), concurrency: 0 }),
    ).toThrow(/concurrency/);
    expect(emulator.countCreates()).toBe(1);
    expect(second.counts().total).toBe(1);
  });
});

describe("orchestrator: recover() and drain()", () => {
  it("drain mid-stream, then recover() in a new orchestrator: exact text, one create per key", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 6, outputTokens: 40 });
    const store = new MemoryRunStore();
    const first = orchestrator(emulator, { store, concurrency: 3 });
    const keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6"];
    const recorders = new Map<string, Recorder>();
    for (const [i, key] of keys.entries()) {
      const run = await first.startRun({ model: "o3", input: key, stream: i % 3 !== 2, key });
      recorders.set(run.id, new Recorder(run));
    }
    // Mid-stream: the active runs have text, the others wait.
    const active = first.runs().filter((r) => r.phase === "active");
    expect(active).toHaveLength(3);
    await Promise.all(
      active.map((r) => until(r.run, (run) => (run.getSnapshot().context.deliveredChars ?? 0) > 0)),
    );
    const drained: string[] = [];
    first.on("fleet.drained", () => drained.push("drained"));
    const report = await first.drain();
    expect(report.detached).toHaveLength(7);
    expect(drained).toEqual(["drained"]);
    await expect(first.startRun({ model: "o3", input: "late" })).rejects.toMatchObject({
      code: "orchestrator_drained",
    });
    const createsAtDrain = emulator.countCreates();
    expect(createsAtDrain).toBe(3);

    const second = orchestrator(emulator, { store, concurrency: 3 });
    const recovered = await second.recover();
    expect(recovered.adopted).toHaveLength(3);
    expect(recovered.requeued).toHaveLength(4);
    expect(recovered.unreadable).toEqual([]);
    // Waiting ones queue again in their order; the adopted ones hold every slot.
    expect(second.counts()).toMatchObject({ active: 3, waiting: 4 });
    for (const fleetRun of second.runs()) recorders.get(fleetRun.runId)?.attach(fleetRun.run);
    const results = await Promise.all(second.runs().map((r) => r.run.result()));
    expect(results.map((r) => r.outcome)).toEqual(Array(7).fill("completed"));
    for (const result of results) {
      const stored = storedText(emulator, result.responseId as string);
      expect(result.text).toBe(stored);
      const recorder = recorders.get(result.runId);
      expect(recorder?.text).toBe(stored); // what a consumer saw across both processes
      expect(recorder?.repeatedSequenceNumbers).toEqual([]);
    }
    // One create per key, whatever was running or waiting at the drain.
    expect(emulator.countCreates()).toBe(7);
    const ids = creates(emulator).map((r) => r.responseId);
    expect(new Set(ids).size).toBe(7);
  });

  it("recover() reports unreadable saves and carries on with the rest", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 20 }); // ~600 ms a run: still running at the drain
    const dir = await mkdtemp(join(tmpdir(), "baton-orch-"));
    try {
      const store = new FileRunStore(dir);
      const first = orchestrator(emulator, { store, concurrency: 1 });
      await first.startRun({ model: "o3", input: "a", key: "a" });
      await first.startRun({ model: "o3", input: "b", key: "b" });
      await first.drain({ createWaitMs: 2_000 });
      await writeFile(join(dir, "run_garbage.run.json"), "{not json");

      const second = orchestrator(emulator, { store, concurrency: 1 });
      const report = await second.recover();
      expect(report.unreadable.map((u) => u.runId)).toEqual(["run_garbage"]);
      expect(report.adopted.length + report.requeued.length).toBe(2);
      const results = await Promise.all(second.runs().map((r) => r.run.result()));
      expect(results.map((r) => r.outcome)).toEqual(["completed", "completed"]);
      expect(emulator.countCreates()).toBe(2);
      // A key whose save is unreadable is refused, never created over.
      await writeFile(join(dir, `${runIdForKey("a")}.run.json`), "{broken");
      const third = orchestrator(emulator, { store });
      await expect(third.startRun({ model: "o3", input: "a", key: "a" })).rejects.toThrow();
      expect(emulator.countCreates()).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a create in flight past the drain's wait follows onUnknownCreate: no second create", async () => {
    emulator = await emulatorFor();
    // The create's reply is held back: the run is still in `started` when the drain saves it.
    emulator.faults.add({ on: "create-stream", stall: { afterEvents: 0, ms: 1_500 } });
    const store = new MemoryRunStore();
    const first = orchestrator(emulator, { store });
    const run = await first.startRun({ model: "o3", input: "s", stream: true, key: "stalled" });
    await waitFor(() => emulator?.countCreates() === 1);
    expect(run.state).toBe("started");
    await first.drain({ createWaitMs: 20 });

    const second = orchestrator(emulator, { store });
    const report = await second.recover();
    expect(report.ended).toEqual([run.id]);
    const again = await second.startRun({ model: "o3", input: "s", stream: true, key: "stalled" });
    expect(await again.result()).toMatchObject({ outcome: "gave-up", reason: "create-unknown" });
    expect(emulator.countCreates()).toBe(1);
  });
});

describe("orchestrator: events and inspection", () => {
  it("one inspect observer sees the orchestrator and every run, new or recovered", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 3, outputTokens: 20 });
    const store = new MemoryRunStore();
    const seen = new Set<string>();
    const inspect = (event: { type: string; actorRef: { sessionId: string } }) => {
      if (event.type === "@xstate.actor") seen.add(event.actorRef.sessionId);
    };
    const first = orchestrator(emulator, { store, concurrency: 1, inspect });
    const events: string[] = [];
    first.subscribe((e) => events.push(`${e.type}${"runId" in e ? `:${e.runId}` : ""}`));
    const a = await first.startRun({ model: "o3", input: "a", stream: true, key: "a" });
    const b = await first.startRun({ model: "o3", input: "b", stream: true, key: "b" });
    expect(seen.has(first.actor.sessionId)).toBe(true);
    expect(seen.has(a.actor.sessionId) && seen.has(b.actor.sessionId)).toBe(true);
    await a.result();
    expect(events.slice(0, 5)).toEqual([
      `run.queued:${a.id}`,
      `run.admitted:${a.id}`,
      `run.queued:${b.id}`,
      `run.started:${a.id}`,
      `run.done:${a.id}`,
    ]);
    expect(first.counts()).toMatchObject({ done: 1, active: 1, byState: { done: 1 } });
    await first.drain();
    expect(events.slice(-2)).toEqual([`run.detached:${b.id}`, "fleet.drained"]);

    const second = orchestrator(emulator, { store, inspect });
    await second.recover();
    const [recovered] = second.runs();
    expect(recovered?.runId).toBe(b.id);
    expect(seen.has(recovered?.run.actor.sessionId ?? "")).toBe(true);
    expect(await recovered?.run.result()).toMatchObject({ outcome: "completed" });
    expect(emulator.countCreates()).toBe(2);
  });
});
