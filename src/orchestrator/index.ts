/** The orchestrator floor: many runs under limits, shared backoff, recovery and drain. */
export {
  type AdmissionLimit,
  type AdmissionState,
  admit,
  type FleetEntry,
} from "./admission.js";
export {
  createOrchestrator,
  type DrainReport,
  type FleetCounts,
  type FleetEvent,
  type FleetEventType,
  type FleetPhase,
  type FleetRequest,
  type FleetRun,
  type FleetRunOptions,
  Orchestrator,
  type OrchestratorLimit,
  type OrchestratorOptions,
  type RecoverReport,
} from "./orchestrator.js";
export {
  type OrchestratorContext,
  type OrchestratorEmitted,
  type OrchestratorEvent,
  type OrchestratorMachine,
  type OrchestratorMachineInput,
  orchestratorMachine,
} from "./orchestrator-machine.js";
export { RateGate, type RateGateEvent, type RateGateOptions } from "./rate-gate.js";
export { MAX_RUN_KEY_LENGTH, runIdForKey } from "./run-key.js";
