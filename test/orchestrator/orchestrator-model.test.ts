/**
 * The orchestrator machine's shortest paths, replayed against the real orchestrator on the
 * emulator (the way the run machine's model paths are): each model event is done for real
 * (`fleet.submit` → `startRun`; `run.settled` → `run.cancel()`; `fleet.rate-limited` → a 429
 * wait in the rate gate; `fleet.resume` → the gate's wait ends; `fleet.drain` → `drain()`), and
 * after each step the real fleet must be where the model is: its state, the runs waiting, the
 * runs active (and those are the ones whose run left `idle`). Every create is held `queued` at
 * the server, so a run is active until the path settles it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getShortestPaths } from "xstate/graph";
import type { Emulator } from "../../src/emulator/index.js";
import type { Run } from "../../src/index.js";
import { createOrchestrator } from "../../src/orchestrator/index.js";
import {
  type OrchestratorEvent,
  orchestratorMachine,
} from "../../src/orchestrator/orchestrator-machine.js";
import { clientFor, emulatorFor, FAST } from "../support/run-harness.js";
import { SAMPLE_INPUT, SAMPLE_MODELS, sampleEvents, serializeState } from "./sample-fleet.js";

const PATHS = Number(process.env.ORCH_MODEL_PATHS ?? 40);
const input = SAMPLE_INPUT;
const MODELS = SAMPLE_MODELS;
const events = sampleEvents(1);

/** Paths the real orchestrator can follow: each run submitted once, nothing after a drain. */
function replayable(path: { steps: { event: OrchestratorEvent }[] }): boolean {
  const submitted = new Set<string>();
  let drained = false;
  for (const { event } of path.steps) {
    if (drained) return false;
    if (event.type === "fleet.submit") {
      if (submitted.has(event.runId)) return false;
      submitted.add(event.runId);
    }
    if (event.type === "fleet.drain") drained = true;
  }
  return true;
}

let emulator: Emulator;
beforeAll(async () => {
  emulator = await emulatorFor();
  // Every response stays queued until cancelled: a run is active until the path settles it.
  emulator.faults.add({
    on: ["create", "create-stream"],
    times: Infinity,
    script: { stuckQueued: true },
  });
});
afterAll(async () => {
  await emulator.close();
});

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("orchestrator model paths, replayed on the emulator", () => {
  const paths = getShortestPaths(orchestratorMachine, { events, input, serializeState })
    .filter(replayable)
    // The longest first: they cover the most; then a spread of the rest.
    .sort((a, b) => b.steps.length - a.steps.length)
    .slice(0, PATHS);

  it(`has paths to replay (${paths.length})`, () => {
    expect(paths.length).toBeGreaterThan(10);
  });

  paths.forEach((path, index) => {
    const name = path.steps
      .map((s) => ("runId" in s.event ? `${s.event.type}(${s.event.runId})` : s.event.type))
      .join(" → ");
    it(`path ${index + 1}: ${name}`, async () => {
      const o = createOrchestrator({
        client: clientFor(emulator),
        concurrency: input.concurrency,
        limits: [{ name: "model", max: 1, keyOf: (request) => request.model }],
        options: FAST,
      });
      const runs = new Map<string, Run>();
      const idOf = (modelId: string) => `run_p${index}_${modelId}`;
      try {
        for (const step of path.steps) {
          const event = step.event;
          if (event.type === "fleet.submit") {
            const run = await o.startRun(
              {
                model: MODELS[event.runId] as string,
                input: event.runId,
                ...(event.priority !== undefined ? { priority: event.priority } : {}),
              },
              { runId: idOf(event.runId) },
            );
            runs.set(event.runId, run);
          } else if (event.type === "run.settled") {
            const run = runs.get(event.runId);
            if (run) await run.cancel();
          } else if (event.type === "fleet.rate-limited") {
            o.gate.pause({ kind: "rate-limited", message: "model step", retryAfterMs: 60_000 });
          } else if (event.type === "fleet.resume") {
            o.gate.resume();
          } else if (event.type === "fleet.drain") {
            await o.drain();
          }
          await tick();
          const model = step.state;
          const real = o.actor.getSnapshot();
          const label = `after ${event.type}${"runId" in event ? `(${event.runId})` : ""}`;
          if (event.type === "fleet.drain") {
            // The real drain detaches every run, which settles them all: drained.
            expect(real.status, label).toBe("done");
            continue;
          }
          expect(real.value, label).toEqual(model.value);
          expect(
            real.context.queue.map((e) => e.runId),
            label,
          ).toEqual(model.context.queue.map((e) => idOf(e.runId)));
          expect(Object.keys(real.context.active).sort(), label).toEqual(
            Object.keys(model.context.active).map(idOf).sort(),
          );
          const counts = o.counts();
          expect(counts.waiting, label).toBe(model.context.queue.length);
          expect(counts.active, label).toBe(model.context.activeCount);
          for (const [modelId, run] of runs) {
            const active = model.context.active[modelId] !== undefined;
            if (active) expect(run.state, `${label}: ${modelId}`).not.toBe("idle");
            if (model.context.queue.some((e) => e.runId === modelId))
              expect(run.state).toBe("idle");
          }
        }
      } finally {
        await o.cancelAll().catch(() => {});
        o.gate.close();
      }
    });
  });
});
