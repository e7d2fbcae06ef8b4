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
export {
  assertValidRunId,
  isValidResponseId,
  isValidRunId,
  validateStartInput,
} from "./input-validation.js";
export { createRunActors, type RunActors } from "./machines/run-actors.js";
export {
  createRunMachine,
  RUN_MACHINE_VERSION,
  type RunMachine,
  runMachine,
} from "./machines/run-machine.js";
export * from "./machines/run-types.js";
export { machineMermaid, runMachineMermaid } from "./machines/state-diagram.js";
export {
  Checkpointer,
  type CheckpointOptions,
  canStage,
  DEFAULT_CHECKPOINT_OPTIONS,
  type StagedSave,
  type StagingRunStore,
} from "./persistence/checkpointer.js";
export {
  type PersistedRun,
  RUN_STATES,
  type RunStateName,
  readEnvelope,
  responseIdOf,
  toEnvelope,
} from "./persistence/envelope.js";
export { restoreRunActor } from "./persistence/restore.js";
export { validateRunSnapshot } from "./persistence/snapshot-validation.js";
export {
  type ClientLike,
  type ConsumerCursor,
  newRunId,
  type RehydrateSource,
  Run,
  type RunDelta,
  type RunEventOf,
  type RunHostOptions,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "./run.js";
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
export { FileRunStore } from "./services/stores/file-run-store.js";
export { MemoryRunStore } from "./services/stores/memory-run-store.js";
export {
  listEntries,
  type RunStore,
  type RunStoreEntry,
  type RunSummary,
} from "./services/stores/run-store.js";
