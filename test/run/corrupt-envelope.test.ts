/**
 * Issues 12.5, 13.1 and 13.13: a corrupt store file is refused with an InvalidSnapshotError
 * naming the field, from inside `try { await rehydrateRun(…) }`, with nothing thrown out of the
 * process (listeners on `uncaughtException` and `unhandledRejection` meanwhile), while another
 * run in the same process carries on untouched. The envelopes are real saves of real runs.
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  FileRunStore,
  InvalidSnapshotError,
  type PersistedRun,
  RUN_STATES,
  readEnvelope,
  rehydrateRun,
  responseIdOf,
  runMachine,
} from "../../src/index.js";
import { captureEnvelopes, sampleKey } from "../support/envelope-samples.js";
import { clientFor, emulatorFor, startStreamedRun, storedText } from "../support/run-harness.js";

let emulator: Emulator;
let samples: PersistedRun[];
const crashes: unknown[] = [];
const onCrash = (err: unknown) => crashes.push(err);

beforeAll(async () => {
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);
  emulator = await emulatorFor({ tokenDelayMs: 1 });
  samples = await captureEnvelopes(emulator);
});
afterAll(async () => {
  process.off("uncaughtException", onCrash);
  process.off("unhandledRejection", onCrash);
  await emulator?.close();
});

function sample(key: string): PersistedRun {
  const found = samples.find((run) => sampleKey(run) === key);
  if (!found) throw new Error(`no sample ${key} in ${samples.map(sampleKey).join(" | ")}`);
  return structuredClone(found);
}

/** Writes an envelope as a store file and rehydrates it by id, as `baton resume` does. */
async function rehydrateFile(data: unknown, runId: string, fileName = runId) {
  const directory = await mkdtemp(join(tmpdir(), "baton-corrupt-"));
  await writeFile(join(directory, `${fileName}.run.json`), JSON.stringify(data));
  const store = new FileRunStore(directory);
  try {
    const run = await rehydrateRun({ client: clientFor(emulator), store }, { runId, store });
    return { run, error: undefined };
  } catch (error) {
    return { run: undefined, error };
  } finally {
    // XState rethrows an actor's error on a timer: give it the time to happen.
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}

type Edit = (run: PersistedRun & Record<string, unknown>) => void;
const ctx = (run: PersistedRun) => run.snapshot.context as unknown as Record<string, unknown>;

const cases: Array<[string, string, Edit, string]> = [
  [
    "a flipped bit in the state value",
    'active:{"polling":"waiting"}',
    (run) => {
      run.snapshot.value = { polling: "waitIng" };
    },
    "snapshot.value.polling",
  ],
  [
    "historyValue {x: 1}",
    'active:{"polling":"waiting"}',
    (run) => {
      run.snapshot.historyValue = { x: 1 };
    },
    "snapshot.historyValue.x",
  ],
  [
    "historyValue null",
    'active:"streaming"',
    (run) => {
      run.snapshot.historyValue = null;
    },
    "snapshot.historyValue",
  ],
  [
    "children {deadline: null}",
    'active:"streaming"',
    (run) => {
      run.snapshot.children = { deadline: null };
    },
    "snapshot.children.deadline",
  ],
  [
    "context.options missing",
    'active:{"polling":"waiting"}',
    (run) => {
      delete ctx(run).options;
    },
    "snapshot.context.options",
  ],
  [
    "snapshot status missing",
    'active:"streaming"',
    (run) => {
      delete (run.snapshot as Partial<PersistedRun["snapshot"]>).status;
    },
    "snapshot.status",
  ],
  [
    'snapshot status "bogus"',
    'active:{"polling":"waiting"}',
    (run) => {
      run.snapshot.status = "bogus";
    },
    "snapshot.status",
  ],
  [
    "responseId null in a state that follows a response",
    'active:{"polling":"waiting"}',
    (run) => {
      ctx(run).responseId = null;
      run.responseId = null;
    },
    "snapshot.context.responseId",
  ],
  [
    "wakeAt 1e308",
    'active:{"polling":"waiting"}',
    (run) => {
      ctx(run).wakeAt = 1e308;
    },
    "snapshot.context.wakeAt",
  ],
  [
    "sequenceNumber -5",
    'active:"streaming"',
    (run) => {
      ctx(run).sequenceNumber = -5;
    },
    "snapshot.context.sequenceNumber",
  ],
  [
    'sequenceNumber "abc"',
    'active:"streaming"',
    (run) => {
      ctx(run).sequenceNumber = "abc";
    },
    "snapshot.context.sequenceNumber",
  ],
  [
    "deliveredChars -100",
    'active:"streaming"',
    (run) => {
      ctx(run).deliveredChars = -100;
    },
    "snapshot.context.deliveredChars",
  ],
  [
    "formatVersion 0",
    'done:"done"',
    (run) => {
      run.formatVersion = 0;
    },
    "formatVersion",
  ],
  [
    "formatVersion -1",
    'done:"done"',
    (run) => {
      run.formatVersion = -1;
    },
    "formatVersion",
  ],
  [
    "formatVersion 1.5",
    'done:"done"',
    (run) => {
      run.formatVersion = 1.5;
    },
    "formatVersion",
  ],
  [
    "a done run without its result",
    'done:"done"',
    (run) => {
      ctx(run).result = null;
    },
    "snapshot.context.result",
  ],
  [
    "the envelope's responseId differs from the snapshot's",
    'active:{"polling":"waiting"}',
    (run) => {
      run.responseId = "resp_other";
    },
    "responseId",
  ],
];

describe("a corrupt store file is a typed error, never a crash", () => {
  it.each(cases)("%s: InvalidSnapshotError naming the field", async (_name, key, edit, field) => {
    const healthy = startStreamedRun(emulator);
    const envelope = sample(key) as PersistedRun & Record<string, unknown>;
    edit(envelope);
    const { error } = await rehydrateFile(envelope, envelope.runId);
    expect(error).toBeInstanceOf(InvalidSnapshotError);
    expect((error as InvalidSnapshotError).field).toBe(field);
    expect((error as InvalidSnapshotError).message).toMatch(
      new RegExp(`^${field.replace(/\./g, "\\.")}: `),
    );
    // The other run in this process is untouched.
    const result = await healthy.result();
    expect(result.outcome).toBe("completed");
    expect(result.text).toBe(storedText(emulator, result.responseId as string));
    expect(crashes).toEqual([]);
  });

  it("a file whose name is not its runId is refused (no duplicate rows in baton runs)", async () => {
    const envelope = sample('done:"done"');
    const { error } = await rehydrateFile(envelope, "run_copy", "run_copy");
    expect(error).toBeInstanceOf(InvalidSnapshotError);
    expect((error as InvalidSnapshotError).field).toBe("runId");
    expect(crashes).toEqual([]);
  });

  it("every real save reads back and restores", async () => {
    for (const envelope of samples) {
      expect(() => readEnvelope(structuredClone(envelope)), sampleKey(envelope)).not.toThrow();
    }
    // Samples of every top-level state the machine has.
    expect(new Set(samples.map((run) => run.state))).toEqual(new Set(RUN_STATES));
  });
});

describe("the state tree is the machine's", () => {
  it("the listed top-level states are the machine's own", () => {
    expect([...RUN_STATES].sort()).toEqual(Object.keys(runMachine.root.states).sort());
  });
});

describe("fields this baton does not know", () => {
  it("unknown envelope and context fields of JSON data read and are kept", () => {
    const envelope = sample('active:{"polling":"waiting"}') as PersistedRun &
      Record<string, unknown>;
    envelope.server = { baseURL: "http://127.0.0.1:1/v1" };
    ctx(envelope).addedElsewhere = null;
    const read = readEnvelope(envelope) as PersistedRun & Record<string, unknown>;
    expect(read.server).toEqual({ baseURL: "http://127.0.0.1:1/v1" });
    expect(ctx(read).addedElsewhere).toBeNull();
  });

  it("a forged actor reference anywhere in context is refused (XState would revive it)", () => {
    const envelope = sample('active:{"polling":"waiting"}');
    ctx(envelope).addedElsewhere = { nested: { xstate$$type: 1, id: "deadline" } };
    expect(() => readEnvelope(envelope)).toThrow(
      /^snapshot\.context\.addedElsewhere\.nested: must not hold an actor reference$/,
    );
  });
});

describe("one source of a saved run's response id", () => {
  it("responseIdOf reads the snapshot's, and the envelope's copy is checked equal on read", () => {
    const envelope = sample('active:{"polling":"waiting"}');
    const read = readEnvelope(envelope);
    expect(responseIdOf(read)).toBe(read.snapshot.context.responseId);
    expect(read.responseId).toBe(responseIdOf(read));
    expect(read.token).not.toBeNull();
  });
});

describe("a done envelope holds its final text once", () => {
  it("context.result only; XState's output is rebuilt on restore", async () => {
    const directory = await mkdtemp(join(tmpdir(), "baton-done-"));
    const store = new FileRunStore(directory);
    const run = startStreamedRun(emulator, { store });
    const result = await run.result();
    const text = await readFile(join(directory, `${run.id}.run.json`), "utf8");
    expect(result.text.length).toBeGreaterThan(20);
    expect(text.split(result.text).length - 1).toBe(1);
    expect(JSON.parse(text).snapshot.output).toBeUndefined();
    const again = await rehydrateRun(
      { client: clientFor(emulator), store },
      { runId: run.id, store },
    );
    expect(await again.result()).toEqual(result);
  });

  it("a save made done by hand from one with a call in flight reads (its children are not restored)", async () => {
    // As test/cli/crash-resume.test.ts does to a save caught in `polling.fetching`.
    const saved = sample('active:{"started":"creating"}');
    expect(Object.keys(saved.snapshot.children)).toContain("create");
    saved.state = "done";
    saved.token = null;
    saved.snapshot.status = "done";
    saved.snapshot.value = "done";
    saved.snapshot.context.result = {
      outcome: "gave-up",
      runId: saved.runId,
      text: "",
      usage: null,
      error: null,
      incompleteReason: null,
      reason: "retries-exhausted",
    };
    const { run, error } = await rehydrateFile(saved, saved.runId);
    expect(error).toBeUndefined();
    expect((await run?.result())?.reason).toBe("retries-exhausted");
  });

  it("an older envelope holding both still reads and restores done", async () => {
    const old = sample('done:"done"') as PersistedRun;
    const result = old.snapshot.context.result;
    (old.snapshot as Record<string, unknown>).output = result;
    const { run, error } = await rehydrateFile(old, old.runId);
    expect(error).toBeUndefined();
    expect(run?.state).toBe("done");
    expect(await run?.result()).toEqual(result);
  });
});
