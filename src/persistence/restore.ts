/**
 * Restores a run actor from a persisted snapshot without XState's stale restarts.
 *
 * XState restarts every child that was active at save time with the input it was first given:
 * a create in flight would create again, a stream would resume from a stale cursor. So the
 * children are dropped (all but the overall deadline, whose input is an absolute time) and the
 * restored actor is sent `run.restored`, which each state answers by starting its work again
 * with fresh input from context.
 */
import {
  type Actor,
  type ActorOptions,
  createActor,
  type InspectionEvent,
  type Snapshot,
} from "xstate";
import type { RunMachine } from "../machines/run-machine.js";
import type { PersistedRunSnapshot } from "./envelope.js";

/** Children whose input stays valid across a restore. */
const RESTARTABLE_CHILDREN = new Set(["deadline"]);

/**
 * @example
 * ```ts
 * const envelope = await store.load(runId);
 * const actor = restoreRunActor(createRunMachine(client), envelope.snapshot);
 * ```
 */
export function restoreRunActor(
  machine: RunMachine,
  snapshot: PersistedRunSnapshot,
  options: {
    inspect?: (event: InspectionEvent) => void;
    /** The clock of XState's delayed transitions (tests drive it). */
    clock?: ActorOptions<RunMachine>["clock"];
  } = {},
): Actor<RunMachine> {
  const children = Object.fromEntries(
    Object.entries(snapshot.children ?? {}).filter(([id]) => RESTARTABLE_CHILDREN.has(id)),
  );
  const cleaned = { ...snapshot, children } as unknown as Snapshot<unknown>;
  const actor = createActor(machine, {
    snapshot: cleaned,
    // createActor requires `input` even when restoring (statelyai/xstate#4915); it is unused.
    input: { runId: snapshot.context.runId, mode: snapshot.context.mode, responseId: "" },
    ...(options.inspect ? { inspect: options.inspect } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  actor.start();
  if (actor.getSnapshot().status === "active") actor.send({ type: "run.restored" });
  return actor;
}
