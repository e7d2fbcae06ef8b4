/**
 * `--output FILE` beyond kills: stdout stays empty, resume writes to the run's own file by
 * default, a file that is not the answer's prefix is refused and left untouched, and a run
 * finished by `baton cancel` from another process gets the rest of its text in the file.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  baton,
  emulatorFor,
  RESPONSE_ID,
  RUN_ID,
  runBaton,
  storedText,
  tempDir,
} from "./cli-harness.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

/** `baton run --stream --output FILE`, killed with SIGKILL once FILE holds `chars` bytes. */
async function killedWithFile(server: Emulator, dir: string, chars: number) {
  const file = join(dir, "answer.txt");
  const common = ["--store", join(dir, "runs"), "--base-url", server.url];
  const first = baton(["run", "--stream", "--output", file, ...common, "long"]);
  const runId = (await first.stderrMatches(RUN_ID))[0];
  const responseId = (await first.stderrMatches(RESPONSE_ID))[0];
  for (;;) {
    const size = await readFile(file, "utf8").then(
      (text) => text.length,
      () => 0,
    );
    if (size >= chars) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  first.child.kill("SIGKILL");
  const killed = await first.finished;
  return { file, common, runId, responseId, killed };
}

it("resume writes to the run's own file by default; stdout stays empty", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 5, outputTokens: 300 });
  const { file, common, runId, responseId, killed } = await killedWithFile(
    emulator,
    await tempDir(),
    100,
  );
  expect(killed.stdout).toBe("");
  const resumed = await runBaton(["resume", runId, ...common]);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toBe("");
  expect(await readFile(file, "utf8")).toBe(storedText(emulator, responseId));
  expect(resumed.stderr).toContain(`completed: ${storedText(emulator, responseId).length} chars`);
}, 60_000);

it("a file that is not the answer's prefix is refused and left as it is", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 5, outputTokens: 300 });
  const dir = await tempDir();
  const { common, runId } = await killedWithFile(emulator, dir, 100);
  const other = join(dir, "other.txt");
  await writeFile(other, "Not the answer at all, but some other text of some length.\n");
  const before = await readFile(other, "utf8");
  const resumed = await runBaton(["resume", runId, "--output", other, ...common]);
  expect(resumed.code).toBe(1);
  expect(resumed.stderr).toMatch(/does not hold the answer/);
  expect(await readFile(other, "utf8")).toBe(before);
  // And for a finished run, too.
  const done = await runBaton(["resume", runId, ...common]);
  expect(done.code).toBe(0);
  const again = await runBaton(["resume", runId, "--output", other, ...common]);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/does not hold the answer/);
  expect(await readFile(other, "utf8")).toBe(before);
}, 60_000);

it("killed, cancelled from another process, resumed: the file gets the rest of the text", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 2_000 });
  const { file, common, runId, responseId } = await killedWithFile(emulator, await tempDir(), 60);
  const cancelled = await runBaton(["cancel", runId, ...common]);
  expect(cancelled.code).toBe(0);
  const resumed = await runBaton(["resume", runId, ...common]);
  expect(resumed.code).toBe(4);
  const finalText = storedText(emulator, responseId);
  expect((await readFile(file, "utf8")).length).toBe(finalText.length);
  expect(await readFile(file, "utf8")).toBe(finalText);
}, 60_000);
