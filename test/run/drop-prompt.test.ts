/**
 * Issue 13.14: the prompt stayed in the store after a failed create. A run that ends without
 * a response it could still create (a create refused, failed, maybe made, or cancelled before
 * it) now drops `context.request` as it ends, so the last save holds no prompt.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator, FaultRule } from "../../src/emulator/index.js";
import { MemoryRunStore, startRun } from "../../src/index.js";
import { emulatorClient, emulatorWithFaults } from "../../src/testing/index.js";

const PROMPT = "a secret plan that must not stay on disk";
let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

describe("a failed create keeps no prompt", () => {
  it.each<[string, FaultRule, string]>([
    ["refused (400)", { on: "create", status: { code: 400 } }, "create-failed"],
    [
      "failed after the server acted (500)",
      { on: "create", status: { code: 500, afterHandling: true } },
      "create-unknown",
    ],
    [
      "rate-limited past the retries",
      { on: "create", status: { code: 429, retryAfterMs: 1 }, times: 3 },
      "retries-exhausted",
    ],
  ])("%s", async (_name, rule, reason) => {
    emulator = await emulatorWithFaults([rule]);
    const store = new MemoryRunStore();
    const run = startRun({
      client: emulatorClient(emulator),
      model: "o3",
      input: PROMPT,
      store,
      options: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, jitter: 0 } },
    });
    const result = await run.result();
    expect(result.outcome).toBe("gave-up");
    expect(["create-failed", "create-unknown", "retries-exhausted"]).toContain(result.reason);
    if (reason !== "retries-exhausted") expect(result.reason).toBe(reason);
    await run.flush();
    const saved = await store.load(run.id);
    expect(saved?.state).toBe("done");
    expect(saved?.snapshot.context.request).toBeNull();
    expect(JSON.stringify(saved)).not.toContain(PROMPT);
    expect(JSON.stringify(run.toPersisted())).not.toContain(PROMPT);
  });

  it("a run cancelled while waiting to create again keeps no prompt", async () => {
    emulator = await emulatorWithFaults([{ on: "create", status: { code: 429, retryAfter: 5 } }]);
    const store = new MemoryRunStore();
    const run = startRun({ client: emulatorClient(emulator), model: "o3", input: PROMPT, store });
    while (run.getSnapshot().context.attempts === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const result = await run.cancel();
    expect(result.outcome).toBe("cancelled");
    await run.flush();
    expect(JSON.stringify(await store.load(run.id))).not.toContain(PROMPT);
  });
});
