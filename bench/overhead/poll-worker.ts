/**
 * One polling round, in a process of its own (started with `--expose-gc`): N concurrent
 * background runs polling the emulator at `--url`, either as baton runs (`startRun`, poll mode)
 * or as a hand-written raw SDK loop (`responses.create({ background: true })`, then
 * `responses.retrieve(id)` every interval). Prints one JSON line: heap per run, event-loop
 * delay, CPU per poll.
 *
 *   node --expose-gc --import tsx bench/overhead/poll-worker.ts \
 *     --mode baton --runs 1000 --interval-ms 1000 --warmup-ms 3000 --window-ms 5000 --url URL
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { type Run, startRun } from "baton";
import OpenAI from "openai";
import { now, sleep } from "./stats.js";

/** `raw`: the hand-written SDK loop. `baton`: `startRun`. */
export type PollMode = "raw" | "baton";

export interface PollRoundResult {
  mode: PollMode;
  runs: number;
  intervalMs: number;
  windowMs: number;
  /**
   * Heap growth per live run after a full GC (bytes): from half the runs polling to all of
   * them, over the half added.
   */
  heapPerRunBytes: number;
  rssPerRunBytes: number;
  /** Event-loop delay over the window (ms). */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Process CPU (user + system) per retrieve call made in the window (µs). */
  cpuPerPollUs: number;
  /** Retrieve calls answered per second in the window, and the rate the interval asks for. */
  pollsPerSec: number;
  targetPollsPerSec: number;
  /** Share of the window the process was on a CPU (1 = one full core). */
  cpuLoad: number;
  /** Open sockets (the connection pool) with half the runs, and with all of them. */
  socketsHalf: number;
  socketsAll: number;
}

const { values } = parseArgs({
  options: {
    mode: { type: "string" },
    runs: { type: "string" },
    "interval-ms": { type: "string" },
    "warmup-ms": { type: "string" },
    "window-ms": { type: "string" },
    url: { type: "string" },
  },
});
const mode = values.mode as PollMode;
const runs = Number(values.runs);
const intervalMs = Number(values["interval-ms"]);
const warmupMs = Number(values["warmup-ms"]);
const windowMs = Number(values["window-ms"]);
const url = values.url as string;
if (!["raw", "baton"].includes(mode)) throw new Error("--mode raw|baton");
if (!(runs > 0 && intervalMs > 0 && windowMs > 0 && warmupMs >= 0 && url)) {
  throw new Error("--runs, --interval-ms, --warmup-ms, --window-ms and --url are required");
}
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

/** Counts every request both variants make, through the same wrapper. */
let polls = 0;
let failures = 0;
const countingFetch: typeof fetch = (input, init) => {
  if ((init?.method ?? "GET") === "GET") polls++;
  return fetch(input, init);
};
// The SDK's default retries (2) serve the raw loop as they would a hand-written one; baton
// sets `maxRetries: 0` on each of its calls and retries in its machine.
const client = new OpenAI({ baseURL: url, apiKey: "bench", fetch: countingFetch });
const MODEL = "o3";
const ACTIVE = new Set(["queued", "in_progress"]);

/** Open TCP sockets: the HTTP connection pool grows with the most polls ever in flight at once. */
function openSockets(): number {
  const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
  return handles.filter((handle) => handle.constructor.name === "Socket").length;
}

/**
 * The heap after a full collection. Objects registered with a FinalizationRegistry (undici's
 * fetch registers every request's controller and response) are only released by cleanup
 * callbacks that run as tasks after a collection: give them a turn, then collect again, or
 * the heap counts every request of the last moments (it grows with the poll rate, not the runs).
 */
async function heapAfterGc(): Promise<{ heap: number; rss: number; sockets: number }> {
  gc?.();
  await sleep(20);
  gc?.();
  await sleep(20);
  gc?.();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, rss: usage.rss, sockets: openSockets() };
}

/**
 * The median of five such heaps, 200 ms apart: one sample can land on a burst of polls in
 * flight (after a pause of the event loop), and at 1,000 runs each MB is 2 KiB per run added.
 */
async function settledHeap(): Promise<{ heap: number; rss: number; sockets: number }> {
  const samples: { heap: number; rss: number; sockets: number }[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(200);
    samples.push(await heapAfterGc());
  }
  samples.sort((a, b) => a.heap - b.heap);
  return samples[2] as { heap: number; rss: number; sockets: number };
}

// --- the two variants -------------------------------------------------------------------------

let stopping = false;
let created = 0;
let ended = 0;

/** The hand-written loop: keeps the response id between polls, as baton keeps its context. */
async function rawRun(i: number): Promise<void> {
  const first = await client.responses.create({
    model: MODEL,
    input: `poll ${i}`,
    background: true,
  });
  created++;
  const id = first.id;
  let status = first.status as string;
  while (!stopping && ACTIVE.has(status)) {
    await sleep(intervalMs);
    if (stopping) break;
    status = (await client.responses.retrieve(id)).status as string;
  }
  if (!stopping) ended++;
}

const rawRuns: Promise<void>[] = [];
const batonRuns: Run[] = [];

function startOne(i: number): void {
  if (mode === "raw") {
    rawRuns.push(
      rawRun(i).catch((err: unknown) => {
        failures++;
        if (failures <= 3)
          process.stderr.write(
            `raw run ${i} failed: ${String(err)} ${String((err as { cause?: unknown }).cause)}\n`,
          );
      }),
    );
  } else {
    const run = startBaton(i);
    run.result().then(
      () => {
        if (!stopping) ended++;
      },
      () => {
        failures++;
      },
    );
    batonRuns.push(run);
  }
}

function startBaton(i: number): Run {
  return startRun({
    client,
    model: MODEL,
    input: `poll ${i}`,
    options: { pollIntervalMs: intervalMs },
  });
}

function createdCount(): number {
  if (mode === "raw") return created;
  let count = 0;
  for (const run of batonRuns) if (run.responseId !== null) count++;
  return count;
}

// --- the round --------------------------------------------------------------------------------

/**
 * Starts runs `from` to `to`, spread over one interval so that polls are spread evenly too,
 * and waits until all are created.
 */
async function startRuns(from: number, to: number): Promise<void> {
  const TICK_MS = 50;
  const ticks = Math.max(1, Math.floor(intervalMs / TICK_MS));
  const perTick = Math.ceil((to - from) / ticks);
  for (let started = from; started < to; ) {
    const batch = Math.min(perTick, to - started);
    for (let j = 0; j < batch; j++) startOne(started + j);
    started += batch;
    await sleep(TICK_MS);
  }
  const createDeadline = now() + 120_000;
  while (createdCount() < to) {
    if (failures > 0 || ended > 0) break;
    if (now() > createDeadline) throw new Error(`only ${createdCount()} of ${to} runs created`);
    await sleep(50);
  }
}

// Heap per run is the marginal cost: the heap with half the runs polling is the base, so that
// what the process holds once whatever the number of runs (compiled code, the SDK's and
// baton's module state, the shared run machine, the connection pool) is not counted per run.
const half = Math.floor(runs / 2);
await startRuns(0, half);
await sleep(warmupMs);
const base = await settledHeap();
await startRuns(half, runs);
await sleep(warmupMs);

const before = await settledHeap();
const histogram = monitorEventLoopDelay({ resolution: 1 });
const cpu0 = process.cpuUsage();
const polls0 = polls;
const t0 = now();
histogram.enable();
await sleep(windowMs);
histogram.disable();
const elapsed = now() - t0;
const cpu = process.cpuUsage(cpu0);
const windowPolls = polls - polls0;
const after = await settledHeap();

const alive =
  mode === "raw" ? runs - ended - failures : batonRuns.filter((r) => r.state === "polling").length;
if (failures > 0 || ended > 0 || alive !== runs) {
  throw new Error(`${failures} runs failed and ${ended} ended during the round (${alive} alive)`);
}
if (windowPolls === 0) throw new Error("no poll in the window");

const cpuUs = cpu.user + cpu.system;
const result: PollRoundResult = {
  mode,
  runs,
  intervalMs,
  windowMs: elapsed,
  heapPerRunBytes: ((before.heap + after.heap) / 2 - base.heap) / (runs - half),
  rssPerRunBytes: ((before.rss + after.rss) / 2 - base.rss) / (runs - half),
  loopDelayP50Ms: histogram.percentile(50) / 1e6,
  loopDelayP99Ms: histogram.percentile(99) / 1e6,
  loopDelayMaxMs: histogram.max / 1e6,
  cpuPerPollUs: cpuUs / windowPolls,
  pollsPerSec: (windowPolls * 1000) / elapsed,
  targetPollsPerSec: (runs * 1000) / intervalMs,
  cpuLoad: cpuUs / 1000 / elapsed,
  socketsHalf: base.sockets,
  socketsAll: Math.max(before.sockets, after.sockets),
};
stopping = true;
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
