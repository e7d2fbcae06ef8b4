/**
 * Issues 12.4 (last bullet) and 13.13: `baton runs` lists every file of the store: a corrupt
 * one, one whose name is not its runId, one without a runId, one with a non-string status
 * each render as an `unreadable` row with their error on stderr, beside the good runs; a store
 * holding only a corrupt file does not say "no runs". The RunStore contract's `entries()`
 * gives each entry with its read error, in the file and memory stores.
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runRunsCommand } from "../../src/cli/runs-command.js";
import type { Emulator } from "../../src/emulator/index.js";
import {
  FileRunStore,
  InvalidSnapshotError,
  listEntries,
  MemoryRunStore,
  type PersistedRun,
  type RunStore,
  startRun,
} from "../../src/index.js";
import { clientFor, emulatorFor, FAST } from "../support/run-harness.js";
import { runBaton } from "./cli-harness.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

function io() {
  let stdout = "";
  let stderr = "";
  return {
    overrides: {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      env: {},
    },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

async function storeWithOneGoodRun(): Promise<{ directory: string; good: PersistedRun }> {
  emulator = await emulatorFor();
  const directory = await mkdtemp(join(tmpdir(), "baton-runs-"));
  const store = new FileRunStore(directory);
  const run = startRun({
    client: clientFor(emulator),
    model: "o3",
    input: "x",
    store,
    options: FAST,
  });
  await run.result();
  const good = JSON.parse(await readFile(join(directory, `${run.id}.run.json`), "utf8"));
  return { directory, good };
}

describe("baton runs lists what it cannot read", () => {
  it("a store holding only a corrupt file: the file is listed with its error (a real baton process)", async () => {
    const directory = await mkdtemp(join(tmpdir(), "baton-runs-"));
    await writeFile(join(directory, "run_bad.run.json"), "{not json");
    const out = await runBaton(["runs", "--store", directory]);
    expect(out.code).toBe(0);
    expect(out.stderr).not.toMatch(/no runs/);
    expect(out.stdout).toMatch(/^run_bad\s+unreadable\s+-/m);
    expect(out.stderr).toMatch(
      /^baton: unreadable: run_bad: the saved run 'run_bad' is not valid JSON$/m,
    );
  });

  it("every row renders beside the good run, bad ones marked; --json carries the errors", async () => {
    const { directory, good } = await storeWithOneGoodRun();
    const noRunId = structuredClone(good) as Partial<PersistedRun>;
    delete noRunId.runId;
    // Its own run id (so that only its status is wrong), and a status that is not a string.
    const badStatus = { ...structuredClone(good), runId: "run_badstatus", status: 5 };
    badStatus.snapshot.context.runId = "run_badstatus";
    await writeFile(join(directory, "run_copy.run.json"), JSON.stringify(good));
    await writeFile(join(directory, "run_norunid.run.json"), JSON.stringify(noRunId));
    await writeFile(join(directory, "run_badstatus.run.json"), JSON.stringify(badStatus));
    await writeFile(join(directory, "run_garbage.run.json"), "\u0000\u001b[31m");

    const table = io();
    expect(await runRunsCommand(["--store", directory], table.overrides)).toBe(0);
    const rows = table.stdout.trim().split("\n");
    expect(rows).toHaveLength(6); // the header, the good run, four unreadable files
    expect(rows[1]).toMatch(
      new RegExp(`^${good.runId}\\s+done\\s+completed\\s+poll\\s+\\d+s\\s+resp_`),
    );
    for (const name of ["run_copy", "run_norunid", "run_badstatus", "run_garbage"]) {
      expect(table.stdout).toMatch(new RegExp(`^${name}\\s+unreadable`, "m"));
      expect(table.stderr).toMatch(new RegExp(`^baton: unreadable: ${name}: `, "m"));
    }
    expect(table.stderr).toMatch(/run_copy: runId: is '.*', but the run was stored as 'run_copy'/);
    expect(table.stderr).toMatch(/run_norunid: runId: must be/);
    expect(table.stderr).toMatch(/run_badstatus: status: must be the snapshot's/);

    const json = io();
    expect(await runRunsCommand(["--store", directory, "--json"], json.overrides)).toBe(0);
    const listed = JSON.parse(json.stdout) as Array<{
      runId: string;
      state: string;
      error?: string;
    }>;
    expect(listed.map((row) => row.runId)).toEqual([
      good.runId,
      "run_badstatus",
      "run_copy",
      "run_garbage",
      "run_norunid",
    ]);
    expect(listed[0]?.error).toBeUndefined();
    for (const row of listed.slice(1)) {
      expect(row.state).toBe("unreadable");
      expect(row.error).toEqual(expect.any(String));
    }
  });
});

describe("RunStore.entries()", () => {
  it("FileRunStore and MemoryRunStore give each entry with its read error", async () => {
    const { directory, good } = await storeWithOneGoodRun();
    await writeFile(join(directory, "run_copy.run.json"), JSON.stringify(good));
    const file = await new FileRunStore(directory).entries();
    expect(file.map((entry) => [entry.runId, entry.error?.constructor.name])).toEqual([
      [good.runId, undefined],
      ["run_copy", "InvalidSnapshotError"],
    ]);
    expect((await new FileRunStore(directory).list()).map((run) => run.runId)).toEqual([
      good.runId,
    ]);

    const memory = new MemoryRunStore();
    await memory.save(good);
    expect((await memory.entries()).map((entry) => entry.runId)).toEqual([good.runId]);
  });

  it("listEntries falls back to list() and load() for a store without entries()", async () => {
    const { good } = await storeWithOneGoodRun();
    const summary = { ...good } as Partial<PersistedRun>;
    delete summary.snapshot;
    const store: RunStore = {
      save: async () => {},
      load: async (runId) => {
        if (runId === "run_broken") throw new InvalidSnapshotError("corrupt", "broken");
        return good;
      },
      list: async () => [summary as never, { ...summary, runId: "run_broken" } as never],
      delete: async () => false,
    };
    const entries = await listEntries(store);
    expect(entries[0]?.run?.runId).toBe(good.runId);
    expect(entries[1]?.error).toBeInstanceOf(InvalidSnapshotError);
  });
});
