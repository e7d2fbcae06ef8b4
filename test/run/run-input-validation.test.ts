/**
 * Issue 13.12: `startRun` refuses a run id, a create request or options it could never save or
 * follow before the create call, so nothing is created (and billed); `rehydrateRun` refuses a
 * bad run id before it reads anything.
 */
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  FileRunStore,
  InvalidRunInputError,
  MemoryRunStore,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "../../src/index.js";
import { clientFor, emulatorFor, startPolledRun } from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

const refused: Array<[string, Partial<StartRunOptions>, string]> = [
  ["a run id that climbs out of the store", { runId: "../x" }, "runId"],
  ["a run id of 300 characters", { runId: "r".repeat(300) }, "runId"],
  ["a run id with a slash", { runId: "a/b" }, "runId"],
  ["a run id starting with a dot", { runId: ".hidden" }, "runId"],
  ["an empty run id", { runId: "" }, "runId"],
  ["no model", { model: "" }, "request.model"],
  ["an input that is a number", { input: 42 as unknown as string }, "request.input"],
  ["a previous response id of '..'", { previousResponseId: ".." }, "request.previousResponseId"],
  ["a negative poll interval", { options: { pollIntervalMs: -5 } }, "options.pollIntervalMs"],
  ["a jitter of 2", { options: { retry: { jitter: 2 } as never } }, "options.retry.jitter"],
  ["an unknown option", { options: { pollIntervalMS: 5 } as never }, "options.pollIntervalMS"],
  [
    "an unknown deadline action",
    { options: { onDeadline: "explode" as never } },
    "options.onDeadline",
  ],
];

describe("startRun checks its input before the create", () => {
  it.each(refused)("%s: InvalidRunInputError, nothing created", async (_name, extra, field) => {
    emulator = await emulatorFor();
    const directory = await mkdtemp(join(tmpdir(), "baton-input-"));
    const store = new FileRunStore(directory);
    let error: unknown;
    try {
      startRun({ client: clientFor(emulator), model: "o3", input: "x", store, ...extra });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidRunInputError);
    expect((error as InvalidRunInputError).code).toBe("invalid_input");
    expect((error as InvalidRunInputError).field).toBe(field);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(emulator.countCreates()).toBe(0);
    expect(await readdir(directory)).toEqual([]);
  });

  it("a run id of 128 safe characters is fine, and every save of it lands", async () => {
    emulator = await emulatorFor();
    const store = new MemoryRunStore();
    const runId = `run_${"a".repeat(124)}`;
    const run = startPolledRun(emulator, { store }, { runId });
    expect((await run.result()).outcome).toBe("completed");
    expect((await store.load(runId))?.state).toBe("done");
  });

  it("rehydrateRun refuses a bad run id before it reads the store", async () => {
    emulator = await emulatorFor();
    const store = new MemoryRunStore();
    await expect(
      rehydrateRun({ client: clientFor(emulator), store }, { runId: "../x", store }),
    ).rejects.toBeInstanceOf(InvalidRunInputError);
    await expect(
      rehydrateRun({ client: clientFor(emulator) }, { token: "bt1.e30", runId: "../x" }),
    ).rejects.toBeInstanceOf(InvalidRunInputError);
  });
});
