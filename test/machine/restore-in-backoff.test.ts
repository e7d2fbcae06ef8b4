/**
 * A run saved while it waits to create again (`started.backoff`: entered only after a failure
 * that proves nothing was created, a 429 or a 4xx refusal of the create) restores into that wait
 * and creates once it is over: it is not a create of unknown outcome. Before the fix a restore
 * there took `started`'s own `run.restored` and ended `gave-up` / `create-unknown` (found by the
 * orchestrator's fleet fault schedules: a drain during a 429 burst). Both modes, both
 * `onUnknownCreate` policies: one create reaches the server, the text is the response's.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { MemoryRunStore, rehydrateRun, startRun } from "../../src/index.js";
import { clientFor, emulatorFor, FAST, storedText, until } from "../support/run-harness.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

describe("a run saved in started.backoff", () => {
  it.each([
    [true, "fail"],
    [false, "fail"],
    [true, "recreate"],
    [false, "recreate"],
  ] as const)("stream %s, onUnknownCreate %s: waits, then creates once", async (stream, policy) => {
    emulator = await emulatorFor({
      faults: [
        { on: [stream ? "create-stream" : "create"], status: { code: 429, retryAfterMs: 400 } },
      ],
    });
    const store = new MemoryRunStore();
    const options = { ...FAST, onUnknownCreate: policy };
    const first = startRun(
      { client: clientFor(emulator), store },
      { model: "o3", input: "x", stream },
      { options },
    );
    await until(
      first,
      (run) => JSON.stringify(run.getSnapshot().value) === '{"started":"backoff"}',
    );
    const saved = await first.detach();
    expect(saved.snapshot.value).toEqual({ started: "backoff" });
    const again = await rehydrateRun({ client: clientFor(emulator), store }, { runId: first.id });
    // Still waiting: the restored run does not create before the wait the 429 named is over.
    expect(again.getSnapshot().value).toEqual({ started: "backoff" });
    const result = await again.result();
    expect(result.outcome).toBe("completed");
    expect(result.text).toBe(storedText(emulator, result.responseId as string));
    // The refused create, then the one that created.
    const creates = emulator.requests.filter(
      (r) => r.kind === (stream ? "create-stream" : "create"),
    );
    expect(creates).toHaveLength(2);
    expect(creates[1]?.responseId).toBe(result.responseId);
  });
});
