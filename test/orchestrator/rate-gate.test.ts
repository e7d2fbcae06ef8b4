/**
 * Shared rate-limit backoff. Against the emulator: a 429 burst with `retry-after-ms` pauses
 * creates at the server until the time it names, then they come back one at a time (counted
 * per 100 ms from `emulator.requests[].at`); the same burst without the orchestrator has every
 * run retry at once (the herd the gate prevents). On a scripted port: a 429 to a poll holds
 * creates too, cancels are never held, a call held too long is refused as unsent (429).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  ClientFailureError,
  type ResponseState,
  type ResponsesClient,
  startRun,
} from "../../src/index.js";
import { createOrchestrator, RateGate } from "../../src/orchestrator/index.js";
import { clientFor, emulatorFor, FAST } from "../support/run-harness.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const WAIT_MS = 400;
const RUNS = 8;

function createTimes(e: Emulator): number[] {
  return e.requests
    .filter((r) => r.kind === "create" || r.kind === "create-stream")
    .map((r) => r.at);
}

/** The most creates in any 100 ms window (starting at a create) at or after `from`. */
function densest(times: number[], from: number): number {
  const after = times.filter((t) => t >= from).sort((a, b) => a - b);
  let max = 0;
  for (const t of after) max = Math.max(max, after.filter((u) => u >= t && u < t + 100).length);
  return max;
}

describe("rate gate: one backoff for the fleet", () => {
  it("a 429 burst pauses creates at the server until the time named, then no herd", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 2, outputTokens: 5 });
    emulator.faults.add({
      on: ["create", "create-stream"],
      times: RUNS,
      status: { code: 429, retryAfterMs: WAIT_MS },
    });
    const o = createOrchestrator({ client: clientFor(emulator), concurrency: RUNS, options: FAST });
    const pauses: number[] = [];
    o.on("fleet.rate-limited", (e) => pauses.push(e.until));
    const resumed: number[] = [];
    o.on("fleet.resumed", () => resumed.push(Date.now()));
    const runs = [];
    for (let i = 0; i < RUNS; i++)
      runs.push(await o.startRun({ model: "o3", input: `r${i}`, stream: i % 2 === 0 }));
    const results = await Promise.all(runs.map((r) => r.result()));
    expect(results.map((r) => r.outcome)).toEqual(Array(RUNS).fill("completed"));
    expect(pauses.length).toBeGreaterThan(0);
    expect(resumed.length).toBeGreaterThan(0);

    const times = createTimes(emulator);
    const first429 = Math.min(...pauses) - WAIT_MS;
    const lastUntil = Math.max(...pauses);
    // Paused: nothing reached the server between the first 429's answer and the time named
    // (a 10 ms margin for creates already on the wire).
    // The first creates went out before any 429 was answered (some still on the wire when the
    // first came back); every create after them waited for the time named.
    const sorted = [...times].sort((a, b) => a - b);
    const retries = sorted.slice(RUNS);
    expect(sorted[RUNS - 1]).toBeLessThan(first429 + WAIT_MS / 2);
    expect(Math.min(...retries)).toBeGreaterThanOrEqual(lastUntil - 5);
    // After the pause: a probe, then one every 25 ms: at most 5 in any 100 ms.
    expect(densest(times, lastUntil - 5)).toBeLessThanOrEqual(5);
    // Every run created once after its 429 (8 refused + 8 accepted), none more.
    expect(times).toHaveLength(2 * RUNS);
    await o.drain();
  });

  it("without the orchestrator the same burst comes back as a herd (what the gate prevents)", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 2, outputTokens: 5 });
    emulator.faults.add({
      on: ["create", "create-stream"],
      times: RUNS,
      status: { code: 429, retryAfterMs: WAIT_MS },
    });
    const client = clientFor(emulator);
    const runs = Array.from({ length: RUNS }, (_, i) =>
      startRun({ client }, { model: "o3", input: `h${i}`, stream: true }, { options: FAST }),
    );
    await Promise.all(runs.map((r) => r.result()));
    const times = createTimes(emulator).sort((a, b) => a - b);
    const retries = times.slice(RUNS);
    // Each run retries WAIT_MS after its own 429: as the burst came, so it comes back (on a
    // quiet machine all 8 within a few ms; at least half of them within 100 ms under load).
    expect(densest(retries, 0)).toBeGreaterThanOrEqual(RUNS / 2);
  });
});

/** A scripted port: each call resolves or rejects as the test says. */
function scriptedPort() {
  const calls: string[] = [];
  let failNext: ClientFailureError | undefined;
  const response: ResponseState = {
    id: "resp_1",
    status: "in_progress",
    outputText: "",
    usage: null,
    error: null,
    incompleteReason: null,
    createdAt: null,
  };
  const answer = async <T>(name: string, value: T): Promise<T> => {
    calls.push(name);
    const failure = failNext;
    failNext = undefined;
    if (failure) throw failure;
    return value;
  };
  const port: ResponsesClient = {
    create: () => answer("create", response),
    createStream: () => Promise.reject(new Error("unused")),
    retrieve: () => answer("retrieve", { response }),
    streamFrom: () => Promise.reject(new Error("unused")),
    cancel: () => answer("cancel", response),
  };
  return {
    port,
    calls,
    rateLimitNext(retryAfterMs?: number) {
      failNext = new ClientFailureError({
        kind: "rate-limited",
        status: 429,
        message: "slow down",
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    },
  };
}

const signal = () => new AbortController().signal;

describe("rate gate on a scripted port", () => {
  it("a 429 to a poll holds creates and polls; cancels still go", async () => {
    const script = scriptedPort();
    const gate = new RateGate(script.port, { spacingMs: 5 });
    const events: string[] = [];
    gate.subscribe((e) => events.push(e.type));
    script.rateLimitNext(120);
    await expect(gate.client.retrieve("resp_1", signal())).rejects.toBeInstanceOf(
      ClientFailureError,
    );
    expect(gate.pausedUntil).not.toBeNull();
    const started = Date.now();
    const held = [
      gate.client.create({ model: "o3", input: "x" }, signal()),
      gate.client.retrieve("resp_1", signal()),
    ];
    await gate.client.cancel("resp_1", signal()); // not held
    expect(script.calls).toEqual(["retrieve", "cancel"]);
    expect(gate.held).toBe(2);
    await Promise.all(held);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    expect(script.calls).toEqual(["retrieve", "cancel", "create", "retrieve"]);
    expect(events).toEqual(["paused", "resumed"]);
    gate.close();
  });

  it("a 429 naming no wait pauses for the default; a 429 to the probe starts a new wait", async () => {
    const script = scriptedPort();
    const gate = new RateGate(script.port, { defaultWaitMs: 60, spacingMs: 1 });
    script.rateLimitNext();
    await expect(gate.client.create({ model: "o3", input: "x" }, signal())).rejects.toThrow();
    const until = gate.pausedUntil ?? 0;
    expect(until - Date.now()).toBeGreaterThan(40);
    script.rateLimitNext(60); // the probe is refused again
    const probe = gate.client.create({ model: "o3", input: "probe" }, signal());
    const next = gate.client.create({ model: "o3", input: "next" }, signal());
    await expect(probe).rejects.toThrow();
    const second = gate.pausedUntil ?? 0;
    expect(second).toBeGreaterThan(until);
    await next;
    expect(Date.now()).toBeGreaterThanOrEqual(second - 2);
    gate.close();
  });

  it("the read-back of a cancel is not held, other reads are", async () => {
    const script = scriptedPort();
    const gate = new RateGate(script.port, { maxHoldMs: 50 });
    gate.pause({ kind: "rate-limited", message: "elsewhere", retryAfterMs: 10_000 });
    await gate.client.cancel("resp_1", signal());
    await gate.client.retrieve("resp_1", signal()); // confirms the cancel: goes at once
    expect(script.calls).toEqual(["cancel", "retrieve"]);
    await expect(gate.client.retrieve("resp_2", signal())).rejects.toMatchObject({
      failure: { status: 429 },
    });
    expect(script.calls).toEqual(["cancel", "retrieve"]);
    gate.close();
  });

  it("a call held past maxHoldMs is refused as an unsent 429 with the wait left", async () => {
    const script = scriptedPort();
    const gate = new RateGate(script.port, { maxHoldMs: 30 });
    gate.pause({ kind: "rate-limited", message: "elsewhere", retryAfterMs: 500 });
    const err = await gate.client.create({ model: "o3", input: "x" }, signal()).catch((e) => e);
    expect(err).toBeInstanceOf(ClientFailureError);
    expect(err.failure).toMatchObject({ kind: "rate-limited", status: 429 });
    expect(err.failure.retryAfterMs).toBeGreaterThan(400);
    expect(script.calls).toEqual([]); // never sent
    gate.close();
  });
});
