/**
 * A local emulator of the OpenAI Responses API in background mode: create, poll, stream,
 * resume (`starting_after`), cancel and delete, with deterministic text and injectable faults.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * import { startEmulator } from "baton/emulator";
 *
 * const emulator = await startEmulator();
 * const client = new OpenAI({ baseURL: emulator.url, apiKey: "test" });
 * ```
 */
export { type Clock, createManualClock, type ManualClock } from "./clock.js";
export { startEmulator } from "./server.js";
export type {
  Emulator,
  EmulatorOptions,
  FaultQueue,
  FaultRule,
  GenerationScript,
  OutputMessage,
  OutputTextPart,
  RecordedRequest,
  RequestKind,
  ResponseObject,
  ResponseStatus,
  ResponseUsage,
  StatusFault,
} from "./types.js";
