/**
 * Issue 13.1 (the checkpointer's part): a snapshot the checkpointer cannot turn into an envelope
 * is a failed save reported to `onError`, never an unhandled rejection that would take the
 * process down (Node ends on one by default).
 */
import { expect, it } from "vitest";
import { createActor, createMachine } from "xstate";
import { MemoryRunStore } from "../../src/index.js";
import { Checkpointer } from "../../src/persistence/checkpointer.js";

it("a snapshot that is not a run's is an onError, not an unhandled rejection", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    // Another machine's actor: its state 'a' is no state of the run machine.
    const actor = createActor(createMachine({ initial: "a", states: { a: {} } })).start();
    const errors: unknown[] = [];
    const checkpointer = new Checkpointer(actor, new MemoryRunStore(), {
      onError: (err) => errors.push(err),
    });
    checkpointer.start();
    await checkpointer.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).name).toBe("InvalidSnapshotError");
    expect(unhandled).toEqual([]);
    checkpointer.stop();
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});
