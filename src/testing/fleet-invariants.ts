/**
 * What must hold for a fleet of runs (an orchestrator's, or an app's own pool), counted where
 * it costs money: at the server. `watchServer(emulator)` samples how many responses are queued
 * or in progress at once (overall and per model); `assertFleetInvariants` checks the samples
 * against the limits, that no run id ever had two responses (one create per run, whatever
 * crashed, drained or retried), and that every key expected is done exactly once, with its text.
 */

import type { Emulator } from "../emulator/index.js";
import { RunInvariantError } from "../errors.js";
import type { RunResult } from "../machines/run-types.js";
import { runIdForKey } from "../orchestrator/run-key.js";

type EmulatorView = Pick<Emulator, "requests" | "getResponse">;

/** What {@link watchServer} has seen so far. */
export interface ServerWatch {
  /** Most responses queued or in progress at the same time. */
  readonly maxLive: number;
  /** The same, per model. */
  readonly maxLiveByModel: ReadonlyMap<string, number>;
  /** How many samples were taken. */
  readonly samples: number;
  /** Stops sampling (idempotent). */
  stop(): void;
}

/**
 * Samples an emulator every `everyMs` (default 2 ms): the responses it created that are
 * `queued` or `in_progress` at that moment. Stop it before the emulator closes.
 *
 * @example
 * ```ts
 * const watch = watchServer(emulator);
 * await Promise.all(runs.map((run) => run.result()));
 * watch.stop();
 * console.log(watch.maxLive); // never above the fleet's concurrency
 * ```
 */
export function watchServer(emulator: EmulatorView, everyMs = 2): ServerWatch {
  let maxLive = 0;
  let samples = 0;
  const maxLiveByModel = new Map<string, number>();
  // Only creates' responses can be live; keep the ids seen so a sample is not a full scan.
  const created = new Set<string>();
  let scanned = 0;
  const sample = () => {
    const requests = emulator.requests;
    // The log is bounded (oldest dropped): rescan from the start when it shrank.
    if (scanned > requests.length) scanned = 0;
    for (; scanned < requests.length; scanned++) {
      const request = requests[scanned];
      if (!request?.responseId) continue;
      if (request.kind === "create" || request.kind === "create-stream") {
        created.add(request.responseId);
      }
    }
    let live = 0;
    const byModel = new Map<string, number>();
    for (const id of created) {
      const response = emulator.getResponse(id);
      if (!response || (response.status !== "queued" && response.status !== "in_progress")) {
        continue;
      }
      live++;
      byModel.set(response.model, (byModel.get(response.model) ?? 0) + 1);
    }
    samples++;
    maxLive = Math.max(maxLive, live);
    for (const [model, n] of byModel) {
      maxLiveByModel.set(model, Math.max(maxLiveByModel.get(model) ?? 0, n));
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    get maxLive() {
      return maxLive;
    },
    maxLiveByModel,
    get samples() {
      return samples;
    },
    stop: () => {
      clearInterval(timer);
      sample();
    },
  };
}

/** What {@link assertFleetInvariants} checks. */
export interface FleetInvariantInput {
  /** The emulator the fleet used. */
  emulator: EmulatorView;
  /** A {@link watchServer} of it, stopped once the fleet is done. */
  watch?: ServerWatch;
  /** The most responses live at once (the fleet's concurrency). */
  concurrency?: number;
  /** The most live at once per model (`{ o3: 1 }`). */
  perModel?: Readonly<Record<string, number>>;
  /**
   * Keys that must each be done exactly once: one response at the server for the key's run id
   * (`runIdForKey`), and, when `results` has it, a result of that run.
   */
  keys?: readonly string[];
  /** The fleet's results: each `completed` one must hold its response's stored text. */
  results?: readonly RunResult[];
}

/**
 * Checks a fleet against what the server saw and throws a {@link RunInvariantError} naming
 * every invariant that does not hold:
 * - never more responses live at once than `concurrency` (and `perModel`), as sampled;
 * - no run id with two responses (by the `baton_run_id` each create is tagged with);
 * - every key in `keys` done exactly once: one response, and its run's result if given;
 * - every `completed` result's text equals the emulator's stored text.
 *
 * @example
 * ```ts
 * const watch = watchServer(emulator);
 * const runs = await Promise.all(keys.map((key) => fleet.startRun({ model: "o3", input: key, key })));
 * const results = await Promise.all(runs.map((run) => run.result()));
 * watch.stop();
 * assertFleetInvariants({ emulator, watch, concurrency: 3, keys, results });
 * ```
 */
export function assertFleetInvariants(input: FleetInvariantInput): void {
  const violations: string[] = [];
  const { emulator, watch } = input;
  if (watch && input.concurrency !== undefined && watch.maxLive > input.concurrency) {
    violations.push(
      `${watch.maxLive} responses were live at once at the server; the concurrency is ${input.concurrency}`,
    );
  }
  for (const [model, max] of Object.entries(input.perModel ?? {})) {
    const seen = watch?.maxLiveByModel.get(model) ?? 0;
    if (seen > max) violations.push(`${seen} ${model} responses were live at once; at most ${max}`);
  }
  const responsesByRun = new Map<string, Set<string>>();
  for (const request of emulator.requests) {
    if (request.kind !== "create" && request.kind !== "create-stream") continue;
    if (!request.responseId) continue;
    const runId = emulator.getResponse(request.responseId)?.metadata.baton_run_id;
    if (runId === undefined) continue;
    const responses = responsesByRun.get(runId) ?? new Set<string>();
    responses.add(request.responseId);
    responsesByRun.set(runId, responses);
  }
  for (const [runId, responses] of responsesByRun) {
    if (responses.size > 1) {
      violations.push(`run ${runId} has ${responses.size} responses: ${[...responses].join(", ")}`);
    }
  }
  const resultsByRun = new Map((input.results ?? []).map((result) => [result.runId, result]));
  for (const key of input.keys ?? []) {
    const runId = runIdForKey(key);
    const count = responsesByRun.get(runId)?.size ?? 0;
    if (count !== 1) violations.push(`key '${key}' (${runId}) has ${count} responses, not 1`);
    if (input.results && !resultsByRun.has(runId)) {
      violations.push(`key '${key}' (${runId}) has no result`);
    }
  }
  for (const result of input.results ?? []) {
    if (result.outcome !== "completed" || !result.responseId) continue;
    const stored = emulator
      .getResponse(result.responseId)
      ?.output.flatMap((item) => item.content.map((part) => part.text))
      .join("");
    if (stored !== undefined && stored !== result.text) {
      violations.push(`run ${result.runId}: its text differs from its response's stored text`);
    }
  }
  if (violations.length > 0) throw new RunInvariantError(violations);
}
