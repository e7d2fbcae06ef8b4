import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import {
  FileRunStore,
  InvalidSnapshotError,
  MemoryRunStore,
  type PersistedRun,
  RUN_MACHINE_VERSION,
  readEnvelope,
  runMachine,
  toEnvelope,
} from "../../src/index.js";

function sampleRun(runId: string): PersistedRun {
  const actor = createActor(runMachine, {
    input: { runId, mode: "poll", request: { model: "m", input: "hi" } },
  });
  return toEnvelope(actor.getPersistedSnapshot());
}

describe("envelope", () => {
  it("wraps a snapshot with versions, state and no token before a response exists", () => {
    const run = sampleRun("run_a");
    expect(run.format).toBe("baton.run");
    expect(run.formatVersion).toBe(1);
    expect(run.machineVersion).toBe(RUN_MACHINE_VERSION);
    expect(run.state).toBe("idle");
    expect(run.token).toBeNull();
    expect(readEnvelope(JSON.parse(JSON.stringify(run)))).toEqual(run);
  });

  const bad: Array<[string, unknown, InvalidSnapshotError["reason"]]> = [
    ["not an object", "hello", "corrupt"],
    ["another format", { format: "langgraph.checkpoint" }, "foreign"],
    ["a newer envelope", { ...sampleRun("run_b"), formatVersion: 2 }, "unsupported-version"],
    [
      "a newer machine",
      { ...sampleRun("run_c"), machineVersion: RUN_MACHINE_VERSION + 1 },
      "unsupported-version",
    ],
    ["no machine version", { ...sampleRun("run_d"), machineVersion: undefined }, "corrupt"],
    ["no snapshot", { ...sampleRun("run_e"), snapshot: null }, "corrupt"],
    [
      "an unknown state",
      { ...sampleRun("run_f"), snapshot: { ...sampleRun("run_f").snapshot, value: "flying" } },
      "corrupt",
    ],
  ];
  for (const [name, data, reason] of bad) {
    it(`refuses ${name} with InvalidSnapshotError(${reason})`, () => {
      expect(() => readEnvelope(data)).toThrowError(InvalidSnapshotError);
      try {
        readEnvelope(data);
      } catch (err) {
        expect((err as InvalidSnapshotError).reason).toBe(reason);
      }
    });
  }
});

for (const [name, makeStore] of [
  ["MemoryRunStore", async () => new MemoryRunStore()],
  ["FileRunStore", async () => new FileRunStore(await mkdtemp(join(tmpdir(), "baton-store-")))],
  [
    "FileRunStore (sync)",
    async () => new FileRunStore(await mkdtemp(join(tmpdir(), "baton-store-")), { sync: true }),
  ],
] as const) {
  describe(name, () => {
    it("saves, loads, lists newest first and deletes", async () => {
      const store = await makeStore();
      const a = { ...sampleRun("run_a"), savedAt: 1 };
      const b = { ...sampleRun("run_b"), savedAt: 2 };
      await store.save(a);
      await store.save(b);
      expect(await store.load("run_a")).toEqual(a);
      expect(await store.load("run_missing")).toBeUndefined();
      const listed = await store.list();
      expect(listed.map((r) => r.runId)).toEqual(["run_b", "run_a"]);
      expect(listed[0]).not.toHaveProperty("snapshot");
      await store.save({ ...a, savedAt: 3 });
      expect((await store.list()).map((r) => r.runId)).toEqual(["run_a", "run_b"]);
      expect(await store.delete("run_a")).toBe(true);
      expect(await store.delete("run_a")).toBe(false);
      expect((await store.list()).map((r) => r.runId)).toEqual(["run_b"]);
    });
  });
}

describe("FileRunStore crash safety", () => {
  it("leaves no temporary file behind and never a half-written run", async () => {
    const dir = await mkdtemp(join(tmpdir(), "baton-store-"));
    const store = new FileRunStore(dir);
    const run = sampleRun("run_x");
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.save({ ...run, savedAt: i })));
    expect((await readdir(dir)).sort()).toEqual(["run_x.run.json"]);
    const saved = JSON.parse(await readFile(join(dir, "run_x.run.json"), "utf8"));
    expect(readEnvelope(saved).runId).toBe("run_x");
  });

  it("reports a corrupt file as InvalidSnapshotError and skips it in listings", async () => {
    const dir = await mkdtemp(join(tmpdir(), "baton-store-"));
    const store = new FileRunStore(dir);
    await store.save(sampleRun("run_ok"));
    await writeFile(join(dir, "run_bad.run.json"), '{"format":"baton.run", "formatVe');
    await expect(store.load("run_bad")).rejects.toBeInstanceOf(InvalidSnapshotError);
    expect((await store.list()).map((r) => r.runId)).toEqual(["run_ok"]);
  });

  it("refuses run ids that would escape its folder", async () => {
    const store = new FileRunStore(await mkdtemp(join(tmpdir(), "baton-store-")));
    await expect(store.load("../etc/passwd")).rejects.toBeInstanceOf(InvalidSnapshotError);
  });
});
