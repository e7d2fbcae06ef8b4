/**
 * baton's test kit (`baton/testing`), for apps that embed the run machine:
 *
 * - {@link emulatorWithFaults}: the Responses API emulator with a fault script, in one line;
 * - {@link runTestModel} / {@link runTestPaths}: the run machine as an `xstate/graph` test model
 *   and its paths (shortest, through every transition, bounded simple), and
 *   {@link createPathRunner} to replay them against the real machine and the emulator;
 * - {@link recordRun}, {@link recordingStore} and {@link assertRunInvariants}: what must hold
 *   for every run (no text lost or repeated, one create, the right outcome, saves that
 *   rehydrate), checked on your own runs;
 * - {@link watchServer} and {@link assertFleetInvariants}: what must hold for a fleet, counted
 *   at the server (never above its limits, one response per run id, every key done once).
 *
 * @example
 * ```ts
 * import { startRun } from "baton";
 * import { assertRunInvariants, emulatorClient, emulatorWithFaults, recordRun } from "baton/testing";
 *
 * const emulator = await emulatorWithFaults([{ on: "create-stream", drop: { afterEvents: 5 } }]);
 * const run = startRun({ client: emulatorClient(emulator) }, { model: "o3", input: "hi", stream: true });
 * const recording = recordRun(run);
 * const result = await run.result();
 * assertRunInvariants({ run, emulator, deltas: recording.deltas, result, expectedOutcome: "completed" });
 * await emulator.close();
 * ```
 */
export { emulatorClient, emulatorWithFaults, TEST_EMULATOR_DEFAULTS } from "./emulator.js";
export {
  assertFleetInvariants,
  type FleetInvariantInput,
  type ServerWatch,
  watchServer,
} from "./fleet-invariants.js";
export {
  assertRunInvariants,
  type RecordingStore,
  RunInvariantError,
  type RunInvariantInput,
  type RunRecording,
  recordingStore,
  recordRun,
  textDiff,
} from "./invariants.js";
export {
  cappedCounters,
  configName,
  DEFAULT_MODEL_CONFIGS,
  describeEvent,
  edgesOf,
  hasDeadlineFired,
  initialSnapshot,
  type MachineGraph,
  MODEL_FAILURES,
  MODEL_RESPONSE_ID,
  machineGraph,
  modelEvents,
  modelInput,
  modelOptions,
  modelResponse,
  pathNamed,
  pathSnapshots,
  type RunModelConfig,
  type RunModelEvent,
  type RunPathStep,
  type RunSnapshot,
  type RunTestPath,
  type RunTestPathOptions,
  runTestModel,
  runTestPaths,
  serializeRunSnapshot,
  stateIdsOf,
  streamSchedule,
} from "./model.js";
export {
  createPathRunner,
  type PathResult,
  type PathRunner,
  type PathRunnerOptions,
} from "./path-runner.js";
