/**
 * baton: run long OpenAI Responses API calls in background mode so that nothing is lost and
 * nothing is paid for twice.
 */

// The agent-framework-style facade, and the run machine's state diagram.
export * from "./agent/index.js";
export {
  type ContinuationToken,
  decodeContinuationToken,
  encodeContinuationToken,
} from "./continuation-token.js";
export {
  BatonError,
  InvalidContinuationTokenError,
  InvalidRunInputError,
  InvalidSnapshotError,
  RunNotFoundError,
} from "./errors.js";
export { assertValidRunId, isValidResponseId, isValidRunId } from "./input-validation.js";
export { createRunActors, type RunActors } from "./machines/run-actors.js";
export {
  createRunMachine,
  type RunMachine,
  runMachine,
} from "./machines/run-machine.js";
export { checkRunOptions, validateStartInput } from "./machines/run-options.js";
export {
  RUN_MACHINE_VERSION,
  RUN_STATES,
  type RunStateName,
  topState,
} from "./machines/run-state.js";
export * from "./machines/run-types.js";
export { machineMermaid, runMachineMermaid } from "./machines/state-diagram.js";
export * from "./orchestrator/index.js";
export {
  Checkpointer,
  type CheckpointOptions,
  DEFAULT_CHECKPOINT_OPTIONS,
} from "./persistence/checkpointer.js";
export {
  type PersistedRun,
  readEnvelope,
  responseIdOf,
  toEnvelope,
} from "./persistence/envelope.js";
export {
  canStage,
  listEntries,
  type RunStore,
  type RunStoreEntry,
  type RunSummary,
  type StagedSave,
  type StagingRunStore,
} from "./persistence/run-store.js";
export { validateRunSnapshot } from "./persistence/snapshot-validation.js";
export {
  type AttachTarget,
  attachRun,
  type ClientLike,
  type ConsumerCursor,
  checkRun,
  loadEntries,
  loadRun,
  type NewRunOptions,
  newRunId,
  prepareRun,
  type RehydrateSource,
  Run,
  type RunDelta,
  type RunEventOf,
  type RunHost,
  type RunHostOptions,
  type RunRequest,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "./run/index.js";
export { restoreRunActor } from "./run/restore.js";
export {
  type ClientFailure,
  ClientFailureError,
  type ClientFailureKind,
  classifyClientError,
  MAX_SERVER_WAIT_MS,
  ProtocolError,
} from "./services/client-failure.js";
export {
  type OpenAIResponsesLike,
  openAIResponsesClient,
} from "./services/openai-responses-client.js";
export { redactSecrets } from "./services/redact.js";
export * from "./services/responses-client.js";
export { FileRunStore } from "./stores/file-run-store.js";
export { MemoryRunStore } from "./stores/memory-run-store.js";
