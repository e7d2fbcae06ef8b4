/**
 * A `stream.events` batch is read against the cursor once, by the stream actor, and the
 * machine decides on that reading: its guards and its action read the event's reading (no
 * memo shared between runs). Pure transitions: nothing runs.
 */
import { describe, expect, it } from "vitest";
import { initialTransition, transition } from "xstate";
import { runMachine } from "../../src/machines/run-machine.js";
import type { RunMachineEvent } from "../../src/machines/run-types.js";
import { cursorAfter, readBatch } from "../../src/machines/stream-batch.js";
import type { ResponseState, ResponseStreamEvent } from "../../src/services/responses-client.js";

const response = (status: ResponseState["status"], outputText = ""): ResponseState => ({
  id: "resp_1",
  status,
  outputText,
  usage: null,
  error: null,
  incompleteReason: null,
  createdAt: null,
});
const delta = (n: number): ResponseStreamEvent => ({
  kind: "delta",
  sequenceNumber: n,
  text: `t${n}`,
});
const terminal = (n: number): ResponseStreamEvent => ({
  kind: "terminal",
  sequenceNumber: n,
  response: response("completed", "t1t2"),
});
const batch = (cursor: number | null, events: ResponseStreamEvent[]): RunMachineEvent => ({
  type: "stream.events",
  events,
  reading: readBatch(cursor, events),
});

/** A stream run right after `response.created` (#0): in `streaming`, cursor 0. */
function streamingRun() {
  let [snapshot] = initialTransition(runMachine, {
    runId: "run_reading",
    mode: "stream",
    request: { model: "o3", input: "x" },
  });
  [snapshot] = transition(runMachine, snapshot, { type: "run.start" });
  [snapshot] = transition(runMachine, snapshot, {
    type: "xstate.done.actor.createStream",
    output: { response: response("queued"), sequenceNumber: 0 },
  } as never);
  expect(snapshot.value).toEqual("streaming");
  return snapshot;
}

describe("a batch's one reading", () => {
  it("moves the cursor to its last accepted event", () => {
    const [next] = transition(runMachine, streamingRun(), batch(0, [delta(1), delta(2)]));
    expect(next.value).toBe("streaming");
    expect(next.context.sequenceNumber).toBe(2);
    expect(next.context.deliveredChars).toBe(4);
  });

  it("a replayed batch changes nothing", () => {
    const before = streamingRun();
    const [next] = transition(runMachine, before, batch(0, [{ ...delta(0) }]));
    expect(next.context).toEqual(before.context);
  });

  it("a gap interrupts after what came before it; the terminal event ends the run", () => {
    const [gapped] = transition(runMachine, streamingRun(), batch(0, [delta(1), delta(3)]));
    expect(gapped.value).toEqual({ interrupted: "checking" });
    expect(gapped.context.sequenceNumber).toBe(1);
    expect(gapped.context.interruption).toBe("gap");

    const [finished] = transition(
      runMachine,
      streamingRun(),
      batch(0, [delta(1), delta(2), terminal(3)]),
    );
    expect(finished.status).toBe("done");
    expect(finished.context.sequenceNumber).toBe(3);
    expect(finished.context.result?.outcome).toBe("completed");
    expect(finished.context.result?.text).toBe("t1t2");
  });

  it("cursorAfter is where the reader reads the next batch from", () => {
    expect(cursorAfter(0, readBatch(0, [delta(1), delta(2)]))).toBe(2);
    expect(cursorAfter(5, readBatch(5, [delta(4), delta(5)]))).toBe(5);
    expect(cursorAfter(null, readBatch(null, [delta(0)]))).toBe(0);
    expect(cursorAfter(null, readBatch(null, [delta(1)]))).toBeNull();
  });
});
