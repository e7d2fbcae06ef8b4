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
import { readdirSync, readlinkSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { type Run, startRun } from "baton";
import OpenAI from "openai";
import { median, now, sleep } from "./stats.js";

/** `raw`: the hand-written SDK loop. `baton`: `startRun`. */
export type PollMode = "raw" | "baton";

export interface PollRoundResult {
  mode: PollMode;
  runs: number;
  intervalMs: number;
  windowMs: number;
  /**
   * Heap growth per live run, after full collections with no request in flight (bytes): from
   * half the runs polling to all of them, over the half added; less the polls held back while
   * the sample was taken (see `heapSample`).
   */
  heapPerRunBytes: number;
  /** The same with the held polls left in. */
  heapPerRunAsSampledBytes: number;
  /** What one poll held back at the fetch adds to the heap (median over the round's samples). */
  bytesPerHeldPoll: number;
  /** Polls held back during a sample (median), with half the runs and with all of them. */
  heldPollsHalf: number;
  heldPollsAll: number;
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
  /** Open sockets, the idle connection pool (median), with half the runs and with all. */
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

/**
 * Every request of both variants goes through this wrapper: it counts polls and requests in
 * flight, and holds new requests back while a heap sample is taken (see {@link heapSample}).
 */
let polls = 0;
let failures = 0;
let inFlight = 0;
/** While a sample is taken: when the hold began, and the requests held back (with when). */
let hold: { since: number; waiting: { at: number; go: () => void }[] } | null = null;
const countingFetch: typeof fetch = async (input, init) => {
  // A request let go while the next sample's hold has begun waits in that one too.
  while (hold) {
    const { since, waiting } = hold;
    await new Promise<void>((go) => waiting.push({ at: now() - since, go }));
  }
  if ((init?.method ?? "GET") === "GET") polls++;
  inFlight++;
  try {
    // Until the headers are in: the emulator's small JSON body comes with them, and the
    // SDK has parsed it a few turns later (the sample's collections come after that).
    return await fetch(input, init);
  } finally {
    inFlight--;
  }
};

// The SDK's default retries (2) serve the raw loop as they would a hand-written one; baton
// sets `maxRetries: 0` on each of its calls and retries in its machine.
const client = new OpenAI({ baseURL: url, apiKey: "bench", fetch: countingFetch });
const MODEL = "o3";
const ACTIVE = new Set(["queued", "in_progress"]);

/** Requests held back so far in the current sample. */
function heldCount(): number {
  return hold?.waiting.length ?? 0;
}

/**
 * Lets the held requests go, each as long after now as it came after the hold began: the
 * traffic keeps its shape, shifted by the hold, instead of leaving as one burst of hundreds
 * of requests (new connections, a stalled event loop) that the next figures would measure.
 * Resolves once the last one has gone.
 */
function releaseHold(): Promise<void> {
  const waiting = hold?.waiting ?? [];
  hold = null;
  let last = 0;
  for (const { at, go } of waiting) {
    setTimeout(go, at);
    last = Math.max(last, at);
  }
  return sleep(last + 1);
}

/**
 * Open sockets of the process, idle ones included (undici unrefs an idle keep-alive socket, so
 * `process._getActiveHandles()` misses it): the HTTP connection pool, which grows to the most
 * requests ever in flight at once and holds heap per connection (the count also takes in the
 * worker's few stdio pipes). Linux: `/proc/self/fd`; elsewhere, the sockets that are in use.
 */
function openSockets(): number {
  try {
    return readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:");
      } catch {
        return false; // closed meanwhile (the directory's own fd)
      }
    }).length;
  } catch {
    const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
    return handles.filter((handle) => handle.constructor.name === "Socket").length;
  }
}

/**
 * The heap after a full collection. Objects registered with a FinalizationRegistry (undici's
 * fetch registers every request's controller and response) are only released by cleanup
 * callbacks that run as tasks after a collection: give them a turn, then collect again, or
 * the heap counts every request of the last moments (it grows with the poll rate, not the runs).
 */
async function heapAfterGc(): Promise<{ heap: number; rss: number; held: number }> {
  gc?.();
  await sleep(20);
  gc?.();
  await sleep(20);
  gc?.();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, rss: usage.rss, held: heldCount() };
}

/** One heap sample: two readings with no request in flight, apart by more requests held. */
interface HeapSample {
  heap: number;
  rss: number;
  /** Requests held back at the first reading, and at the second. */
  held: number;
  heldLater: number;
  heapLater: number;
  /** Open sockets at the first reading (no request in flight: the idle connection pool). */
  sockets: number;
}

/**
 * A sample of what the runs hold, with no request in flight: new requests are held back at
 * the fetch, the requests in flight finish, the heap is read after full collections, and read
 * again 300 ms later. Polls that come due meanwhile are held with whatever their caller built
 * for them (the SDK's request; for baton also the poll's child actor): as many as came due
 * while the collections blocked the event loop, which is longer the bigger the heap (150-270
 * ms per collection for baton at 10,000 runs). The two readings give what one held poll
 * costs (6.0-6.5 KiB in the raw loop, 10.2-10.8 KiB in baton), so that {@link heapWithoutHeld}
 * can take them out: left in, the figure grows with the duration of its own collections, not
 * with the runs (at 10,000 runs, baton's samples hold ~80 polls with half the runs and 200-500
 * with all of them; before requests were held, that many more were in flight when read).
 */
async function heapSample(): Promise<HeapSample> {
  hold = { since: now(), waiting: [] };
  try {
    const drainDeadline = now() + 10_000;
    while (inFlight > 0) {
      if (now() > drainDeadline) throw new Error(`${inFlight} requests still in flight after 10 s`);
      await sleep(2);
    }
    const first = await heapAfterGc();
    const sockets = openSockets();
    await sleep(300);
    const later = await heapAfterGc();
    return {
      heap: first.heap,
      rss: first.rss,
      held: first.held,
      heldLater: later.held,
      heapLater: later.heap,
      sockets,
    };
  } finally {
    released = releaseHold();
  }
}

/** Resolves once the requests held by the last sample have all gone. */
let released: Promise<void> = Promise.resolve();

/**
 * Three samples, each a second after the requests the one before held have gone (so that
 * one sample's hold does not lengthen the next one's).
 */
async function heapSamples(): Promise<HeapSample[]> {
  const samples: HeapSample[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await settle();
    samples.push(await heapSample());
  }
  return samples;
}

/** Until the held requests have gone, and a second more. */
async function settle(): Promise<void> {
  await released;
  await sleep(1_000);
}

/** Bytes one held poll adds to the heap: the median slope over every sample of the round. */
function bytesPerHeldPoll(samples: readonly HeapSample[]): number {
  const slopes = samples
    .filter((s) => s.heldLater - s.held >= 20)
    .map((s) => (s.heapLater - s.heap) / (s.heldLater - s.held));
  return slopes.length > 0 ? median(slopes) : 0;
}

/** The median over samples of the heap at the first reading, less its held polls. */
function heapWithoutHeld(samples: readonly HeapSample[], perHeld: number): number {
  return median(samples.map((s) => s.heap - s.held * perHeld));
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
  return startRun(
    { client },
    { model: MODEL, input: `poll ${i}` },
    { options: { pollIntervalMs: intervalMs } },
  );
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
const base = await heapSamples();
await settle();
await startRuns(half, runs);
await sleep(warmupMs);

const before = await heapSamples();
await settle();
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
const after = await heapSamples();

const alive =
  mode === "raw" ? runs - ended - failures : batonRuns.filter((r) => r.state === "polling").length;
if (failures > 0 || ended > 0 || alive !== runs) {
  throw new Error(`${failures} runs failed and ${ended} ended during the round (${alive} alive)`);
}
if (windowPolls === 0) throw new Error("no poll in the window");

const perHeld = bytesPerHeldPoll([...base, ...before, ...after]);
/** Marginal bytes per run from half the runs to all of them, of a figure of the samples. */
const perRun = (figure: (samples: readonly HeapSample[]) => number) =>
  ((figure(before) + figure(after)) / 2 - figure(base)) / (runs - half);
const cpuUs = cpu.user + cpu.system;
const result: PollRoundResult = {
  mode,
  runs,
  intervalMs,
  windowMs: elapsed,
  heapPerRunBytes: perRun((samples) => heapWithoutHeld(samples, perHeld)),
  heapPerRunAsSampledBytes: perRun((samples) => median(samples.map((s) => s.heap))),
  bytesPerHeldPoll: perHeld,
  heldPollsHalf: median(base.map((s) => s.held)),
  heldPollsAll: median([...before, ...after].map((s) => s.held)),
  rssPerRunBytes: perRun((samples) => median(samples.map((s) => s.rss))),
  loopDelayP50Ms: histogram.percentile(50) / 1e6,
  loopDelayP99Ms: histogram.percentile(99) / 1e6,
  loopDelayMaxMs: histogram.max / 1e6,
  cpuPerPollUs: cpuUs / windowPolls,
  pollsPerSec: (windowPolls * 1000) / elapsed,
  targetPollsPerSec: (runs * 1000) / intervalMs,
  cpuLoad: cpuUs / 1000 / elapsed,
  socketsHalf: median(base.map((s) => s.sockets)),
  socketsAll: median([...before, ...after].map((s) => s.sockets)),
};
if (process.env.BATON_BENCH_DEBUG) {
  for (const s of [...base, ...before, ...after]) process.stderr.write(`${JSON.stringify(s)}\n`);
}
stopping = true;
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
