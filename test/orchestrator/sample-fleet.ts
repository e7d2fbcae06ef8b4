/**
 * The sample fleet both model tests of the orchestrator machine walk: four runs under a
 * per-model limit of 1 (two of one model, one of high priority), their settles, a rate limit,
 * its end and a drain; and the state key the walks compare states by.
 */
import type {
  OrchestratorContext,
  OrchestratorEvent,
} from "../../src/orchestrator/orchestrator-machine.js";

/** Two at once, one per model. */
export const SAMPLE_INPUT = { concurrency: 2, limits: [{ name: "model", max: 1 }] };

/** Each sample run's model (its key under the `model` limit). */
export const SAMPLE_MODELS: Readonly<Record<string, string>> = {
  a1: "model-a",
  a2: "model-a",
  b1: "model-b",
  c1: "model-c",
};

/** The sample events; `until` is the rate limit's end (epoch ms). */
export function sampleEvents(until: number): OrchestratorEvent[] {
  const submit = (runId: string, priority?: number): OrchestratorEvent => ({
    type: "fleet.submit",
    runId,
    ...(priority !== undefined ? { priority } : {}),
    keys: { model: SAMPLE_MODELS[runId] as string },
  });
  return [
    submit("a1"),
    submit("a2"),
    submit("b1"),
    submit("c1", 1),
    { type: "run.settled", runId: "a1" },
    { type: "run.settled", runId: "a2" },
    { type: "run.settled", runId: "b1" },
    { type: "run.settled", runId: "c1" },
    { type: "fleet.rate-limited", until },
    { type: "fleet.resume" },
    { type: "fleet.drain" },
  ];
}

/**
 * States compared by what matters (state, queue order, active set, pause), not by the
 * submission counter: a run submitted again after it settled is the same state, and the walk
 * stays finite.
 */
export const serializeState = (state: {
  value: unknown;
  status: string;
  context: OrchestratorContext;
}) =>
  JSON.stringify([
    state.value,
    state.status,
    state.context.queue.map((e) => e.runId),
    Object.keys(state.context.active).sort(),
    state.context.pausedUntil,
  ]);
