/**
 * Issue 12.3 in the CLI: a stalled cancel or retrieve made `baton cancel` / `baton status` wait
 * 60 s and then say the server could not be reached, though it could. Each request of theirs is
 * bounded (`BATON_REQUEST_TIMEOUT_MS`, default 30 s) and its failure says "timed out".
 */
import OpenAI from "openai";
import { afterEach, expect, it } from "vitest";
import { encodeContinuationToken } from "../../src/continuation-token.js";
import type { Emulator } from "../../src/emulator/index.js";
import { emulatorFor, runBaton, SECRET_KEY, tempDir } from "./cli-harness.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

it.each([
  ["cancel", "cancel"],
  ["status", "retrieve"],
] as const)(
  "baton %s against a server whose %s never answers: 'timed out', exit 3",
  async (command, on) => {
    emulator = await emulatorFor({ tokenDelayMs: 50, outputTokens: 2_000 });
    const client = new OpenAI({ baseURL: emulator.url, apiKey: SECRET_KEY });
    const created = await client.responses.create({ model: "o3", input: "x", background: true });
    emulator.faults.add({ on, stall: { afterEvents: 0 } });
    const token = encodeContinuationToken({ responseId: created.id });
    const store = await tempDir();
    const finished = await runBaton(
      [command, token, "--store", store, "--base-url", emulator.url],
      {
        env: { OPENAI_API_KEY: SECRET_KEY, BATON_REQUEST_TIMEOUT_MS: "300" },
      },
    );
    expect(finished.stderr).toMatch(/timed out/);
    expect(finished.stderr).not.toMatch(/cannot reach/);
    expect(finished.code).toBe(3);
  },
);
