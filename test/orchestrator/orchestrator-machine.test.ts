/**
 * The orchestrator machine on its own (pure: nothing runs). `xstate/graph` walks it with sample
 * events (submits under a per-key limit, settles, a rate limit, resume, drain, an adopted run)
 * and every step of every path keeps the fleet invariants; fast-check drives it with random
 * submit / settle / pause / drain sequences and checks the same invariants, plus FIFO order and
 * that admission is work-conserving (in `admitting`, nothing that fits is left waiting).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { getShortestPaths, getSimplePaths } from "xstate/graph";
import { admit } from "../../src/orchestrator/admission.js";
import {
  type OrchestratorContext,
  orchestratorMachine,
} from "../../src/orchestrator/orchestrator-machine.js";
import { SAMPLE_INPUT, sampleEvents as sampleEventsUntil, serializeState } from "./sample-fleet.js";

const input = SAMPLE_INPUT;

/** The invariants every reachable state keeps (`adopted`: runs adopted above the limit). */
function checkInvariants(context: OrchestratorContext, adopted = 0): void {
  const active = Object.values(context.active);
  expect(context.activeCount).toBe(active.length);
  expect(context.activeCount).toBeLessThanOrEqual(context.concurrency + adopted);
  for (const limit of context.limits) {
    for (const count of Object.values(context.perKey[limit.name] ?? {})) {
      expect(count).toBeLessThanOrEqual(limit.max + adopted);
    }
  }
  for (const entry of context.queue) expect(context.active[entry.runId]).toBeUndefined();
  const ids = context.queue.map((e) => e.runId);
  expect(new Set(ids).size).toBe(ids.length);
}

const sampleEvents = sampleEventsUntil(1_000);

describe("orchestrator machine, model-based (xstate/graph)", () => {
  it("every shortest path keeps active ≤ concurrency and every per-key count ≤ its max", () => {
    const paths = getShortestPaths(orchestratorMachine, {
      events: sampleEvents,
      input,
      serializeState,
    });
    expect(paths.length).toBeGreaterThan(200);
    const values = new Set<string>();
    for (const path of paths) {
      for (const step of path.steps) checkInvariants(step.state.context);
      values.add(JSON.stringify(path.state.value));
    }
    // Every state is reached: admitting, paused, draining (with runs left) and drained.
    expect([...values].sort()).toEqual(['"admitting"', '"drained"', '"draining"', '"paused"']);
  });

  it("bounded simple paths keep the invariants, and a drain ends once every run settles", () => {
    // Three runs (two of the same key), their settles and drain: every path without repeats.
    const events = sampleEvents.filter(
      (e) =>
        (!("runId" in e) || e.runId !== "c1") &&
        e.type !== "fleet.rate-limited" &&
        e.type !== "fleet.resume",
    );
    const paths = getSimplePaths(orchestratorMachine, { events, input, serializeState });
    expect(paths.length).toBeGreaterThan(1_000);
    let drainedPaths = 0;
    for (const path of paths) {
      for (const step of path.steps) checkInvariants(step.state.context);
      const drained = path.state.status === "done";
      if (drained) {
        drainedPaths++;
        expect(path.state.context.queue).toEqual([]);
        expect(path.state.context.activeCount).toBe(0);
      }
    }
    expect(drainedPaths).toBeGreaterThan(0);
  });

  it("an adopted run counts at once, above the limit; nothing new starts until below it", () => {
    const actor = createActor(orchestratorMachine, { input }).start();
    const admitted: string[] = [];
    actor.on("run.admitted", (e) => admitted.push(e.runId));
    actor.send({ type: "fleet.adopt", runId: "x1" });
    actor.send({ type: "fleet.adopt", runId: "x2" });
    actor.send({ type: "fleet.adopt", runId: "x3" });
    actor.send({ type: "fleet.submit", runId: "n1" });
    expect(actor.getSnapshot().context.activeCount).toBe(3);
    expect(admitted).toEqual([]);
    actor.send({ type: "run.settled", runId: "x1" });
    expect(admitted).toEqual([]); // 2 active: still full
    actor.send({ type: "run.settled", runId: "x2" });
    expect(admitted).toEqual(["n1"]);
    checkInvariants(actor.getSnapshot().context);
  });
});

type Command =
  | { kind: "submit"; priority: number; key: string }
  | { kind: "settle"; pick: number }
  | { kind: "pause" }
  | { kind: "resume" }
  | { kind: "drain" };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("submit" as const),
      priority: fc.integer({ min: 0, max: 2 }),
      key: fc.constantFrom("a", "b", "c"),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("settle" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pause" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "resume" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "drain" as const }) },
);

describe("orchestrator machine, random sequences (fast-check)", () => {
  it("keeps the limits, admits FIFO within a priority and key, and leaves nothing fitting waiting", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(command, { maxLength: 80 }),
        (concurrency, perKey, commands) => {
          const actor = createActor(orchestratorMachine, {
            input: { concurrency, limits: [{ name: "key", max: perKey }] },
          }).start();
          const submitted = new Map<string, { priority: number; key: string; n: number }>();
          const admitted: string[] = [];
          const settled = new Set<string>();
          actor.on("run.admitted", (e) => admitted.push(e.runId));
          let n = 0;
          for (const c of commands) {
            if (actor.getSnapshot().status !== "active") break; // drained: final
            if (c.kind === "submit") {
              const runId = `r${n}`;
              submitted.set(runId, { priority: c.priority, key: c.key, n: n++ });
              actor.send({
                type: "fleet.submit",
                runId,
                priority: c.priority,
                keys: { key: c.key },
              });
            } else if (c.kind === "settle") {
              const live = [...submitted.keys()].filter((id) => !settled.has(id));
              const runId = live[c.pick % Math.max(1, live.length)];
              if (runId === undefined) continue;
              settled.add(runId);
              actor.send({ type: "run.settled", runId });
            } else if (c.kind === "pause") {
              actor.send({ type: "fleet.rate-limited", until: 1 });
            } else if (c.kind === "resume") {
              actor.send({ type: "fleet.resume" });
            } else {
              actor.send({ type: "fleet.drain" });
            }
            const snapshot = actor.getSnapshot();
            checkInvariants(snapshot.context);
            if (snapshot.value === "admitting") {
              // Work-conserving: nothing that fits is left waiting.
              expect(admit(snapshot.context).admitted).toEqual([]);
            }
          }
          // Each run admitted at most once; never one that was settled before its admission.
          expect(new Set(admitted).size).toBe(admitted.length);
          // FIFO within the same priority and key: admitted in submission order.
          const lastOf = new Map<string, number>();
          for (const runId of admitted) {
            const info = submitted.get(runId);
            if (!info) throw new Error(`unknown run ${runId}`);
            const group = `${info.priority}/${info.key}`;
            expect(info.n).toBeGreaterThan(lastOf.get(group) ?? -1);
            lastOf.set(group, info.n);
          }
          actor.stop();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("admits nothing while paused or draining", () => {
    const actor = createActor(orchestratorMachine, { input: { concurrency: 1 } }).start();
    const admitted: string[] = [];
    actor.on("run.admitted", (e) => admitted.push(e.runId));
    actor.send({ type: "fleet.submit", runId: "a" });
    actor.send({ type: "fleet.rate-limited", until: 5 });
    actor.send({ type: "fleet.submit", runId: "b" });
    actor.send({ type: "run.settled", runId: "a" });
    expect(admitted).toEqual(["a"]);
    actor.send({ type: "fleet.resume" });
    expect(admitted).toEqual(["a", "b"]);
    actor.send({ type: "fleet.submit", runId: "c" });
    actor.send({ type: "fleet.drain" });
    actor.send({ type: "run.settled", runId: "b" });
    expect(admitted).toEqual(["a", "b"]);
    expect(actor.getSnapshot().value).toBe("draining"); // c still waits (the wrapper detaches it)
    actor.send({ type: "run.settled", runId: "c" });
    expect(actor.getSnapshot().status).toBe("done");
  });

  it("orders by priority, then FIFO; a run held by its key does not block the next", () => {
    const actor = createActor(orchestratorMachine, {
      input: { concurrency: 3, limits: [{ name: "model", max: 1 }] },
    }).start();
    const admitted: string[] = [];
    actor.on("run.admitted", (e) => admitted.push(e.runId));
    actor.send({ type: "fleet.rate-limited", until: 1 }); // hold admissions while the queue fills
    actor.send({ type: "fleet.submit", runId: "a1", keys: { model: "a" } });
    actor.send({ type: "fleet.submit", runId: "a2", keys: { model: "a" } });
    actor.send({ type: "fleet.submit", runId: "b1", keys: { model: "b" } });
    actor.send({ type: "fleet.submit", runId: "urgent", priority: 5, keys: { model: "c" } });
    actor.send({ type: "fleet.resume" });
    expect(admitted).toEqual(["urgent", "a1", "b1"]);
    actor.send({ type: "run.settled", runId: "a1" });
    expect(admitted.at(-1)).toBe("a2");
  });
});
