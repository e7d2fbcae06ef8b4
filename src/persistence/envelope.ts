/**
 * The persisted form of a run: a versioned JSON envelope around XState's persisted snapshot.
 *
 * XState does not write a machine version into its snapshots, so the envelope does: a store
 * can hold runs saved by older or newer batons, and reading one either migrates it or fails
 * with an {@link InvalidSnapshotError} that says why. The envelope holds no client object and
 * no secret: the context is plain data, and the API key lives only in the client.
 */
import type { Snapshot } from "xstate";
import { encodeContinuationToken } from "../continuation-token.js";
import { InvalidSnapshotError } from "../errors.js";
import { RUN_MACHINE_VERSION } from "../machines/run-machine.js";
import type { RunContext } from "../machines/run-types.js";
import type { ResponseStatus } from "../services/responses-client.js";

export const ENVELOPE_FORMAT = "baton.run";
export const ENVELOPE_VERSION = 1;

/** The top-level states of the run machine, as stored for listings. */
export const RUN_STATES = [
  "idle",
  "started",
  "polling",
  "streaming",
  "interrupted",
  "resumed",
  "cancelling",
  "done",
] as const;
export type RunStateName = (typeof RUN_STATES)[number];

/** A run as a store keeps it. */
export interface PersistedRun {
  format: typeof ENVELOPE_FORMAT;
  formatVersion: number;
  machineVersion: number;
  runId: string;
  /** Epoch ms of the save. */
  savedAt: number;
  /** Top-level state, for listings. */
  state: RunStateName;
  responseId: string | null;
  status: ResponseStatus | null;
  /** The continuation token, while the run is not done. */
  token: string | null;
  /** XState's persisted snapshot of the run actor. */
  snapshot: PersistedRunSnapshot;
}

/** The part of XState's persisted snapshot baton reads. */
export interface PersistedRunSnapshot {
  status: string;
  value: unknown;
  context: RunContext;
  children: Record<string, unknown>;
  [key: string]: unknown;
}

/** The top-level state name of a snapshot value (`"polling"` for `{ polling: "waiting" }`). */
export function topState(value: unknown): RunStateName {
  const name = typeof value === "string" ? value : Object.keys(value as object)[0];
  if (!RUN_STATES.includes(name as RunStateName)) {
    throw new InvalidSnapshotError("corrupt", `unknown run state '${String(name)}'`);
  }
  return name as RunStateName;
}

/** The continuation token of a run's context, or null once it is done. */
export function tokenOf(context: RunContext, state: RunStateName): string | null {
  if (state === "done" || context.responseId === null) return null;
  return encodeContinuationToken({
    responseId: context.responseId,
    ...(context.mode === "stream" && context.sequenceNumber !== null
      ? { sequenceNumber: context.sequenceNumber }
      : {}),
  });
}

/**
 * Wraps a persisted snapshot in an envelope.
 *
 * @example
 * ```ts
 * const envelope = toEnvelope(actor.getPersistedSnapshot());
 * await store.save(envelope);
 * ```
 */
export function toEnvelope(persisted: Snapshot<unknown>, savedAt = Date.now()): PersistedRun {
  const snapshot = persisted as unknown as PersistedRunSnapshot;
  const state = snapshot.status === "done" ? "done" : topState(snapshot.value);
  const context = snapshot.context;
  return {
    format: ENVELOPE_FORMAT,
    formatVersion: ENVELOPE_VERSION,
    machineVersion: RUN_MACHINE_VERSION,
    runId: context.runId,
    savedAt,
    state,
    responseId: context.responseId,
    status: context.status,
    token: tokenOf(context, state),
    snapshot,
  };
}

/**
 * Upgrades of older machine versions, keyed by the version they read. Empty while there is
 * only version 1; a change that would misread old snapshots bumps RUN_MACHINE_VERSION and
 * adds its upgrade here.
 */
const MIGRATIONS: Record<number, (snapshot: PersistedRunSnapshot) => PersistedRunSnapshot> = {};

/**
 * Reads an envelope from parsed JSON: checks it, migrates older versions, refuses what it
 * cannot read with an {@link InvalidSnapshotError}.
 *
 * @example
 * ```ts
 * const envelope = readEnvelope(JSON.parse(text));
 * ```
 */
export function readEnvelope(data: unknown): PersistedRun {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new InvalidSnapshotError("corrupt", "a persisted run must be a JSON object");
  }
  const envelope = data as Partial<PersistedRun>;
  if (envelope.format !== ENVELOPE_FORMAT) {
    throw new InvalidSnapshotError(
      "foreign",
      `not a baton run (format is ${JSON.stringify(envelope.format)}, expected "${ENVELOPE_FORMAT}")`,
    );
  }
  if (typeof envelope.formatVersion !== "number" || envelope.formatVersion > ENVELOPE_VERSION) {
    throw new InvalidSnapshotError(
      "unsupported-version",
      `envelope format version ${String(envelope.formatVersion)} is newer than this baton reads (${ENVELOPE_VERSION})`,
    );
  }
  let version = envelope.machineVersion;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw new InvalidSnapshotError("corrupt", "the persisted run has no machine version");
  }
  if (version > RUN_MACHINE_VERSION) {
    throw new InvalidSnapshotError(
      "unsupported-version",
      `the run was saved by run machine version ${version}; this baton runs version ${RUN_MACHINE_VERSION}`,
    );
  }
  let snapshot = envelope.snapshot;
  if (
    typeof snapshot !== "object" ||
    snapshot === null ||
    typeof snapshot.context !== "object" ||
    snapshot.context === null ||
    typeof snapshot.context.runId !== "string" ||
    snapshot.value === undefined
  ) {
    throw new InvalidSnapshotError("corrupt", "the persisted run has no valid snapshot");
  }
  while (version < RUN_MACHINE_VERSION) {
    const migrate = MIGRATIONS[version];
    if (!migrate) {
      throw new InvalidSnapshotError(
        "unsupported-version",
        `no migration from run machine version ${version} to ${RUN_MACHINE_VERSION}`,
      );
    }
    snapshot = migrate(snapshot);
    version++;
  }
  const state = snapshot.status === "done" ? "done" : topState(snapshot.value);
  return { ...(envelope as PersistedRun), machineVersion: version, state, snapshot };
}
