/** The host floor: starting and rehydrating runs, the `Run` handle, delivery. */
export type { ConsumerCursor } from "./consumer-cursor.js";
export type { DeliveryOptions, RunDelta } from "./delivery.js";
export {
  type AttachTarget,
  attachRun,
  type ClientLike,
  checkRun,
  loadEntries,
  loadRun,
  machineFor,
  type NewRunOptions,
  newRunId,
  prepareRun,
  type RehydrateSource,
  type RunHost,
  type RunRequest,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "./host.js";
export { Run, type RunEventOf, type RunHostOptions } from "./run.js";
