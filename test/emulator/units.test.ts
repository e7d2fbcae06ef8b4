/** The emulator's small modules on their own: clock, randomness, text, store, fault queue. */
import { describe, expect, it } from "vitest";
import { createManualClock } from "../../src/emulator/clock.js";
import { FaultRules, parseScript } from "../../src/emulator/faults.js";
import {
  createTextGenerator,
  estimateTokens,
  extractInputText,
} from "../../src/emulator/generator.js";
import { createPrng, hashString, newId } from "../../src/emulator/random.js";
import { newRecord, ResponseStore } from "../../src/emulator/store.js";

describe("manual clock", () => {
  it("moves only when told", () => {
    const clock = createManualClock(1_000);
    expect(clock.now()).toBe(1_000);
    clock.advance(500);
    expect(clock.now()).toBe(1_500);
    clock.set(10);
    expect(clock.now()).toBe(10);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.set(Number.NaN)).toThrow(RangeError);
  });
});

describe("randomness", () => {
  it("hash and PRNG are stable for a seed and differ across seeds", () => {
    expect(hashString("abc", 1)).toBe(hashString("abc", 1));
    expect(hashString("abc", 1)).not.toBe(hashString("abc", 2));
    const a = createPrng(9);
    const b = createPrng(9);
    const seqA = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(seqA);
    for (const value of seqA) expect(value).toBeGreaterThanOrEqual(0);
    for (const value of seqA) expect(value).toBeLessThan(1);
  });

  it("ids are unique and shaped like the API's", () => {
    const ids = new Set(Array.from({ length: 1_000 }, () => newId("resp")));
    expect(ids.size).toBe(1_000);
    for (const id of ids) expect(id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(newId("req", 16)).toMatch(/^req_[0-9a-f]{32}$/);
  });
});

describe("text generator", () => {
  it("is deterministic, starts with a capital, ends sentences with periods", () => {
    const take = (gen: { next(): string }, n: number) =>
      Array.from({ length: n }, () => gen.next());
    const first = take(createTextGenerator("in", "sys", 1), 60);
    expect(take(createTextGenerator("in", "sys", 1), 60)).toEqual(first);
    expect(take(createTextGenerator("in", null, 1), 60)).not.toEqual(first);
    expect(first[0]).toMatch(/^[A-Z][a-z]*$/);
    for (const token of first.slice(1)) expect(token).toMatch(/^( [A-Za-z]+|\.)$/);
    expect(first).toContain(".");
  });

  it("flattens inputs and estimates tokens", () => {
    expect(extractInputText("plain")).toBe("plain");
    expect(
      extractInputText([
        { role: "system", content: "a" },
        { role: "user", content: [{ type: "input_text", text: "b" }] },
      ]),
    ).toBe("a\nb");
    expect(extractInputText(undefined)).toBe("");
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abcdefgh")).toBe(2);
  });
});

describe("store", () => {
  const fields = (id: string, createdAtMs: number) => ({
    id,
    itemId: "msg_1",
    createdAtMs,
    background: true,
    stream: true,
    store: true,
    echo: {
      model: "m",
      instructions: null,
      maxOutputTokens: null,
      metadata: {},
      previousResponseId: null,
      temperature: 1,
      topP: 1,
    },
    inputTokens: 1,
    obfuscation: false,
    status: "queued" as const,
  });

  it("sweep releases finished logs after the replay window and removes expired records", () => {
    const clock = createManualClock(0);
    const store = new ResponseStore(clock, 600_000, 300_000);
    const finished = newRecord(fields("resp_a", 0));
    finished.log.push("event: x\ndata: {}\n\n");
    finished.log.close();
    const running = newRecord(fields("resp_b", 0));
    running.log.push("event: x\ndata: {}\n\n");
    let stopped = false;
    running.stop = () => {
      stopped = true;
    };
    store.add(finished);
    store.add(running);

    clock.set(300_000);
    store.sweep();
    expect(finished.log.released).toBe(false);
    clock.set(300_001);
    store.sweep();
    expect(finished.log.released).toBe(true);
    expect(finished.log.frames).toEqual([]);
    expect(running.log.released).toBe(false); // still generating: sequence numbers live on
    expect(store.lookup("resp_a")).toBe(finished);

    clock.set(600_001);
    store.sweep();
    expect(store.size).toBe(0);
    expect(stopped).toBe(true);
    expect(running.log.closed).toBe(true);
  });

  it("unstored foreground records are invisible to lookup but visible to peek", () => {
    const store = new ResponseStore(createManualClock(0), 1_000);
    const record = newRecord({ ...fields("resp_c", 0), background: false, store: false });
    store.add(record);
    expect(store.lookup("resp_c")).toBeUndefined();
    expect(store.peek("resp_c")).toBe(record);
  });
});

describe("fault queue", () => {
  it("consumes rules by kind, response id and times; drop rules skip JSON kinds", () => {
    const faults = new FaultRules();
    faults.add({ on: "retrieve", responseId: "resp_a", times: 2, status: { code: 500 } });
    faults.add({ on: ["create", "create-stream"], drop: { afterEvents: 1 } });
    faults.add({ on: "create", script: { outputTokens: 2 } });
    expect(faults.take("retrieve", "resp_b")).toBeUndefined();
    expect(faults.take("retrieve", "resp_a")).toMatchObject({ kind: "status" });
    expect(faults.pending[0]?.times).toBe(1);
    expect(faults.take("create", undefined)).toBeUndefined(); // the drop rule waits for SSE
    expect(faults.take("create-stream", undefined)).toEqual({ kind: "drop", afterEvents: 1 });
    expect(faults.takeScript("retrieve")).toBeUndefined();
    expect(faults.takeScript("create")).toEqual({ outputTokens: 2 });
    expect(faults.take("retrieve", "resp_a")).toMatchObject({ kind: "status" });
    expect(faults.pending).toEqual([]);
  });

  it("garbage and stall get their defaults", () => {
    const faults = new FaultRules();
    faults.add({ on: "cancel", garbage: {} });
    faults.add({ on: "cancel", stall: { afterEvents: 0 } });
    expect(faults.take("cancel", "x")).toEqual({
      kind: "garbage",
      status: 200,
      contentType: "text/html",
      body: "<html>oops</html>",
    });
    expect(faults.take("cancel", "x")).toEqual({ kind: "stall", afterEvents: 0, ms: undefined });
  });

  it("scripts are validated", () => {
    expect(parseScript('{"outputTokens":3}', "p")).toEqual({ outputTokens: 3 });
    expect(() => parseScript('{"outputTokens":-1}', "p")).toThrow(/outputTokens/);
    expect(() => parseScript("[]", "p")).toThrow(/object/);
  });
});
