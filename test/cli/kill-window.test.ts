/**
 * Issue 12.1: `baton run --stream … >> out.txt` killed with SIGKILL at a random moment while
 * tokens come every 1-2 ms, then `baton resume … >> out.txt`: the file holds the final text
 * (nothing printed twice, nothing lost but what is below) and the response was created once.
 *
 * A kill between the rename that puts a save in effect and the write of the batch it covers
 * (now ~0.1 ms per save, from 0.3-0.5 ms with tails to 24 ms) leaves the store one batch ahead of
 * what was printed. When stdout is a regular file, as here, the resume goes by the file itself
 * (`src/cli/stdout-file.ts`), so that loss must not happen either: it is told apart from any other
 * (the store exactly one batch ahead of the file, exactly that batch missing), counted, printed,
 * and a failure (`KILL_STRICT=0` only counts it, for a pipe-like measurement of the window). Any
 * other difference, a repetition or a second create fails. The deterministic tests of the fix are
 * `test/run/staged-delivery.test.ts` and `test/run/file-store-durability.test.ts`.
 *
 * Two kills in three are aimed at a save (once its temporary file shows up in the store, up to
 * 3 ms later: where the rename that puts it in effect falls), the rest anywhere. The moments of
 * the kills are drawn by fast-check (`KILL_SEED=<seed>` replays a sequence). A bounded number of
 * kills by default; `SOAK_RUNS` sets how many (hundreds in the soak).
 */
import { closeSync, existsSync, openSync, readdirSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { afterAll, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { type Baton, baton, emulatorFor, tempDir } from "./cli-harness.js";

/** `baton <args>` with its stdout going to `fd` (a file opened for appending), as `>> out.txt`. */
function batonTo(args: readonly string[], fd: number): Baton {
  return baton(args, { stdout: fd });
}

/** Waits until `check` holds (or the child ended). */
async function until(check: () => boolean, child: Baton["child"]): Promise<void> {
  while (child.exitCode === null && child.signalCode === null) {
    if (check()) return;
    await sleep(1);
  }
}

const kills = Number(process.env.SOAK_RUNS ?? 6);
const seed = Number(process.env.KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));

const strict = process.env.KILL_STRICT !== "0";

const stats = {
  kills: 0,
  midText: 0,
  lost: 0,
  repeated: 0,
  lostChars: 0,
  windowLosses: [] as string[],
};

afterAll(() => {
  console.log(
    `kill window (seed ${seed}): ${stats.kills} kills, ${stats.midText} mid-text, ` +
      `${stats.lost} lost text (${stats.lostChars} chars), ${stats.repeated} repeated text; ` +
      `of the losses, ${stats.windowLosses.length} a kill between a save's rename and its write` +
      stats.windowLosses.map((loss) => `\n  ${loss}`).join(""),
  );
});

const moment = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      delay: fc.constantFrom<1 | 2>(1, 2),
      // The text is about 3,000 chars (600 tokens): kill within it.
      atChars: fc.integer({ min: 1, max: 2_500 }),
      aim: fc.constant<"save" | "anywhere">("save"),
      // The temporary file is written and fsynced, then renamed: within a few ms.
      afterUs: fc.integer({ min: 0, max: 3_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      delay: fc.constantFrom<1 | 2>(1, 2),
      atChars: fc.integer({ min: 1, max: 2_500 }),
      aim: fc.constant<"save" | "anywhere">("anywhere"),
      afterUs: fc.integer({ min: 0, max: 20_000 }),
    }),
  },
);
type Moment = typeof moment extends fc.Arbitrary<infer T> ? T : never;

function isTemporary(name: string): boolean {
  return name.endsWith(".tmp");
}

async function killAndResume(
  emulator: Emulator,
  tokenDelayMs: 1 | 2,
  moment: Moment,
): Promise<string | undefined> {
  const directory = await tempDir();
  const store = join(directory, "runs");
  const out = join(directory, "out.txt");
  const common = ["--store", store, "--base-url", emulator.url];
  const createsBefore = emulator.countCreates();
  // `>> out.txt`: the child's stdout is the file itself, opened for appending.
  const fd = openSync(out, "a");
  const first = batonTo(["run", "--stream", ...common, `tokens every ${tokenDelayMs} ms`], fd);
  closeSync(fd);
  // Once the file holds that much text: at once, a little later (out of step with the
  // saves), or aimed at a save (while its temporary file is being written, just before the
  // rename that puts it in effect, `afterUs` later).
  await until(() => statSync(out).size >= moment.atChars, first.child);
  if (moment.aim === "save") {
    await until(() => existsSync(store) && readdirSync(store).some(isTemporary), first.child);
    const end = performance.now() + moment.afterUs / 1000;
    while (performance.now() < end) {
      // A spin: timers are too coarse for this.
    }
  } else {
    await sleep(moment.afterUs / 1000);
  }
  first.child.kill("SIGKILL");
  const killed = await first.finished;
  stats.kills++;
  // The store knows the run (the kill may land before stderr's lines reach this process).
  const [file] = (await readdir(store)).filter((name) => name.endsWith(".run.json"));
  if (!file) throw new Error(`no saved run; stderr: ${killed.stderr}`);
  const saved = JSON.parse(await readFile(join(store, file), "utf8"));
  const runId: string = saved.runId;
  const responseId: string = saved.snapshot.context.responseId;
  const printedByFirst = (await readFile(out, "utf8")).length;

  const again = openSync(out, "a");
  const second = await batonTo(["resume", runId, ...common], again).finished;
  closeSync(again);
  expect(second.code, second.stderr).toBe(0);
  const response = emulator.getResponse(responseId);
  const finalText = (response?.output ?? [])
    .flatMap((item) => item.content.map((part) => part.text))
    .join("");
  const printed = await readFile(out, "utf8");
  if (killed.signal === "SIGKILL" && printedByFirst < finalText.length) stats.midText++;
  if (printed.length < finalText.length) {
    stats.lost++;
    stats.lostChars += finalText.length - printed.length;
  } else if (printed.length > finalText.length) {
    stats.repeated++;
  }
  const creates = emulator.countCreates() - createsBefore;
  if (creates !== 1) return `${creates} creates`;
  if (printed === finalText) return undefined;
  let same = 0;
  while (same < printed.length && printed[same] === finalText[same]) same++;
  const savedChars: number = saved.snapshot.context.deliveredChars;
  const described = `printed ${printed.length} chars of ${finalText.length}: ${printedByFirst} before the kill, when the store said ${savedChars}; the same up to char ${same}`;
  // The one loss stdout cannot rule out: the kill fell between the rename of a save and the
  // write of its batch (the store one batch ahead of the file), and exactly that batch is
  // missing. Counted (and a failure with KILL_STRICT=1); anything else is a bug.
  const windowLoss =
    savedChars > printedByFirst &&
    printed === finalText.slice(0, printedByFirst) + finalText.slice(savedChars);
  if (windowLoss) {
    stats.windowLosses.push(described);
    return strict ? described : undefined;
  }
  return described;
}

it(
  `${kills} SIGKILLs mid-text at 1-2 ms per token: run + resume append the final text, one create`,
  async () => {
    const emulators = new Map<number, Emulator>();
    try {
      for (const delay of [1, 2] as const) {
        emulators.set(delay, await emulatorFor({ tokenDelayMs: delay, outputTokens: 600 }));
      }
      // The moments are drawn up front (not fc.assert): every kill is carried out and counted,
      // so that a run reports a loss rate, and a failure lists each kill that lost text.
      const moments = fc.sample(moment, { seed, numRuns: kills });
      const failures: string[] = [];
      for (const moment of moments) {
        const emulator = emulators.get(moment.delay) as Emulator;
        const failure = await killAndResume(emulator, moment.delay, moment);
        if (failure) failures.push(`${JSON.stringify(moment)}: ${failure}`);
      }
      expect(failures).toEqual([]);
      // Most kills must land mid-text, or the test proves nothing.
      expect(stats.midText).toBeGreaterThan(kills / 2);
    } finally {
      for (const emulator of emulators.values()) await emulator.close();
    }
  },
  60_000 + kills * 6_000,
);
