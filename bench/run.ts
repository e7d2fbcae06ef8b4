/**
 * `npm run bench`: what baton costs over a hand-written loop on the raw `openai` SDK, side by
 * side in one run. baton is measured as it ships: the build (`dist/`, which `npm run bench`
 * rebuilds first), imported by its package name; not `src/` through tsx, whose keepNames
 * transform defines a `name` on every closure baton creates (a hidden class and ~300 bytes per
 * run, and CPU per poll, that no user pays). Every figure is a ratio against a baseline measured in the same run, median
 * over interleaved rounds (the machine is shared and noisy). The emulator always runs in a child
 * process of its own, and each polling round in a fresh worker process.
 *
 * 1. Streaming: text events per second through `startRun(host, { stream: true })` vs the raw SDK stream
 *    (live from the create call; and, as a purely client-bound check, a replay of a finished
 *    response).
 * 2. Polling at scale: heap per run, event-loop delay p99 and CPU per poll, 1,000 and 10,000
 *    concurrent runs, vs a raw polling loop.
 * 3. Checkpoints: save / load / rehydrate cost per store; streaming throughput with saving.
 * 4. Resume latency: `rehydrateRun` to the first resumed delta vs the raw resumed stream.
 *
 *   npm run bench                # full; writes bench/results/latest.json and latest.md
 *   npm run bench -- --quick     # tiny sizes, seconds; writes bench/results/quick.json and quick.md
 *   npm run bench -- --only streaming,polling,checkpoints,resume
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FileRunStore, MemoryRunStore, type RunStore } from "baton";
import OpenAI from "openai";
import { killChildren, ROOT, runWorker, spawnEmulator } from "./overhead/children.js";
import {
  batonResume,
  detachedRun,
  type RawCursorCosts,
  rawCursorOpCosts,
  rawResume,
  type StoreOpCosts,
  storeOpCosts,
} from "./overhead/persistence.js";
import type { PollMode, PollRoundResult } from "./overhead/poll-worker.js";
import { type Figure, type Report, toMarkdown } from "./overhead/report.js";
import { check, interleave, median, now, round } from "./overhead/stats.js";
import {
  batonReplay,
  batonStream,
  CountingStore,
  portStream,
  rawReplay,
  rawStream,
  type StreamPass,
} from "./overhead/streaming.js";

const SECTIONS = ["streaming", "polling", "checkpoints", "resume"] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    rounds: { type: "string" },
  },
});
const quick = values.quick === true;
const only = new Set<Section>(
  values.only ? (values.only.split(",").map((s) => s.trim()) as Section[]) : SECTIONS,
);
for (const name of only) {
  if (!SECTIONS.includes(name)) throw new Error(`--only: unknown section '${name}'`);
}

/** Sizes: the full run, and the quick one that only keeps the harness working. */
const CONFIG = quick
  ? {
      streamDeltas: 300,
      streamRounds: 2,
      storeOps: 20,
      storeRounds: 1,
      resumeRounds: 2,
      resumeOutputTokens: 200,
      resumeAfterDeltas: 20,
      polling: [{ runs: 20, intervalMs: 200, warmupMs: 200, windowMs: 600 }],
      pollRounds: 1,
    }
  : {
      // Long enough that a pass of the fastest variant lasts ~0.2 s (timer noise stays small).
      streamDeltas: 50_000,
      streamRounds: 41,
      storeOps: 500,
      storeRounds: 3,
      resumeRounds: 41,
      resumeOutputTokens: 2_000,
      resumeAfterDeltas: 100,
      // Both scales ask for the same 1,000 polls/s: 10,000 runs polling every second would be
      // 10,000 requests/s, more than this 2-core machine serves (emulator and client together).
      polling: [
        { runs: 1_000, intervalMs: 1_000, warmupMs: 2_000, windowMs: 5_000 },
        { runs: 10_000, intervalMs: 10_000, warmupMs: 10_000, windowMs: 10_000 },
      ],
      pollRounds: 3,
    };
if (values.rounds) {
  const rounds = Number(values.rounds);
  CONFIG.streamRounds = rounds;
  CONFIG.resumeRounds = rounds;
  CONFIG.pollRounds = rounds;
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const figures: Figure[] = [];
const details: Record<string, unknown> = {};
const started = now();
const loadAverageAtStart = os.loadavg().map((l) => round(l, 2));

/** Median of per-round ratios `a[i] / b[i]` (rounds are paired: same round, same drift). */
function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((value, i) => value / (b[i] as number)));
}

/** Text events per second (a baton pass carries the same events as the raw one, fewer pieces). */
const rate = (pass: StreamPass): number => (pass.events * 1000) / pass.ms;

/*
 * No forced GC before a streaming pass: a full collection kills the hidden classes the JIT's
 * optimized code holds weakly, and every variant then runs deoptimized for a while (on this
 * machine the raw loop went from ~11 to ~17 µs per event, baton's run from ~3.3 to ~5). The
 * garbage of one pass is collected during a later one; the order of variants rotates every
 * round, so each gets its share.
 */

// --- 1 + 3b: streaming, with and without checkpoints ------------------------------------------

async function streamingSection(): Promise<void> {
  const emulator = await spawnEmulator({
    tokenDelayMs: 0,
    outputTokens: CONFIG.streamDeltas,
    queuedMs: 0,
  });
  const client = new OpenAI({ baseURL: emulator.url, apiKey: "bench", maxRetries: 0 });
  const directory = await mkdtemp(join(os.tmpdir(), "baton-bench-"));
  try {
    const input = "bench stream";
    // Warm-up (JIT, connections) and the reference text.
    const reference = await rawStream(client, input);
    check(reference.events === CONFIG.streamDeltas, `raw stream had ${reference.events} deltas`);
    const events = reference.events;
    await batonStream(client, input, events);
    const memory = new CountingStore(new MemoryRunStore());
    const file = new CountingStore(new FileRunStore(directory));
    const passes: Record<string, StreamPass[]> = {
      raw: [],
      rawAgain: [],
      port: [],
      baton: [],
      memory: [],
      file: [],
    };
    const timed = (name: string, pass: () => Promise<StreamPass>) => async () => {
      const result = await pass();
      // The emulator keeps every event of a response for replays: delete each one after its
      // pass, or the emulator's heap (and its pauses) grows round after round.
      await client.responses.delete(result.responseId);
      check(result.text === reference.text, `${name}: the text differs from the raw stream's`);
      passes[name]?.push(result);
      return rate(result);
    };
    log(`streaming: ${CONFIG.streamRounds} rounds of ${CONFIG.streamDeltas} deltas`);
    const samples = await interleave(
      CONFIG.streamRounds,
      {
        raw: timed("raw", () => rawStream(client, input)),
        // The same raw loop again, as a variant of its own: how far apart two identical
        // variants land in this run (the noise floor every other ratio lives with).
        rawAgain: timed("rawAgain", () => rawStream(client, input)),
        // baton's client port alone (its own SSE reader, no machine): what the machine costs.
        port: timed("port", () => portStream(client, input)),
        baton: timed("baton", () => batonStream(client, input, events)),
        memory: timed("memory", () => batonStream(client, input, events, { store: memory })),
        file: timed("file", () => batonStream(client, input, events, { store: file })),
      },
      (i, s) =>
        log(
          `  round ${i + 1}: raw ${s.raw.toFixed(0)}/s, raw again ${s.rawAgain.toFixed(0)}/s, ` +
            `port ${s.port.toFixed(0)}/s, baton ${s.baton.toFixed(0)}/s, ` +
            `+memory store ${s.memory.toFixed(0)}/s, +file store ${s.file.toFixed(0)}/s`,
        ),
    );
    const rawCpuShare = median((passes.raw ?? []).map((p) => p.cpuMs / p.ms));
    const batonCpuShare = median((passes.baton ?? []).map((p) => p.cpuMs / p.ms));
    const cpuPerDelta = (list: StreamPass[] | undefined) =>
      median((list ?? []).map((p) => (p.cpuMs * 1000) / p.events));
    figures.push({
      name: `Streaming, live (${CONFIG.streamDeltas.toLocaleString("en-US")} deltas)`,
      unit: "text events/s",
      baseline: median(samples.raw),
      baton: median(samples.baton),
      ratioOf: "baton / raw",
      ratio: pairedRatio(samples.baton, samples.raw),
      goal: ">= 0.95",
      met: pairedRatio(samples.baton, samples.raw) >= 0.95,
      note:
        `client CPU per text event: raw ${cpuPerDelta(passes.raw).toFixed(1)} µs, baton ` +
        `${cpuPerDelta(passes.baton).toFixed(1)} µs; share of wall time on CPU: raw ` +
        `${rawCpuShare.toFixed(2)}, baton ${batonCpuShare.toFixed(2)}; baton handed the ` +
        `${CONFIG.streamDeltas} text events over in ${median((passes.baton ?? []).map((p) => p.pieces))} ` +
        "pieces (median; one per batch of events received by the time the event loop comes round)",
    });
    figures.push({
      name: "Streaming, live: the raw loop against itself (noise floor)",
      unit: "text events/s",
      baseline: median(samples.raw),
      baton: median(samples.rawAgain),
      ratioOf: "raw again / raw",
      ratio: pairedRatio(samples.rawAgain, samples.raw),
      note: "two identical variants of the same run: their ratio shows how far noise alone moves a ratio here",
    });
    figures.push({
      name: "Streaming, live: the run machine over baton's own stream reading",
      unit: "text events/s",
      baseline: median(samples.port),
      baton: median(samples.baton),
      ratioOf: "baton / port",
      ratio: pairedRatio(samples.baton, samples.port),
      note:
        "port: openAIResponsesClient(client).createStream() iterated by hand, the same SSE reader " +
        `baton uses, no run machine (client CPU per text event ${cpuPerDelta(passes.port).toFixed(1)} µs); ` +
        "the ratio is what the machine (batches, cursor, deltas, result) costs",
    });
    figures.push({
      name: "Streaming, live: client CPU per text event",
      unit: "µs",
      baseline: cpuPerDelta(passes.raw),
      baton: cpuPerDelta(passes.baton),
      ratioOf: "baton / raw",
      ratio: pairedRatio(
        (passes.baton ?? []).map((p) => p.cpuMs / p.events),
        (passes.raw ?? []).map((p) => p.cpuMs / p.events),
      ),
      note: "process.cpuUsage() over the pass: less sensitive to other processes than wall time",
    });
    const perRun = (store: CountingStore) => store.saves / (CONFIG.streamRounds + 0);
    for (const [name, store] of [
      ["MemoryRunStore", memory],
      ["FileRunStore", file],
    ] as const) {
      const key = name === "MemoryRunStore" ? "memory" : "file";
      const ratio = pairedRatio(samples[key], samples.baton);
      figures.push({
        name: `Streaming with checkpoints (${name}, default throttle)`,
        unit: "text events/s",
        baseline: median(samples.baton),
        baton: median(samples[key]),
        ratioOf: "saving / no saving",
        ratio,
        goal: ">= 0.95",
        met: ratio >= 0.95,
        note:
          `${perRun(store).toFixed(0)} saves per run of ${CONFIG.streamDeltas} deltas; rates ` +
          "run to the end of the text, the wait for the last save is the next figure",
      });
      const tail = (list: StreamPass[] | undefined) =>
        (list ?? []).map((pass) => pass.totalMs - pass.ms);
      figures.push({
        name: `Streaming with checkpoints (${name}): from the end of the text to the result`,
        unit: "ms",
        baseline: median(tail(passes.baton)),
        baton: median(tail(passes[key])),
        ratioOf: "saving / no saving",
        ratio: median(tail(passes[key])) / median(tail(passes.baton)),
        note:
          "result() resolves once the run's last save (state done) is written, behind any save " +
          "still in flight: durability's latency, paid once per run",
      });
    }
    details.streaming = {
      deltasPerStream: CONFIG.streamDeltas,
      rounds: CONFIG.streamRounds,
      deltasPerSecond: samples,
      clientCpuShare: { raw: rawCpuShare, baton: batonCpuShare },
      clientCpuPerDeltaUs: {
        raw: cpuPerDelta(passes.raw),
        port: cpuPerDelta(passes.port),
        baton: cpuPerDelta(passes.baton),
        memory: cpuPerDelta(passes.memory),
        file: cpuPerDelta(passes.file),
      },
      savesPerRun: { memory: perRun(memory), file: perRun(file) },
    };

    // Replay of the finished reference response: no generation on the other side, so the
    // client is the bottleneck whatever the emulator's speed.
    const replayPasses: Record<string, StreamPass[]> = { raw: [], baton: [] };
    const replayed = (name: string, pass: () => Promise<StreamPass>) => async () => {
      const result = await pass();
      check(result.text === reference.text, `${name} replay: the text differs from the raw one`);
      replayPasses[name]?.push(result);
      return rate(result);
    };
    await batonReplay(client, reference.responseId, events);
    log(`streaming replay: ${CONFIG.streamRounds} rounds`);
    const replay = await interleave(
      CONFIG.streamRounds,
      {
        raw: replayed("raw", () => rawReplay(client, reference.responseId)),
        baton: replayed("baton", () => batonReplay(client, reference.responseId, events)),
      },
      (i, s) => log(`  round ${i + 1}: raw ${s.raw.toFixed(0)}/s, baton ${s.baton.toFixed(0)}/s`),
    );
    figures.push({
      name: "Streaming, replay of a finished response (client-bound)",
      unit: "text events/s",
      baseline: median(replay.raw),
      baton: median(replay.baton),
      ratioOf: "baton / raw",
      ratio: pairedRatio(replay.baton, replay.raw),
      note:
        `client CPU per text event: raw ${cpuPerDelta(replayPasses.raw).toFixed(1)} µs, baton ` +
        `${cpuPerDelta(replayPasses.baton).toFixed(1)} µs`,
    });
    figures.push({
      name: "Streaming, replay: client CPU per text event",
      unit: "µs",
      baseline: cpuPerDelta(replayPasses.raw),
      baton: cpuPerDelta(replayPasses.baton),
      ratioOf: "baton / raw",
      ratio: pairedRatio(
        (replayPasses.baton ?? []).map((p) => p.cpuMs / p.events),
        (replayPasses.raw ?? []).map((p) => p.cpuMs / p.events),
      ),
    });
    details.streamingReplay = {
      deltasPerSecond: replay,
      clientCpuPerDeltaUs: {
        raw: cpuPerDelta(replayPasses.raw),
        baton: cpuPerDelta(replayPasses.baton),
      },
    };
  } finally {
    await emulator.stop();
    await rm(directory, { recursive: true, force: true });
  }
}

// --- 3a + 4: checkpoint op costs, resume latency ----------------------------------------------

async function persistenceSections(): Promise<void> {
  const emulator = await spawnEmulator({
    tokenDelayMs: 0,
    outputTokens: CONFIG.resumeOutputTokens,
    queuedMs: 0,
  });
  const client = new OpenAI({ baseURL: emulator.url, apiKey: "bench", maxRetries: 0 });
  const directory = await mkdtemp(join(os.tmpdir(), "baton-bench-"));
  try {
    const stores = { memory: new MemoryRunStore(), file: new FileRunStore(directory) };
    if (only.has("checkpoints")) {
      const costs: Record<string, { baton: StoreOpCosts; raw: RawCursorCosts }> = {};
      for (const [kind, store] of Object.entries(stores) as ["memory" | "file", RunStore][]) {
        const detached = await detachedRun(
          client,
          store,
          CONFIG.resumeOutputTokens,
          CONFIG.resumeAfterDeltas,
        );
        const ops =
          kind === "file" ? Math.max(10, Math.round(CONFIG.storeOps / 5)) : CONFIG.storeOps;
        // Interleaved rounds (baton, raw, baton, raw, ...); the median of each.
        const batonRounds: StoreOpCosts[] = [];
        const rawRounds: RawCursorCosts[] = [];
        for (let i = 0; i < CONFIG.storeRounds; i++) {
          batonRounds.push(await storeOpCosts(store, detached, ops));
          rawRounds.push(await rawCursorOpCosts(kind, directory, detached, ops));
        }
        const pick = <T>(list: T[], key: keyof T) => median(list.map((r) => r[key] as number));
        const baton: StoreOpCosts = {
          saveUs: pick(batonRounds, "saveUs"),
          saveBlockingUs: pick(batonRounds, "saveBlockingUs"),
          loadUs: pick(batonRounds, "loadUs"),
          rehydrateUs: pick(batonRounds, "rehydrateUs"),
          machineUs: pick(batonRounds, "machineUs"),
          saveBytes: pick(batonRounds, "saveBytes"),
        };
        const raw: RawCursorCosts = {
          saveUs: pick(rawRounds, "saveUs"),
          saveBlockingUs: pick(rawRounds, "saveBlockingUs"),
          loadUs: pick(rawRounds, "loadUs"),
        };
        costs[kind] = { baton, raw };
        log(
          `checkpoints, ${kind} store: baton ${JSON.stringify(baton)} raw ${JSON.stringify(raw)}`,
        );
        const storeName = kind === "memory" ? "MemoryRunStore" : "FileRunStore";
        figures.push({
          name: `Checkpoint save, one op (${storeName})`,
          unit: "µs",
          baseline: raw.saveUs,
          baton: baton.saveUs,
          ratioOf: "baton / raw cursor save",
          ratio: baton.saveUs / raw.saveUs,
          note:
            `${baton.saveBytes} bytes per save (the raw baseline saves {responseId, ` +
            `sequenceNumber} alone${kind === "file" ? ", temp file + fsync + rename, async" : ""}); ` +
            `event loop blocked per save: baton ${baton.saveBlockingUs.toFixed(1)} µs, raw ` +
            `${raw.saveBlockingUs.toFixed(1)} µs`,
        });
        figures.push({
          name: `Checkpoint rehydrate, one op (${storeName})`,
          unit: "µs",
          baseline: raw.loadUs,
          baton: baton.rehydrateUs,
          ratioOf: "baton / raw cursor load",
          ratio: baton.rehydrateUs / raw.loadUs,
          note:
            `rehydrateRun({ runId, store }) up to the resume call; of it, store.load ` +
            `${baton.loadUs.toFixed(1)} µs and building the run machine (createRunMachine) ` +
            `${baton.machineUs.toFixed(1)} µs`,
        });
      }
      details.checkpointOps = costs;
    }
    if (only.has("resume")) {
      const store = stores.memory;
      const detached = await detachedRun(
        client,
        store,
        CONFIG.resumeOutputTokens,
        CONFIG.resumeAfterDeltas,
      );
      await rawResume(client, detached);
      await batonResume(client, store, detached);
      log(`resume latency: ${CONFIG.resumeRounds} rounds`);
      const samples = await interleave(
        CONFIG.resumeRounds,
        {
          raw: () => rawResume(client, detached),
          baton: () => batonResume(client, store, detached),
        },
        (i, s) =>
          log(`  round ${i + 1}: raw ${s.raw.toFixed(2)} ms, baton ${s.baton.toFixed(2)} ms`),
      );
      const extra = median(samples.baton.map((b, i) => b - (samples.raw[i] as number)));
      figures.push({
        name: "Resume latency to the first delta (MemoryRunStore)",
        unit: "ms",
        baseline: median(samples.raw),
        baton: median(samples.baton),
        ratioOf: "baton / raw",
        ratio: pairedRatio(samples.baton, samples.raw),
        note: `baton adds ${extra.toFixed(2)} ms (median of paired differences)`,
      });
      details.resume = { ms: samples, extraMs: extra, cursor: detached.sequenceNumber };
    }
  } finally {
    await emulator.stop();
    await rm(directory, { recursive: true, force: true });
  }
}

// --- 2: polling at scale ----------------------------------------------------------------------

async function pollingSection(): Promise<void> {
  const modes: PollMode[] = ["raw", "baton"];
  const all: Record<string, unknown>[] = [];
  for (const scale of CONFIG.polling) {
    log(
      `polling: ${scale.runs} runs every ${scale.intervalMs} ms, ${CONFIG.pollRounds} rounds ` +
        `(modes ${modes.join(", ")})`,
    );
    const results: Record<PollMode, PollRoundResult[]> = { raw: [], baton: [] };
    const pollEmulator = () =>
      spawnEmulator({ tokenDelayMs: 15, outputTokens: 40, queuedMs: 3_600_000 });
    // Quick mode shares one emulator (seconds count); a full run starts a fresh one per round,
    // so that the responses of earlier rounds never slow the next one.
    const shared = quick ? await pollEmulator() : undefined;
    const variant = (mode: PollMode) => async () => {
      const emulator = shared ?? (await pollEmulator());
      try {
        const result = await runWorker<PollRoundResult>(
          "bench/overhead/poll-worker.ts",
          [
            "--mode",
            mode,
            "--runs",
            String(scale.runs),
            "--interval-ms",
            String(scale.intervalMs),
            "--warmup-ms",
            String(scale.warmupMs),
            "--window-ms",
            String(scale.windowMs),
            "--url",
            emulator.url,
          ],
          ["--expose-gc", "--max-old-space-size=8192"],
        );
        results[mode].push(result);
        log(
          `  ${mode}: heap/run ${(result.heapPerRunBytes / 1024).toFixed(1)} KiB ` +
            `(held polls left in: ${(result.heapPerRunAsSampledBytes / 1024).toFixed(1)}, ` +
            `held ${result.heldPollsHalf.toFixed(0)} -> ${result.heldPollsAll.toFixed(0)}, ` +
            `sockets ${result.socketsHalf.toFixed(0)} -> ${result.socketsAll.toFixed(0)}), ` +
            `loop p99 ${result.loopDelayP99Ms.toFixed(1)} ms, CPU/poll ${result.cpuPerPollUs.toFixed(0)} µs, ` +
            `${result.pollsPerSec.toFixed(0)}/${result.targetPollsPerSec.toFixed(0)} polls/s`,
        );
        return result.heapPerRunBytes;
      } finally {
        if (!shared) await emulator.stop();
      }
    };
    await interleave(CONFIG.pollRounds, {
      raw: variant("raw"),
      baton: variant("baton"),
    });
    await shared?.stop();
    const series = (mode: PollMode, key: keyof PollRoundResult) =>
      results[mode].map((r) => r[key] as number);
    const paired = (mode: PollMode, key: keyof PollRoundResult, op: "diff" | "ratio") =>
      median(
        series(mode, key).map((value, i) => {
          const base = series("raw", key)[i] as number;
          return op === "diff" ? value - base : value / base;
        }),
      );
    const label = `${scale.runs.toLocaleString("en-US")} runs, poll every ${scale.intervalMs / 1000} s`;
    const heapExtra = paired("baton", "heapPerRunBytes", "diff");
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
    const both = (key: keyof PollRoundResult, format: (value: number) => string) =>
      `raw ${format(median(series("raw", key)))}, baton ${format(median(series("baton", key)))}`;
    const count = (value: number) => value.toFixed(0);
    const heapNote =
      `baton adds ${kib(heapExtra)} per run (median of paired differences); heap read with no ` +
      "request in flight, less the polls held back meanwhile (median held with all runs: " +
      `${both("heldPollsAll", count)}; one held poll: ${both("bytesPerHeldPoll", kib)}); ` +
      `held polls left in: ${both("heapPerRunAsSampledBytes", kib)}, baton adds ` +
      `${kib(paired("baton", "heapPerRunAsSampledBytes", "diff"))}; idle connection pool with ` +
      `all runs (open sockets): ${both("socketsAll", count)}`;
    figures.push({
      name: `Polling ${label}: heap per run`,
      unit: "KiB",
      baseline: median(series("raw", "heapPerRunBytes")) / 1024,
      baton: median(series("baton", "heapPerRunBytes")) / 1024,
      ratioOf: "baton / raw",
      ratio: paired("baton", "heapPerRunBytes", "ratio"),
      goal: "baton - raw < 8 KiB",
      goalValue: heapExtra / 1024,
      met: heapExtra < 8 * 1024,
      note: heapNote,
    });
    figures.push({
      name: `Polling ${label}: event-loop delay p99`,
      unit: "ms",
      baseline: median(series("raw", "loopDelayP99Ms")),
      baton: median(series("baton", "loopDelayP99Ms")),
      ratioOf: "baton / raw",
      ratio: paired("baton", "loopDelayP99Ms", "ratio"),
    });
    figures.push({
      name: `Polling ${label}: CPU per poll`,
      unit: "µs",
      baseline: median(series("raw", "cpuPerPollUs")),
      baton: median(series("baton", "cpuPerPollUs")),
      ratioOf: "baton / raw",
      ratio: paired("baton", "cpuPerPollUs", "ratio"),
      note:
        `polls/s reached (asked ${(scale.runs * 1000) / scale.intervalMs}): raw ` +
        `${median(series("raw", "pollsPerSec")).toFixed(0)}, baton ` +
        `${median(series("baton", "pollsPerSec")).toFixed(0)}`,
    });
    all.push({ ...scale, rounds: results });
  }
  details.polling = all;
}

// --- the run ----------------------------------------------------------------------------------

let failed = false;
try {
  if (only.has("streaming")) await streamingSection();
  if (only.has("checkpoints") || only.has("resume")) await persistenceSections();
  if (only.has("polling")) await pollingSection();
} catch (err) {
  failed = true;
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
}
killChildren();

if (!failed) {
  const cpus = os.cpus();
  const report: Report = {
    date: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    durationS: round((now() - started) / 1000, 1),
    machine: {
      cpu: cpus[0]?.model.trim() ?? "unknown",
      cores: cpus.length,
      node: process.version,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      loadAverageAtStart,
      loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
    },
    config: CONFIG,
    figures: figures.map((f) => ({
      ...f,
      baseline: round(f.baseline),
      baton: round(f.baton),
      ratio: round(f.ratio),
    })),
    goals: figures
      .filter((f) => f.goal !== undefined && f.met !== undefined)
      .map((f) => ({
        name: f.name,
        goal: f.goal as string,
        value: round(f.goalValue ?? f.ratio),
        met: f.met as boolean,
      })),
    details,
  };
  const name = quick ? "quick" : values.only ? "partial" : "latest";
  const json = join(ROOT, "bench", "results", `${name}.json`);
  const md = join(ROOT, "bench", "results", `${name}.md`);
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(md, toMarkdown(report));
  process.stdout.write(toMarkdown(report));
  log(`wrote ${json} and ${md}`);
}
process.exit(failed ? 1 : 0);
