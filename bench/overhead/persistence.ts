/**
 * Checkpoint costs and resume latency.
 *
 * - A detached run: a streaming baton run, read for a while, then `detach()`ed into a store, so
 *   that every round resumes the same response from the same cursor.
 * - Save / load / rehydrate per store, µs per op: `store.save(toEnvelope(snapshot))` as the
 *   checkpointer does it, `store.load(runId)`, and `rehydrateRun({ runId })` (against a
 *   client port that never answers, so no network is timed).
 * - Resume latency: `rehydrateRun` to the first resumed delta, vs the raw
 *   `responses.retrieve(id, { stream: true, starting_after })` call to its first event.
 */
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import {
  createRunMachine,
  type PersistedRun,
  type ResponsesClient,
  type RunStore,
  rehydrateRun,
  restoreRunActor,
  startRun,
  toEnvelope,
} from "baton";
import type OpenAI from "openai";
import { check, median, now, sleep } from "./stats.js";
import { MODEL } from "./streaming.js";

/** A run detached mid-stream; its last save is in `store`. */
export interface DetachedRun {
  runId: string;
  responseId: string;
  /** The cursor of the save: the last event delivered. */
  sequenceNumber: number;
  persisted: PersistedRun;
}

/**
 * Starts a streaming run of `outputTokens` deltas, reads `deltasBefore` of them, detaches, and
 * waits until the response is finished on the server (so every resume replays from the log).
 */
export async function detachedRun(
  client: OpenAI,
  store: RunStore,
  outputTokens: number,
  deltasBefore: number,
): Promise<DetachedRun> {
  const run = startRun(
    { client, store },
    { model: MODEL, input: "resume latency", stream: true, maxOutputTokens: outputTokens },
  );
  await new Promise<void>((resolve) => {
    // Deltas come in pieces of several events: wait until they cover event `deltasBefore`.
    const subscription = run.on("delta", (delta) => {
      if ((delta.sequenceNumber ?? 0) >= deltasBefore) {
        subscription.unsubscribe();
        resolve();
      }
    });
  });
  await run.detach();
  const persisted = await store.load(run.id);
  check(persisted !== undefined, "the detached run was not saved");
  const { responseId, sequenceNumber } = persisted.snapshot.context;
  check(responseId !== null && sequenceNumber !== null, "the detached run has no cursor");
  for (let i = 0; i < 200; i++) {
    const response = await client.responses.retrieve(responseId);
    if (response.status !== "queued" && response.status !== "in_progress") {
      return { runId: run.id, responseId, sequenceNumber, persisted };
    }
    await sleep(25);
  }
  throw new Error("the detached run's response did not finish on the server");
}

/** A call that never answers, and rejects once its signal aborts (as a real client does). */
const never = (...args: unknown[]): Promise<never> =>
  new Promise<never>((_, reject) => {
    const signal = args.at(-1) as AbortSignal;
    signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
  });
/** A client port that never answers: restoring starts a call that is never timed. */
export const SILENT_CLIENT: ResponsesClient = {
  create: never,
  createStream: never,
  retrieve: never,
  streamFrom: never,
  cancel: never,
};

/**
 * Median µs of `op`, each call timed alone, after `warmup` untimed calls; and the median of
 * its synchronous part (from the call to its return of a promise): the time it blocks the
 * event loop.
 */
async function timeOps(
  ops: number,
  op: () => Promise<void>,
  warmup = 5,
): Promise<{ us: number; blockingUs: number }> {
  for (let i = 0; i < warmup; i++) await op();
  const samples: number[] = [];
  const blocking: number[] = [];
  for (let i = 0; i < ops; i++) {
    const start = now();
    const pending = op();
    blocking.push((now() - start) * 1000);
    await pending;
    samples.push((now() - start) * 1000);
  }
  return { us: median(samples), blockingUs: median(blocking) };
}

export interface StoreOpCosts {
  saveUs: number;
  /** The part of a save that blocks the event loop. */
  saveBlockingUs: number;
  loadUs: number;
  rehydrateUs: number;
  /** Of a rehydrate: building the run machine for the client (`createRunMachine`). */
  machineUs: number;
  /** Bytes of one save, as JSON. */
  saveBytes: number;
}

/** Save, load and rehydrate costs of one store, for the detached run's snapshot. */
export async function storeOpCosts(
  store: RunStore,
  detached: DetachedRun,
  ops: number,
): Promise<StoreOpCosts> {
  // A live actor holding the detached snapshot, saved the way the checkpointer saves it.
  const actor = restoreRunActor(createRunMachine(SILENT_CLIENT), detached.persisted.snapshot);
  const save = await timeOps(ops, () => store.save(toEnvelope(actor.getPersistedSnapshot())));
  actor.stop();
  // Put the detached save back.
  await store.save(detached.persisted);
  const load = await timeOps(ops, async () => {
    check((await store.load(detached.runId)) !== undefined, "load found nothing");
  });
  const rehydrate = await timeOps(ops, async () => {
    // Load and restore, as before: a run id with the store in the host would also start saving.
    const persisted = await store.load(detached.runId);
    if (!persisted) throw new Error("load found nothing");
    const run = await rehydrateRun({ client: SILENT_CLIENT }, { persisted });
    run.actor.stop();
  });
  const machine = await timeOps(ops, async () => {
    createRunMachine(SILENT_CLIENT);
  });
  return {
    saveUs: save.us,
    saveBlockingUs: save.blockingUs,
    loadUs: load.us,
    rehydrateUs: rehydrate.us,
    machineUs: machine.us,
    saveBytes: Buffer.byteLength(JSON.stringify(detached.persisted)),
  };
}

/** Raw: the `retrieve(..., { stream: true, starting_after })` call to its first event, ms. */
export async function rawResume(client: OpenAI, detached: DetachedRun): Promise<number> {
  const start = now();
  const stream = await client.responses.retrieve(detached.responseId, {
    stream: true,
    starting_after: detached.sequenceNumber,
  });
  const first = await stream[Symbol.asyncIterator]().next();
  const ms = now() - start;
  stream.controller.abort();
  check(!first.done, "the raw resumed stream had no event");
  check(
    first.value.sequence_number === detached.sequenceNumber + 1,
    `the raw resume started at ${first.value.sequence_number}, not after ${detached.sequenceNumber}`,
  );
  return ms;
}

/** Baton: `rehydrateRun({ client, store }, { runId })` to the first resumed delta, ms. */
export async function batonResume(
  client: OpenAI,
  store: RunStore,
  detached: DetachedRun,
): Promise<number> {
  // Every round starts from the same save.
  await store.save(detached.persisted);
  const start = now();
  const run = await rehydrateRun({ client, store }, { runId: detached.runId });
  const first = await new Promise<number | undefined>((resolve, reject) => {
    let settled = false;
    const subscription = run.on("delta", (delta) => {
      subscription.unsubscribe();
      settled = true;
      resolve(delta.sequenceNumber);
    });
    // After `detach()` below, `result()` settles too (with no result): ignored then.
    run.result().then(
      (result) => {
        if (!settled) reject(new Error(`the rehydrated run ended '${result?.outcome}' first`));
      },
      (err: unknown) => {
        if (!settled) reject(err);
      },
    );
  });
  const ms = now() - start;
  await run.detach();
  check(
    first === detached.sequenceNumber + 1,
    `baton resumed at ${first}, not after ${detached.sequenceNumber}`,
  );
  return ms;
}

/** What a hand-written loop persists: the response id and the cursor, as JSON. */
interface RawCursor {
  responseId: string;
  sequenceNumber: number;
}

export interface RawCursorCosts {
  saveUs: number;
  saveBlockingUs: number;
  loadUs: number;
}

/**
 * The baseline of the store ops: a hand-written loop saving and loading its cursor, in a Map
 * (memory) or as a file written as durably as `FileRunStore` writes (temp file, fsync, rename).
 */
export async function rawCursorOpCosts(
  kind: "memory" | "file",
  directory: string,
  detached: DetachedRun,
  ops: number,
): Promise<RawCursorCosts> {
  const cursor: RawCursor = {
    responseId: detached.responseId,
    sequenceNumber: detached.sequenceNumber,
  };
  if (kind === "memory") {
    const map = new Map<string, string>();
    const save = await timeOps(ops, async () => {
      map.set(detached.runId, JSON.stringify(cursor));
    });
    const load = await timeOps(ops, async () => {
      const text = map.get(detached.runId);
      check(text !== undefined && JSON.parse(text).responseId === cursor.responseId, "raw load");
    });
    return { saveUs: save.us, saveBlockingUs: save.blockingUs, loadUs: load.us };
  }
  const path = join(directory, `${detached.runId}.cursor.json`);
  let n = 0;
  const save = await timeOps(ops, async () => {
    const temporary = `${path}.${n++}.tmp`;
    const file = await open(temporary, "w");
    try {
      await file.writeFile(JSON.stringify(cursor));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  });
  const load = await timeOps(ops, async () => {
    const parsed = JSON.parse(await readFile(path, "utf8")) as RawCursor;
    check(parsed.responseId === cursor.responseId, "raw file load");
  });
  return { saveUs: save.us, saveBlockingUs: save.blockingUs, loadUs: load.us };
}
