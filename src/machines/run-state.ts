/**
 * The run machine's top-level states, as everything outside the machine names them: stores
 * list them, the CLI prints them, the checkpointer saves on a change of one. One helper reads
 * the top state from a snapshot or a state value, for all of them.
 *
 * Pure data, no XState machine: a store or a listing reads a state without loading the
 * machine (`src/persistence` imports this, not `run-machine.ts`).
 */
import { InvalidSnapshotError } from "../errors.js";

/**
 * The version of the run machine's states and context. Bumped whenever a change of states or
 * context would misread an older snapshot; the envelope records it and migrates from it.
 */
export const RUN_MACHINE_VERSION = 1;

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

/**
 * The top-level state name of a state value (`"polling"` for `{ polling: "waiting" }`), or of a
 * snapshot (`"done"` once its status is done). Throws an {@link InvalidSnapshotError} for a name
 * that is not a state of the run machine.
 *
 * @example
 * ```ts
 * topState({ polling: "waiting" }); // "polling"
 * topState(run.getSnapshot()); // "streaming", …, "done"
 * ```
 */
export function topState(value: unknown): RunStateName {
  if (isSnapshotLike(value)) {
    if (value.status === "done") return "done";
    return topState(value.value);
  }
  const name = topKey(value);
  if (!RUN_STATES.includes(name as RunStateName)) {
    throw new InvalidSnapshotError("corrupt", `unknown run state '${String(name)}'`);
  }
  return name as RunStateName;
}

/**
 * The first key of a state value, unchecked (`"started"` for `{ started: "creating" }`), and
 * the name of its child state when asked (`subState(value, "started")` → `"creating"`).
 *
 * @example
 * ```ts
 * topKey({ streaming: {} }); // "streaming"
 * ```
 */
export function topKey(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.keys(value)[0];
  }
  return undefined;
}

/**
 * The child state of `top` in a state value, when the value is in `top`
 * (`subState({ started: "creating" }, "started")` → `"creating"`), else undefined.
 *
 * @example
 * ```ts
 * subState(run.getSnapshot().value, "started"); // "creating", "checking", … or undefined
 * ```
 */
export function subState(value: unknown, top: RunStateName): string | undefined {
  if (typeof value !== "object" || value === null || !(top in value)) return undefined;
  const inner = (value as Record<string, unknown>)[top];
  return typeof inner === "string" ? inner : topKey(inner);
}

function isSnapshotLike(value: unknown): value is { status: unknown; value: unknown } {
  return typeof value === "object" && value !== null && "status" in value && "value" in value;
}
