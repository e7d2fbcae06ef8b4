import { describe, expect, it } from "vitest";
import { readBatch } from "../../src/machines/stream-batch.js";
import type { ResponseStreamEvent } from "../../src/services/responses-client.js";

const delta = (n: number): ResponseStreamEvent => ({
  kind: "delta",
  sequenceNumber: n,
  text: `t${n}`,
});
const terminal = (n: number): ResponseStreamEvent => ({
  kind: "terminal",
  sequenceNumber: n,
  response: {
    id: "resp_1",
    status: "completed",
    outputText: "",
    usage: null,
    error: null,
    incompleteReason: null,
    createdAt: null,
  },
});
const seqs = (events: readonly ResponseStreamEvent[]) => events.map((e) => e.sequenceNumber);

describe("readBatch", () => {
  it("takes the events that continue the cursor, in order", () => {
    const reading = readBatch(3, [delta(4), delta(5), delta(6)]);
    expect(seqs(reading.accepted)).toEqual([4, 5, 6]);
    expect(reading.end).toBeNull();
  });

  it("starts at event 0 when there is no cursor", () => {
    expect(seqs(readBatch(null, [delta(0), delta(1)]).accepted)).toEqual([0, 1]);
    expect(readBatch(null, [delta(1)]).end).toEqual({ kind: "gap" });
  });

  it("skips replayed events, also in the middle of a batch", () => {
    const reading = readBatch(5, [delta(4), delta(5), delta(6), delta(6), delta(7)]);
    expect(seqs(reading.accepted)).toEqual([6, 7]);
    expect(reading.end).toBeNull();
    expect(readBatch(5, [delta(2), delta(5)])).toEqual({ accepted: [], end: null });
  });

  it("stops at a gap, keeping what came before it", () => {
    const reading = readBatch(0, [delta(1), delta(2), delta(4), delta(5)]);
    expect(seqs(reading.accepted)).toEqual([1, 2]);
    expect(reading.end).toEqual({ kind: "gap" });
  });

  it("stops at the terminal event in order, which it does not count as accepted", () => {
    const end = terminal(3);
    const reading = readBatch(0, [delta(1), delta(2), end, delta(4)]);
    expect(seqs(reading.accepted)).toEqual([1, 2]);
    expect(reading.end).toEqual({ kind: "terminal", event: end });
  });

  it("a terminal event after a gap is a gap", () => {
    expect(readBatch(0, [delta(1), terminal(3)]).end).toEqual({ kind: "gap" });
  });
});
