/**
 * Issue 13.1: `baton resume`, `baton cancel` and `baton status` of a run whose file has one
 * flipped bit (`"waiting"` → `"waitIng"`) print one line naming the field, never a stack trace,
 * and exit with the code of an unreadable run (1).
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { FileRunStore, startRun } from "../../src/index.js";
import { clientFor, emulatorFor } from "../support/run-harness.js";
import { runBaton } from "./cli-harness.js";

let emulator: Emulator;
let directory: string;
let runId: string;

beforeAll(async () => {
  emulator = await emulatorFor({ tokenDelayMs: 20, outputTokens: 400 });
  directory = await mkdtemp(join(tmpdir(), "baton-corrupt-cli-"));
  const store = new FileRunStore(directory, { sync: true });
  const run = startRun({ client: clientFor(emulator), model: "o3", input: "x", store });
  while (run.state !== "polling") await new Promise((resolve) => setTimeout(resolve, 5));
  await run.detach();
  runId = run.id;
  const path = join(directory, `${runId}.run.json`);
  const text = await readFile(path, "utf8");
  expect(text).toContain('"waiting"');
  await writeFile(path, text.replace('"waiting"', '"waitIng"'));
});
afterAll(async () => {
  await emulator?.close();
});

it.each([["resume"], ["cancel"], ["status"]])(
  "baton %s of a flipped bit: one line naming the field, exit 1",
  async (command) => {
    const out = await runBaton([command, runId, "--store", directory], {
      env: { OPENAI_BASE_URL: emulator.url, OPENAI_API_KEY: "sk-local" },
    });
    expect(out.stderr).toMatch(
      /snapshot\.value\.polling: 'waitIng' is not a state of 'run\.polling'/,
    );
    expect(out.stderr).not.toMatch(/^\s+at /m);
    expect(out.stderr.trim().split("\n")).toHaveLength(1);
    expect(out.code).toBe(1);
  },
);
