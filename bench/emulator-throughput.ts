/**
 * Emulator load benchmark (`npm run bench:emulator`, not a timed test).
 *
 * The emulator runs in a CHILD process (this file with `--serve`), so that the load generator
 * does not share its event loop; the load generator is a raw `node:http` client that only counts
 * SSE frames (it never parses JSON). Two phases:
 *
 * 1. concurrency: open N background streams at once (default 2,000, a token every 50 ms, never
 *    ending on their own) and hold them all open; reports how many were open at the same time
 *    and the event rate meanwhile, then stops the emulator.
 * 2. throughput: keep C streams (default 64) busy with `tokenDelayMs: 0` for D seconds and
 *    report events/s.
 *
 * Writes a JSON summary to bench/results/emulator.json.
 * Flags: --streams N --stream-delay-ms N --hold-ms N --concurrency C --throughput-tokens N
 * --duration-ms D
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type EmulatorOptions, startEmulator } from "../src/emulator/index.js";

const HERE = fileURLToPath(import.meta.url);
const FRAME_END = Buffer.from("\n\n");

// ---------------------------------------------------------------------------------------------
// Child: serve an emulator, print its URL, run until killed.

async function serve(optionsJson: string): Promise<void> {
  const options = JSON.parse(optionsJson) as EmulatorOptions;
  const emulator = await startEmulator(options);
  process.stdout.write(`${emulator.url}\n`);
  const stop = async (): Promise<void> => {
    await emulator.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

interface Server {
  url: URL;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function spawnEmulator(options: EmulatorOptions): Promise<Server> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", HERE, "--serve", JSON.stringify(options)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf("\n");
      if (newline >= 0) resolve(buffer.slice(0, newline));
    });
    child.once("exit", (code) => reject(new Error(`emulator exited early (${code})`)));
  });
  return {
    url: new URL(url),
    child,
    stop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Load generator: a raw HTTP client that counts frames.

const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

interface StreamStats {
  frames: number;
  opened: boolean;
  ended: boolean;
  error?: string;
}

interface Counters {
  frames: number;
  open: number;
  maxOpen: number;
}

/** Opens one background stream and counts its frames until the server closes it. */
function openStream(server: Server, counters: Counters, body: string): Promise<StreamStats> {
  const stats: StreamStats = { frames: 0, opened: false, ended: false };
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: server.url.hostname,
        port: server.url.port,
        method: "POST",
        path: `${server.url.pathname}/responses`,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        stats.opened = true;
        counters.open++;
        counters.maxOpen = Math.max(counters.maxOpen, counters.open);
        let previousEndedWithNewline = false;
        res.on("data", (chunk: Buffer) => {
          let count = 0;
          if (previousEndedWithNewline && chunk[0] === 0x0a) count++;
          let at = chunk.indexOf(FRAME_END);
          while (at !== -1) {
            count++;
            at = chunk.indexOf(FRAME_END, at + 2);
          }
          previousEndedWithNewline = chunk[chunk.length - 1] === 0x0a;
          stats.frames += count;
          counters.frames += count;
        });
        res.on("end", () => {
          stats.ended = true;
          counters.open--;
          resolve(stats);
        });
        res.on("error", (error) => {
          stats.error = error.message;
          counters.open--;
          resolve(stats);
        });
      },
    );
    req.on("error", (error) => {
      stats.error = error.message;
      resolve(stats);
    });
    req.end(body);
  });
}

function createBody(input: string): string {
  return JSON.stringify({ model: "gpt-4o-mini", input, background: true, stream: true });
}

/** Events of one completed background stream: 9 fixed events plus one per token. */
const expectedFrames = (tokens: number): number => tokens + 9;

// ---------------------------------------------------------------------------------------------
// Phases.

interface ConcurrencyResult {
  streamsRequested: number;
  tokenDelayMs: number;
  /** Most streams open at the same time. */
  maxConcurrentOpen: number;
  /** Fewest streams open at any sample during the hold. */
  minOpenDuringHold: number;
  /** Time until every stream had its response headers. */
  openAllMs: number;
  holdMs: number;
  eventsPerSecondWhileHeld: number;
  /** Streams that failed or ended before the emulator was stopped (should be 0). */
  lostEarly: number;
}

/**
 * Opens `streams` never-ending streams (a huge token budget), holds them all open for
 * `holdMs` while counting events, then stops the emulator (which cuts them).
 */
async function concurrency(
  streams: number,
  delayMs: number,
  holdMs: number,
): Promise<ConcurrencyResult> {
  const server = await spawnEmulator({ tokenDelayMs: delayMs, outputTokens: 1e9, queuedMs: 50 });
  const counters: Counters = { frames: 0, open: 0, maxOpen: 0 };
  let stopping = false;
  let lostEarly = 0;
  const started = performance.now();
  const all = Array.from({ length: streams }, (_, i) =>
    openStream(server, counters, createBody(`stream ${i}`)).then((stats) => {
      if (!stopping) lostEarly++;
      return stats;
    }),
  );
  while (counters.open < streams && performance.now() - started < 120_000) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const openAllMs = performance.now() - started;
  const holdStart = performance.now();
  const framesAtHold = counters.frames;
  let minOpen = counters.open;
  while (performance.now() - holdStart < holdMs) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    minOpen = Math.min(minOpen, counters.open);
  }
  const heldFrames = counters.frames - framesAtHold;
  const heldElapsed = performance.now() - holdStart;
  stopping = true;
  await server.stop();
  await Promise.all(all);
  return {
    streamsRequested: streams,
    tokenDelayMs: delayMs,
    maxConcurrentOpen: counters.maxOpen,
    minOpenDuringHold: minOpen,
    openAllMs: Math.round(openAllMs),
    holdMs: Math.round(heldElapsed),
    eventsPerSecondWhileHeld: Math.round((heldFrames / heldElapsed) * 1000),
    lostEarly,
  };
}

interface ThroughputResult {
  concurrency: number;
  tokensPerStream: number;
  durationMs: number;
  streamsCompleted: number;
  events: number;
  eventsPerSecond: number;
  failed: number;
  wrongFrameCount: number;
}

async function throughput(
  concurrencyLevel: number,
  tokens: number,
  durationMs: number,
): Promise<ThroughputResult> {
  // Short retention: a long run would otherwise keep every event log for 10 minutes.
  const server = await spawnEmulator({
    tokenDelayMs: 0,
    outputTokens: tokens,
    queuedMs: 0,
    retentionMs: 5_000,
    obfuscation: true,
  });
  const counters: Counters = { frames: 0, open: 0, maxOpen: 0 };
  // Warm up (JIT, sockets) before measuring.
  await Promise.all(
    Array.from({ length: concurrencyLevel }, (_, i) =>
      openStream(server, counters, createBody(`w${i}`)),
    ),
  );
  counters.frames = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  let completed = 0;
  let failed = 0;
  let wrong = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const stats = await openStream(server, counters, createBody(`t${next++}`));
      if (stats.error !== undefined || !stats.ended) failed++;
      else completed++;
      if (stats.frames !== expectedFrames(tokens)) wrong++;
    }
  };
  await Promise.all(Array.from({ length: concurrencyLevel }, worker));
  const elapsed = performance.now() - started;
  await server.stop();
  return {
    concurrency: concurrencyLevel,
    tokensPerStream: tokens,
    durationMs: Math.round(elapsed),
    streamsCompleted: completed,
    events: counters.frames,
    eventsPerSecond: Math.round((counters.frames / elapsed) * 1000),
    failed,
    wrongFrameCount: wrong,
  };
}

async function bench(): Promise<void> {
  const loadAverageAtStart = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const { values } = parseArgs({
    options: {
      streams: { type: "string", default: "2000" },
      "stream-delay-ms": { type: "string", default: "50" },
      "hold-ms": { type: "string", default: "5000" },
      concurrency: { type: "string", default: "64" },
      "throughput-tokens": { type: "string", default: "200" },
      "duration-ms": { type: "string", default: "10000" },
    },
  });
  const streams = Number(values.streams);
  const streamDelay = Number(values["stream-delay-ms"]);
  const holdMs = Number(values["hold-ms"]);

  console.log(
    `concurrency: ${streams} streams, a token every ${streamDelay} ms, held ${holdMs} ms…`,
  );
  const held = await concurrency(streams, streamDelay, holdMs);
  console.log(
    `  ${held.maxConcurrentOpen} concurrent streams open (all open after ${held.openAllMs} ms, ` +
      `never fewer than ${held.minOpenDuringHold} during the hold), ` +
      `${held.eventsPerSecondWhileHeld} events/s while held, ${held.lostEarly} lost early`,
  );

  const level = Number(values.concurrency);
  const tokens = Number(values["throughput-tokens"]);
  const duration = Number(values["duration-ms"]);
  console.log(
    `throughput: ${level} concurrent streams, ${tokens} tokens, no delay, ${duration} ms…`,
  );
  const rate = await throughput(level, tokens, duration);
  console.log(
    `  ${rate.eventsPerSecond} events/s (${rate.events} events, ${rate.streamsCompleted} streams ` +
      `in ${rate.durationMs} ms), ${rate.failed} failed, ${rate.wrongFrameCount} with a wrong frame count`,
  );

  const summary = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    memoryMb: Math.round(totalmem() / 2 ** 20),
    // Other work on the machine skews the figures; the 1-minute load average says how much.
    loadAverageAtStart,
    concurrency: held,
    throughput: rate,
    requirements: {
      eventsPerSecond: {
        required: 20_000,
        measured: rate.eventsPerSecond,
        met: rate.eventsPerSecond >= 20_000,
      },
      concurrentStreams: {
        required: 2_000,
        measured: held.minOpenDuringHold,
        met: held.minOpenDuringHold >= 2_000 && held.lostEarly === 0,
      },
    },
  };
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}emulator.json`, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`summary written to bench/results/emulator.json`);
  agent.destroy();
}

const serveIndex = process.argv.indexOf("--serve");
if (serveIndex >= 0) await serve(process.argv[serveIndex + 1] ?? "{}");
else await bench();
