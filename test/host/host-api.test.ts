/**
 * Issue 14: the run host's API. `startRun(host, request, run)` keeps the Responses API's request
 * apart from the host (where the run runs and is saved); the one-object form still works;
 * `attachRun` follows a response that exists without creating one; `loadRun` / `checkRun` /
 * `loadEntries` check a store's save against the machine, which the store itself does not load.
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  attachRun,
  checkRun,
  FileRunStore,
  InvalidSnapshotError,
  loadEntries,
  loadRun,
  MemoryRunStore,
  prepareRun,
  readEnvelope,
  rehydrateRun,
  startRun,
} from "../../src/index.js";
import {
  clientFor,
  emulatorFor,
  FAST,
  inState,
  storedText,
  until,
} from "../support/run-harness.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await emulatorFor({ tokenDelayMs: 1, outputTokens: 40 });
});
afterAll(async () => {
  await emulator?.close();
});

describe("startRun(host, request, run)", () => {
  it("runs the request, with the run's id and options, saved to the host's store", async () => {
    const store = new MemoryRunStore();
    const client = clientFor(emulator);
    const run = startRun(
      { client, store },
      { model: "o3", input: "three parts", stream: true, metadata: { mine: "1" } },
      { runId: "run_three_parts", options: FAST },
    );
    expect(run.id).toBe("run_three_parts");
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(result.text).toBe(storedText(emulator, result.responseId as string));
    expect(run.getSnapshot().context.options.pollIntervalMs).toBe(FAST.pollIntervalMs);
    expect((await store.load("run_three_parts"))?.state).toBe("done");
    const create = emulator.requests.find(
      (r) => r.kind === "create-stream" && r.responseId === result.responseId,
    );
    expect(create).toBeDefined();
  });

  it("the one-object form (deprecated) runs the same request the same way", async () => {
    const client = clientFor(emulator);
    const store = new MemoryRunStore();
    const old = startRun({
      client,
      store,
      model: "o3",
      input: "same",
      stream: true,
      runId: "run_old_form",
      options: FAST,
    });
    const now = startRun(
      { client, store },
      { model: "o3", input: "same", stream: true },
      { runId: "run_new_form", options: FAST },
    );
    const [a, b] = await Promise.all([old.result(), now.result()]);
    expect(a.outcome).toBe("completed");
    expect(b.outcome).toBe("completed");
    // Same mode, same options, same kind of save: only the ids and the text differ.
    expect(old.getSnapshot().context.mode).toBe(now.getSnapshot().context.mode);
    expect(old.getSnapshot().context.options).toEqual(now.getSnapshot().context.options);
    expect((await store.load("run_old_form"))?.state).toBe("done");
    expect((await store.load("run_new_form"))?.state).toBe("done");
  });

  it("refuses a bad request before any create, in either form", async () => {
    const client = clientFor(emulator);
    const before = emulator.countCreates();
    expect(() => startRun({ client }, { model: "", input: "x" })).toThrow(/model/);
    expect(() => startRun({ client }, { model: "o3", input: "x" }, { runId: "../x" })).toThrow(
      /runId/,
    );
    expect(() => startRun({ client, model: "o3", input: "x", runId: "../x" })).toThrow(/runId/);
    expect(emulator.countCreates()).toBe(before);
  });
});

describe("prepareRun", () => {
  it("waits in idle, saved with its request, and creates only once started (once)", async () => {
    const store = new MemoryRunStore();
    const client = clientFor(emulator);
    const before = emulator.countCreates();
    const run = prepareRun({ client, store }, { model: "o3", input: "later", stream: true });
    expect(run.state).toBe("idle");
    await run.flush();
    const saved = await store.load(run.id);
    expect(saved?.state).toBe("idle");
    expect(saved?.snapshot.context.request?.input).toBe("later");
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(emulator.countCreates()).toBe(before);
    run.start();
    run.start(); // a second start is nothing
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(emulator.countCreates()).toBe(before + 1);
  });

  it("a prepared run cancelled before its start ends without a create", async () => {
    const client = clientFor(emulator);
    const before = emulator.countCreates();
    const run = prepareRun({ client }, { model: "o3", input: "never" });
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    expect(result.responseId).toBeUndefined();
    run.start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(emulator.countCreates()).toBe(before);
  });
});

describe("a run stopped without detach()", () => {
  it("result() rejects with run_detached, never resolves undefined", async () => {
    const run = startRun(
      { client: clientFor(emulator) },
      { model: "o3", input: "x", stream: true },
    );
    const pending = run.result();
    run.actor.stop();
    await expect(pending).rejects.toMatchObject({ code: "run_detached" });
    await expect(run.result()).rejects.toMatchObject({ code: "run_detached" });
  });
});

describe("attachRun", () => {
  it("follows an existing response by polling, and by replaying its stream, with no create", async () => {
    const client = clientFor(emulator);
    const original = await startRun(
      { client },
      { model: "o3", input: "attach", stream: true },
      { options: FAST },
    ).result();
    const responseId = original.responseId as string;
    const creates = emulator.countCreates();
    const polled = attachRun({ client }, { responseId, mode: "poll", options: FAST });
    const replayed = attachRun({ client }, { responseId, mode: "stream", options: FAST });
    let replayedText = "";
    for await (const delta of replayed.deltas()) replayedText += delta.text;
    const [p, r] = await Promise.all([polled.result(), replayed.result()]);
    expect(p.text).toBe(original.text);
    expect(r.text).toBe(original.text);
    expect(replayedText).toBe(original.text);
    expect(emulator.countCreates()).toBe(creates);
  });

  it("refuses a bad run id", () => {
    expect(() =>
      attachRun({ client: clientFor(emulator) }, { responseId: "resp_1", mode: "poll", runId: "" }),
    ).toThrow(/runId/);
  });
});

describe("a store checks a save by shape; the host checks it against the machine", () => {
  let directory: string;
  let runId: string;
  beforeAll(async () => {
    const slow = await emulatorFor({ tokenDelayMs: 20, outputTokens: 400 });
    directory = await mkdtemp(join(tmpdir(), "baton-host-"));
    const store = new FileRunStore(directory);
    const run = startRun({ client: clientFor(slow), store }, { model: "o3", input: "x" });
    await until(run, inState("polling"));
    await run.detach();
    runId = run.id;
    await slow.close();
    const path = join(directory, `${runId}.run.json`);
    const text = await readFile(path, "utf8");
    expect(text).toContain('"waiting"');
    await writeFile(path, text.replace('"waiting"', '"waitIng"'));
  });

  it("store.load reads a bad substate; loadRun and checkRun refuse it naming the field", async () => {
    const store = new FileRunStore(directory);
    const loaded = await store.load(runId);
    expect(loaded?.state).toBe("polling");
    await expect(loadRun(store, runId)).rejects.toThrow(InvalidSnapshotError);
    let field: string | undefined;
    try {
      checkRun(loaded as NonNullable<typeof loaded>);
    } catch (err) {
      field = (err as InvalidSnapshotError).field;
    }
    expect(field).toBe("snapshot.value.polling");
    // Rehydrating checks it too.
    await expect(rehydrateRun({ client: clientFor(emulator), store }, { runId })).rejects.toThrow(
      /snapshot\.value\.polling/,
    );
  });

  it("loadEntries lists it as unreadable, with the error", async () => {
    const entries = await loadEntries(new FileRunStore(directory));
    expect(entries).toHaveLength(1);
    expect(entries[0]?.runId).toBe(runId);
    expect(entries[0]?.error).toBeInstanceOf(InvalidSnapshotError);
  });

  it("a top-level state that does not exist is refused by the store itself", async () => {
    const text = await readFile(join(directory, `${runId}.run.json`), "utf8");
    const data = JSON.parse(text.replace('"polling"', '"flying"'));
    expect(() => readEnvelope(data)).toThrow(InvalidSnapshotError);
  });
});
