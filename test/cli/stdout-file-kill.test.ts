/**
 * Issue 12.1, stdout a regular file: `baton run --stream … >> out.txt` killed with SIGKILL while
 * tokens come every 1-2 ms, then `baton resume RUN >> out.txt`: the file holds the final text
 * exactly, and the response was created once. Strict: any loss or repetition fails.
 *
 * `baton run` notes the file's identity and where the answer starts in it; `baton resume` to the
 * same file takes what the file holds as what was printed. Most kills are aimed at the moment a
 * save is put in effect (the test spins on the run file's inode and kills the moment the rename
 * replaces it, before the batch that save covers can be printed): without the file as the truth,
 * such a kill loses a batch (under strace, which holds each rename 3 ms, 4 of 4 aimed kills did
 * before the fix). The rest are anywhere. fast-check draws the moments
 * (`KILL_SEED=<seed>` replays them); `SOAK_RUNS` sets the number of kills (default 12).
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { type Baton, baton, emulatorFor, tempDir } from "./cli-harness.js";

/** strace, when installed: it holds each rename's return for a while (see killInRename). */
const STRACE = ["/usr/bin/strace", "/bin/strace"].find((path) => existsSync(path));

/**
 * `baton <args>` with its stdout the file opened as `fd` (as `>> out.txt` does). `slowRenames`:
 * under strace, every rename held 3 ms after it took effect, before it returns.
 */
function batonTo(args: readonly string[], fd: number, slowRenames = false): Baton {
  const renames = "rename,renameat,renameat2";
  const prefix =
    slowRenames && STRACE
      ? [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", `trace=${renames}`].concat([
          "-e",
          `inject=${renames}:delay_exit=3000`,
        ])
      : [];
  return baton(args, { stdout: fd, prefix });
}

function alive(child: Baton["child"]): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Waits (in steps of 1 ms) until `check` holds or the child ended. */
async function until(check: () => boolean, child: Baton["child"]): Promise<void> {
  while (alive(child) && !check()) await sleep(1);
}

/**
 * SIGKILLs `pid` between the rename that puts a save in effect and the write of the batch that
 * save covers: the window stdout cannot close by ordering alone. A worker thread (the emulator
 * lives in this thread's event loop and must go on meanwhile) spins on the run file's inode and
 * kills the moment the rename replaces it. That window lasts microseconds; under strace (when
 * installed) each rename is held 3 ms before it returns, and the kill lands inside it.
 */
function killAfterRename(path: string, pid: number): Promise<void> {
  const worker = new Worker(
    `const { statSync } = require("node:fs");
    const { path, pid } = require("node:worker_threads").workerData;
    const inode = () => { try { return statSync(path, { bigint: true }).ino; } catch { return undefined; } };
    const first = inode();
    const end = Date.now() + 5000;
    while (inode() === first && Date.now() < end) {}
    try { process.kill(pid, "SIGKILL"); } catch {}`,
    { eval: true, workerData: { path, pid } },
  );
  return new Promise((resolve) => worker.on("exit", () => resolve()));
}

/** The process strace runs (baton itself), or `pid` when it is not strace. */
function tracee(pid: number): number {
  if (!STRACE) return pid;
  for (;;) {
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "latin1").trim();
      if (children !== "") return Number(children.split(" ")[0]);
    } catch {
      return pid;
    }
  }
}

const kills = Number(process.env.SOAK_RUNS ?? 12);
const seed = Number(process.env.KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));

const moment = fc.record({
  delay: fc.constantFrom<1 | 2>(1, 2),
  // The text is about 3,000 chars (600 tokens): kill within it.
  atChars: fc.integer({ min: 1, max: 2_500 }),
  aim: fc.constantFrom<"rename" | "rename" | "rename" | "anywhere">(
    "rename",
    "rename",
    "rename",
    "anywhere",
  ),
  afterUs: fc.integer({ min: 0, max: 20_000 }),
  // `>>` onto text already in the file (the answer starts after it), or an empty file.
  before: fc.constantFrom("", "earlier output\n", "é😀 before\n"),
});
type Moment = typeof moment extends fc.Arbitrary<infer T> ? T : never;

const stats = { kills: 0, midText: 0, aimedHits: 0 };

async function killAndResume(emulator: Emulator, m: Moment): Promise<string | undefined> {
  const directory = await tempDir();
  const store = join(directory, "runs");
  const out = join(directory, "out.txt");
  const common = ["--store", store, "--base-url", emulator.url];
  const createsBefore = emulator.countCreates();
  const seed = openSync(out, "w");
  closeSync(seed);
  await import("node:fs/promises").then((fs) => fs.writeFile(out, m.before));
  const fd = openSync(out, "a");
  const prompt = `tokens every ${m.delay} ms`;
  const first = batonTo(["run", "--stream", ...common, prompt], fd, m.aim === "rename");
  closeSync(fd);
  const before = Buffer.byteLength(m.before);
  await until(() => statSync(out).size >= before + m.atChars, first.child);
  let runFile: string | undefined;
  if (m.aim === "rename") {
    await until(() => {
      runFile = readdirSync(store).find((name) => name.endsWith(".run.json"));
      return runFile !== undefined;
    }, first.child);
    // In a worker: the emulator lives in this thread's event loop and must go on meanwhile.
    await killAfterRename(join(store, runFile as string), tracee(first.child.pid as number));
  } else {
    await sleep(m.afterUs / 1000);
  }
  first.child.kill("SIGKILL");
  const killed = await first.finished;
  stats.kills++;
  const [file] = (await readdir(store)).filter((name) => name.endsWith(".run.json"));
  if (!file) throw new Error(`no saved run; stderr: ${killed.stderr}`);
  const saved = JSON.parse(await readFile(join(store, file), "utf8"));
  const runId: string = saved.runId;
  const responseId: string = saved.snapshot.context.responseId;
  const savedChars: number = saved.snapshot.context.deliveredChars;
  const printedByFirst = (await readFile(out, "utf8")).slice(m.before.length).length;
  if (m.aim === "rename" && savedChars > printedByFirst) stats.aimedHits++;

  const again = openSync(out, "a");
  const second = await batonTo(["resume", runId, ...common], again).finished;
  closeSync(again);
  if (second.code !== 0) return `resume exited ${second.code}: ${second.stderr}`;
  const finalText = (emulator.getResponse(responseId)?.output ?? [])
    .flatMap((item) => item.content.map((part) => part.text))
    .join("");
  if (killed.signal === "SIGKILL" && printedByFirst < finalText.length) stats.midText++;
  const creates = emulator.countCreates() - createsBefore;
  if (creates !== 1) return `${creates} creates`;
  const printed = await readFile(out, "utf8");
  if (printed === m.before + finalText) return undefined;
  return `file holds ${printed.length - m.before.length} chars of ${finalText.length} after what was there: ${printedByFirst} before the kill, when the store said ${savedChars}`;
}

it(
  `${kills} SIGKILLs at 1-2 ms per token, stdout >> a file: run + resume append the final text exactly, one create`,
  async () => {
    const emulators = new Map<number, Emulator>();
    try {
      for (const delay of [1, 2] as const) {
        emulators.set(delay, await emulatorFor({ tokenDelayMs: delay, outputTokens: 600 }));
      }
      const failures: string[] = [];
      for (const m of fc.sample(moment, { seed, numRuns: kills })) {
        const failure = await killAndResume(emulators.get(m.delay) as Emulator, m);
        if (failure) failures.push(`${JSON.stringify(m)}: ${failure}`);
      }
      console.log(
        `stdout-file kills (seed ${seed}): ${stats.kills} kills, ${stats.midText} mid-text, ${stats.aimedHits} aimed kills left the store ahead of the file, ${failures.length} failures`,
      );
      expect(failures).toEqual([]);
      // Most kills must land mid-text, and some after a save's rename, or the test proves nothing.
      expect(stats.midText).toBeGreaterThan(kills / 2);
      // Under strace, most aimed kills leave the store a batch ahead of the file: the case fixed.
      if (STRACE && kills >= 8) expect(stats.aimedHits).toBeGreaterThan(0);
    } finally {
      for (const emulator of emulators.values()) await emulator.close();
    }
  },
  60_000 + kills * 6_000,
);
