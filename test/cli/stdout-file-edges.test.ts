/**
 * Issue 12.1, stdout a regular file, the cases beside the kill test: a resume whose stdout is not
 * the file `baton run` printed to (a pipe; the same file emptied by `>`; the file cut below where
 * the answer started) goes by what it can know, and never repeats text into the file.
 */
import { closeSync, openSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { type Baton, baton, emulatorFor, tempDir } from "./cli-harness.js";

/** `baton <args>`, stdout the file open as `fd`, or a pipe when `fd` is "pipe". */
function batonTo(args: readonly string[], fd: number | "pipe"): Baton {
  return baton(args, fd === "pipe" ? {} : { stdout: fd });
}

let emulator: Emulator;
beforeAll(async () => {
  emulator = await emulatorFor({ tokenDelayMs: 2, outputTokens: 300 });
});
afterAll(() => emulator.close());

/** `baton run --stream >> out` (after `before`), SIGKILLed once the answer has 300 bytes. */
async function killedRun(before: string) {
  const directory = await tempDir();
  const store = join(directory, "runs");
  const out = join(directory, "out.txt");
  const common = ["--store", store, "--base-url", emulator.url];
  writeFileSync(out, before);
  const fd = openSync(out, "a");
  const first = batonTo(["run", "--stream", ...common, "stdout edges"], fd);
  closeSync(fd);
  while (statSync(out).size < Buffer.byteLength(before) + 300) await sleep(1);
  first.child.kill("SIGKILL");
  await first.finished;
  const [file] = (await readdir(store)).filter((name) => name.endsWith(".run.json"));
  const saved = JSON.parse(await readFile(join(store, file as string), "utf8"));
  const finalText = async () =>
    (emulator.getResponse(saved.snapshot.context.responseId)?.output ?? [])
      .flatMap((item) => item.content.map((part) => part.text))
      .join("");
  return {
    out,
    common,
    runId: saved.runId as string,
    savedChars: saved.snapshot.context.deliveredChars as number,
    finalText,
  };
}

it("resumed to a pipe: the rest after the saved cursor, as before", async () => {
  const run = await killedRun("earlier\n");
  const resumed = await batonTo(["resume", run.runId, ...run.common], "pipe").finished;
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout).toBe((await run.finalText()).slice(run.savedChars));
});

it("resumed with `>` onto the file it printed to (emptied): the whole answer", async () => {
  const run = await killedRun("");
  const fd = openSync(run.out, "w");
  const resumed = await batonTo(["resume", run.runId, ...run.common], fd).finished;
  closeSync(fd);
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(await readFile(run.out, "utf8")).toBe(await run.finalText());
});

it("the file cut below where the answer started: the saved cursor, nothing repeated", async () => {
  const run = await killedRun("text that was there before the answer\n");
  truncateSync(run.out, 10);
  const fd = openSync(run.out, "a");
  const resumed = await batonTo(["resume", run.runId, ...run.common], fd).finished;
  closeSync(fd);
  expect(resumed.code, resumed.stderr).toBe(0);
  const text = await run.finalText();
  expect(await readFile(run.out, "utf8")).toBe(`text that ${text.slice(run.savedChars)}`);
});

it("an edited file whose answer does not match: a note, and the saved cursor", async () => {
  const run = await killedRun("");
  const held = await readFile(run.out, "utf8");
  writeFileSync(run.out, "X".repeat(held.length));
  const fd = openSync(run.out, "a");
  const resumed = await batonTo(["resume", run.runId, ...run.common], fd).finished;
  closeSync(fd);
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stderr).toMatch(/does not hold the beginning of this answer/);
  const text = await run.finalText();
  expect(await readFile(run.out, "utf8")).toBe(
    "X".repeat(held.length) + text.slice(run.savedChars),
  );
});
