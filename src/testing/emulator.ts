/**
 * The emulator, set up for tests in one line: a fault script, fast generation, and a client.
 */
import OpenAI from "openai";
import { type Emulator, type EmulatorOptions, startEmulator } from "../emulator/index.js";
import type { FaultRule } from "../emulator/types.js";

/** Generation fast enough for tests: a delta every millisecond, 20 deltas, 5 ms queued. */
export const TEST_EMULATOR_DEFAULTS: EmulatorOptions = {
  tokenDelayMs: 1,
  queuedMs: 5,
  outputTokens: 20,
};

/**
 * Starts an emulator of the Responses API with these fault rules queued (each fires once
 * unless it says `times`), with fast test defaults ({@link TEST_EMULATOR_DEFAULTS}) under your
 * options. Close it with `await emulator.close()`.
 *
 * @example
 * ```ts
 * const emulator = await emulatorWithFaults([
 *   { on: "create-stream", drop: { afterEvents: 5 } },
 *   { on: "retrieve-stream", status: { code: 429, retryAfterMs: 20 } },
 * ]);
 * const run = startRun({ client: emulatorClient(emulator) }, { model: "o3", input: "hi", stream: true });
 * ```
 */
export async function emulatorWithFaults(
  faults: readonly FaultRule[] = [],
  options: EmulatorOptions = {},
): Promise<Emulator> {
  return startEmulator({
    ...TEST_EMULATOR_DEFAULTS,
    ...options,
    faults: [...(options.faults ?? []), ...faults],
  });
}

/**
 * An `openai` client pointed at an emulator. baton turns the SDK's retries off on every call,
 * so the client's own settings are left as they are.
 *
 * @example
 * ```ts
 * const result = await startRun({ client: emulatorClient(emulator) }, { model: "o3", input: "hi" }).result();
 * ```
 */
export function emulatorClient(
  emulator: Pick<Emulator, "url">,
  options: ConstructorParameters<typeof OpenAI>[0] = {},
): OpenAI {
  return new OpenAI({ baseURL: emulator.url, apiKey: "sk-emulator-test", ...options });
}
