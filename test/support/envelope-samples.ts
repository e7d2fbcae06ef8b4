/**
 * Real envelopes, as a store received them from real runs against the emulator, in every state
 * a run is saved in (idle, started, polling, streaming, interrupted, resumed, cancelling, done):
 * the seeds of the corruption probes and of the named corruption tests. Every run has ended
 * when `captureEnvelopes` returns, so a restored copy finds its response finished and settles
 * at once.
 */
import { createActor } from "xstate";
import type { Emulator } from "../../src/emulator/index.js";
import {
  MemoryRunStore,
  type PersistedRun,
  runMachine,
  startRun,
  toEnvelope,
} from "../../src/index.js";
import { clientFor, FAST } from "./run-harness.js";

/** Options of the sampled runs: fast retries, and a deadline (so the deadline child is saved). */
export const SAMPLE_OPTIONS = { ...FAST, deadlineMs: 60_000, maxResumeAttempts: 3 } as const;

/** A store that keeps a JSON copy of every save it is given. */
class CapturingStore extends MemoryRunStore {
  readonly saved: PersistedRun[] = [];
  override async save(run: PersistedRun): Promise<void> {
    this.saved.push(JSON.parse(JSON.stringify(run)));
    await super.save(run);
  }
}

/** The key that tells two samples apart: status and state value. */
export function sampleKey(run: PersistedRun): string {
  return `${run.snapshot.status}:${JSON.stringify(run.snapshot.value)}`;
}

/**
 * Runs a few real runs (streamed with a dropped stream, polled, cancelled mid-stream) and
 * returns their saves, at most `perKey` of each status and state value.
 */
export async function captureEnvelopes(emulator: Emulator, perKey = 2): Promise<PersistedRun[]> {
  const client = clientFor(emulator);
  const store = new CapturingStore();
  emulator.faults.add({ on: "create-stream", times: 1, drop: { afterEvents: 6 } });
  const streamed = startRun({
    client,
    model: "o3",
    input: "x",
    stream: true,
    options: SAMPLE_OPTIONS,
    store,
  });
  await streamed.result();
  const polled = startRun({ client, model: "o3", input: "y", options: SAMPLE_OPTIONS, store });
  await polled.result();
  const cancelled = startRun({
    client,
    model: "o3",
    input: "z",
    stream: true,
    options: SAMPLE_OPTIONS,
    store,
  });
  await new Promise<void>((resolve) => {
    const sub = cancelled.on("delta", () => {
      sub.unsubscribe();
      resolve();
    });
  });
  await cancelled.cancel();
  // A deadline that fires mid-run: the spawned deadline child is saved "done" beside the run.
  const late = startRun({
    client,
    model: "o3",
    input: "v",
    stream: true,
    options: { ...SAMPLE_OPTIONS, deadlineMs: 15 },
    store,
  });
  await late.result();
  // An idle run as `toEnvelope` saves one (a run is started at once by `startRun`).
  const idle = createActor(runMachine, {
    input: {
      runId: "run_idle_sample",
      mode: "poll",
      request: { model: "o3", input: "w" },
      options: SAMPLE_OPTIONS,
    },
  });
  const samples: PersistedRun[] = [
    JSON.parse(JSON.stringify(toEnvelope(idle.getPersistedSnapshot()))),
  ];
  const counts = new Map<string, number>();
  for (const run of store.saved) {
    const key = sampleKey(run);
    const seen = counts.get(key) ?? 0;
    if (seen >= perKey) continue;
    counts.set(key, seen + 1);
    samples.push(run);
  }
  return samples;
}
