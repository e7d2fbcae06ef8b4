/**
 * A run killed hard (SIGKILL) mid-stream in one process is carried on in another: the text
 * printed by both equals the final text exactly, no sequence number twice, one create.
 */
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { FileRunStore, rehydrateRun } from "../../src/index.js";
import { clientFor, emulatorFor, Recorder } from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

it("survives SIGKILL of the process that started the run", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 120 });
  const directory = await mkdtemp(join(tmpdir(), "baton-xproc-"));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(import.meta.dirname, "../fixtures/stream-child.ts"),
      emulator.url,
      directory,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let runId = "";
  const printed: { text: string; seq?: number }[] = [];
  const exited = new Promise((resolve) => child.on("exit", resolve));
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith("run ")) {
      runId = line.slice(4);
      continue;
    }
    printed.push(JSON.parse(line));
    if (printed.length === 25) child.kill("SIGKILL");
  }
  await exited;
  expect(printed.length).toBeGreaterThanOrEqual(25);
  expect(runId).toMatch(/^run_/);

  const store = new FileRunStore(directory);
  const saved = await store.load(runId);
  expect(saved?.state).toBe("streaming");
  expect(JSON.stringify(saved)).not.toContain("SECRET");

  const run = await rehydrateRun({ client: clientFor(emulator), store }, { runId });
  const rest = new Recorder(run);
  const result = await run.result();
  expect(result.outcome).toBe("completed");
  expect(printed.map((p) => p.text).join("") + rest.text).toBe(result.text);
  const seqs = [...printed.map((p) => p.seq), ...rest.deltas.map((d) => d.sequenceNumber)];
  expect(new Set(seqs).size).toBe(seqs.length);
  expect(emulator.countCreates()).toBe(1);
}, 30_000);
