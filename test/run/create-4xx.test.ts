/**
 * Issue 12.4: a 4xx on create proves nothing was created. A base URL without `/v1` (404 from
 * the emulator) and any other 4xx end the run `gave-up` / `create-failed` (nothing to pay for,
 * nothing to resume), never `create-unknown`; 408 (the server gave up reading) and 5xx stay
 * "may exist".
 */
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { startRun } from "../../src/index.js";
import { provesNothingCreated } from "../../src/services/client-failure.js";
import { emulatorClient, emulatorWithFaults } from "../../src/testing/index.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

it.each([false, true])(
  "a base URL without /v1 (404, stream %s) ends create-failed",
  async (stream) => {
    emulator = await emulatorWithFaults([]);
    const run = startRun({
      client: emulatorClient({ url: emulator.url.replace(/\/v1\/?$/, "") }),
      model: "o3",
      input: "x",
      stream,
    });
    const result = await run.result();
    expect(result.outcome).toBe("gave-up");
    expect(result.reason).toBe("create-failed");
    expect(result.failure?.status).toBe(404);
    expect(emulator.countCreates()).toBe(0);
  },
);

it("every 4xx but 408 proves nothing was created; 408 and 5xx do not", () => {
  for (let status = 400; status < 600; status++) {
    const proves = provesNothingCreated({ kind: "rejected", message: "x", status });
    expect(proves, `status ${status}`).toBe(status < 500 && status !== 408);
  }
  expect(provesNothingCreated({ kind: "unreachable", message: "x" })).toBe(true);
  expect(provesNothingCreated({ kind: "connection", message: "x" })).toBe(false);
  expect(provesNothingCreated({ kind: "timeout", message: "x" })).toBe(false);
});
