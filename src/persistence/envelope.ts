/**
 * The persisted form of a run: a versioned JSON envelope around XState's persisted snapshot.
 *
 * XState does not write a machine version into its snapshots, so the envelope does: a store
 * can hold runs saved by older or newer batons, and reading one either migrates it or fails
 * with an {@link InvalidSnapshotError} that says why. The envelope holds no client object and
 * no secret: the context is plain data, and the API key lives only in the client.
 */
import type { AnyStateMachine, Snapshot } from "xstate";
import { encodeContinuationToken } from "../continuation-token.js";
import { InvalidSnapshotError } from "../errors.js";
import {
  checkPlainData,
  type Fail,
  isRecord,
  isValidRunId,
  RUN_ID_RULE,
} from "../input-validation.js";
import { RUN_MACHINE_VERSION, type RunStateName, topState } from "../machines/run-state.js";
import type { RunContext } from "../machines/run-types.js";
import type { ResponseStatus } from "../services/responses-client.js";
import type { PersistedRunSnapshot } from "./persisted-snapshot.js";
import { failSnapshot, validateRunSnapshot } from "./snapshot-validation.js";

export type { PersistedRunSnapshot } from "./persisted-snapshot.js";

export const ENVELOPE_FORMAT = "baton.run";
export const ENVELOPE_VERSION = 1;

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
 * Wraps a persisted snapshot in an envelope. A done run's final text is kept once, in
 * `context.result`: XState's `output` (the same object) is left out and rebuilt on restore.
 *
 * @example
 * ```ts
 * const envelope = toEnvelope(actor.getPersistedSnapshot());
 * await store.save(envelope);
 * ```
 */
export function toEnvelope(persisted: Snapshot<unknown>, savedAt = Date.now()): PersistedRun {
  const { output: _output, ...snapshot } = persisted as unknown as PersistedRunSnapshot;
  const state = topState(snapshot);
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
    snapshot: snapshot as PersistedRunSnapshot,
  };
}

/**
 * The response a saved run follows, read from its snapshot: the one source `resume`, `status`
 * and `cancel` agree on (the envelope's own `responseId` is a copy for listings, checked equal
 * on read).
 *
 * @example
 * ```ts
 * const persisted = await store.load(runId);
 * if (persisted) console.log(responseIdOf(persisted)); // "resp_…" or null before the create answered
 * ```
 */
export function responseIdOf(run: PersistedRun): string | null {
  return run.snapshot.context.responseId;
}

/**
 * Upgrades of older machine versions, keyed by the version they read. Empty while there is
 * only version 1; a change that would misread old snapshots bumps RUN_MACHINE_VERSION and
 * adds its upgrade here.
 */
const MIGRATIONS: Record<number, (snapshot: PersistedRunSnapshot) => PersistedRunSnapshot> = {};

/** How far in the future a save may be dated (clocks of two machines sharing a store). */
const SAVED_AT_SKEW_MS = 24 * 60 * 60 * 1000;

const ENVELOPE_KEYS = [
  "format",
  "formatVersion",
  "machineVersion",
  "runId",
  "savedAt",
  "state",
  "responseId",
  "status",
  "token",
  "snapshot",
];

/**
 * Reads an envelope from parsed JSON: checks every field of it and of the XState snapshot
 * inside (see `snapshot-validation.ts`), migrates older versions, refuses what it cannot read
 * with an {@link InvalidSnapshotError} naming the field. `expectedRunId` is the id the run was
 * looked up by (a file's name). Given the run `machine`, what it returns restores into an actor
 * without throwing; without it (a store, which never loads the machine) the snapshot's states,
 * history and children are checked by shape, and the host checks them against the machine
 * before it restores (`checkRun` in `src/run/host.ts`).
 *
 * @example
 * ```ts
 * const envelope = readEnvelope(JSON.parse(text));
 * ```
 */
export function readEnvelope(
  data: unknown,
  expectedRunId?: string,
  machine: AnyStateMachine | null = null,
): PersistedRun {
  const fail: Fail = failSnapshot;
  if (!isRecord(data)) {
    throw new InvalidSnapshotError("corrupt", "a persisted run must be a JSON object");
  }
  const envelope = data as Record<string, unknown>;
  if (envelope.format !== ENVELOPE_FORMAT) {
    throw new InvalidSnapshotError(
      "foreign",
      `not a baton run (format is ${JSON.stringify(envelope.format)}, expected "${ENVELOPE_FORMAT}")`,
      "format",
    );
  }
  const formatVersion = envelope.formatVersion;
  if (
    typeof formatVersion !== "number" ||
    !Number.isSafeInteger(formatVersion) ||
    formatVersion < 1
  ) {
    fail("formatVersion", "must be a positive integer");
  }
  if (formatVersion > ENVELOPE_VERSION) {
    throw new InvalidSnapshotError(
      "unsupported-version",
      `envelope format version ${formatVersion} is newer than this baton reads (${ENVELOPE_VERSION})`,
      "formatVersion",
    );
  }
  let version = envelope.machineVersion;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
    fail("machineVersion", "must be a positive integer");
  }
  if (version > RUN_MACHINE_VERSION) {
    throw new InvalidSnapshotError(
      "unsupported-version",
      `the run was saved by run machine version ${version}; this baton runs version ${RUN_MACHINE_VERSION}`,
      "machineVersion",
    );
  }
  // Fields this baton does not know (added by a newer one of the same version) pass as data.
  for (const [key, value] of Object.entries(envelope)) {
    if (!ENVELOPE_KEYS.includes(key)) checkPlainData(value, key, fail);
  }
  const runId = envelope.runId;
  if (!isValidRunId(runId)) fail("runId", RUN_ID_RULE);
  if (expectedRunId !== undefined && runId !== expectedRunId) {
    fail("runId", `is '${runId}', but the run was stored as '${expectedRunId}'`);
  }
  const savedAt = envelope.savedAt;
  if (typeof savedAt !== "number" || !Number.isFinite(savedAt) || savedAt < 0) {
    fail("savedAt", "must be a time in epoch ms");
  }
  if (savedAt > Date.now() + SAVED_AT_SKEW_MS) fail("savedAt", "is in the future");
  if (envelope.token !== null && typeof envelope.token !== "string") {
    fail("token", "must be a string or null");
  }
  let raw = envelope.snapshot;
  while (version < RUN_MACHINE_VERSION) {
    const migrate = MIGRATIONS[version];
    if (!migrate) {
      throw new InvalidSnapshotError(
        "unsupported-version",
        `no migration from run machine version ${version} to ${RUN_MACHINE_VERSION}`,
        "machineVersion",
      );
    }
    if (!isRecord(raw)) fail("snapshot", "must be an object");
    raw = migrate(raw as PersistedRunSnapshot);
    version++;
  }
  const snapshot = validateRunSnapshot(machine, raw, { savedAt, runId });
  const context = snapshot.context;
  const state = topState(snapshot);
  // The envelope's copies of snapshot fields (for listings) must agree with the snapshot.
  if (envelope.state !== state) fail("state", `must be the snapshot's state '${state}'`);
  if (envelope.responseId !== context.responseId) {
    fail("responseId", "must be the snapshot's snapshot.context.responseId");
  }
  if (envelope.status !== context.status) {
    fail("status", "must be the snapshot's snapshot.context.status");
  }
  return {
    ...envelope,
    format: ENVELOPE_FORMAT,
    formatVersion: ENVELOPE_VERSION,
    machineVersion: version,
    runId,
    savedAt,
    state,
    responseId: context.responseId,
    status: context.status,
    // Made again rather than trusted: the token of what the snapshot says.
    token: tokenOf(context, state),
    snapshot,
  };
}
