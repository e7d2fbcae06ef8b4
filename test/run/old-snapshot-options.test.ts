/**
 * The machine's changes for issues 12.2, 12.3 and 13.4 added run options (`requestTimeoutMs`,
 * `cancelGraceMs`) and the substate `interrupted.checking` without bumping
 * RUN_MACHINE_VERSION: a snapshot saved before them (its options lack the new keys; a broken
 * stream waits in `interrupted.backoff`) still restores and finishes, the new options read
 * their defaults.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { type PersistedRun, rehydrateRun, startRun } from "../../src/index.js";
import { emulatorClient, emulatorWithFaults } from "../../src/testing/index.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

/** A save as an older baton wrote it: without the options added since. */
function asOlderSave(persisted: PersistedRun, value?: unknown): PersistedRun {
  const copy = JSON.parse(JSON.stringify(persisted)) as PersistedRun;
  const options = copy.snapshot.context.options as unknown as Record<string, unknown>;
  delete options.requestTimeoutMs;
  delete options.cancelGraceMs;
  if (value !== undefined) {
    // Saved in another state, the run holds no stream child (the validator refuses one).
    (copy.snapshot as unknown as { value: unknown }).value = value;
    copy.snapshot.children = {};
  }
  return copy;
}

describe("snapshots saved before the new options and states", () => {
  it.each([
    ["streaming", undefined],
    ["interrupted.backoff", { interrupted: "backoff" }],
  ])("a run saved in %s restores and finishes", async (_name, value) => {
    emulator = await emulatorWithFaults([], { tokenDelayMs: 5, outputTokens: 60 });
    const first = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      stream: true,
    });
    let seen = "";
    first.on("delta", (d) => {
      seen += d.text;
    });
    while (seen.length < 20) await new Promise((resolve) => setTimeout(resolve, 5));
    const saved = first.toPersisted();
    first.actor.stop();
    const again = await rehydrateRun(
      { client: emulatorClient(emulator) },
      { persisted: asOlderSave(saved, value) },
    );
    let rest = "";
    again.on("delta", (d) => {
      rest += d.text;
    });
    const result = await again.result();
    expect(result.outcome).toBe("completed");
    const savedChars = saved.snapshot.context.deliveredChars ?? 0;
    expect(seen.slice(0, savedChars) + rest).toBe(result.text);
    expect(emulator.countCreates()).toBe(1);
  });

  it("an older save's cancel for the deadline ends on the default grace", async () => {
    emulator = await emulatorWithFaults([], { tokenDelayMs: 20, outputTokens: 400 });
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: "x",
      options: { deadlineMs: 200, pollIntervalMs: 20 },
    });
    while (run.responseId === null) await new Promise((resolve) => setTimeout(resolve, 5));
    const saved = asOlderSave(run.toPersisted());
    run.actor.stop();
    const result = await (
      await rehydrateRun({ client: emulatorClient(emulator) }, { persisted: saved })
    ).result();
    // The emulator confirms the cancel at once: the deadline's cancel, with no grace needed.
    expect(result.outcome).toBe("cancelled");
    expect(result.cancelledBy).toBe("deadline");
  });
});
