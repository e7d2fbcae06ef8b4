/**
 * Restores a run actor from a persisted snapshot without XState's stale restarts.
 *
 * XState restarts every child that was active at save time with the input it was first given:
 * a create in flight would create again, a stream would resume from a stale cursor. So the
 * children are dropped (all but the overall deadline, whose input is an absolute time) and the
 * restored actor is sent `run.restored`, which each state answers by starting its work again
 * with fresh input from context.
 *
 * The snapshot is checked first (`validateRunSnapshot`), whatever it came from: XState trusts
 * what it restores, and a state that does not exist throws asynchronously out of the actor,
 * where no `try` around the caller can catch it.
 */
import {
  type Actor,
  type ActorOptions,
  createActor,
  type InspectionEvent,
  type Snapshot,
} from "xstate";
import { InvalidSnapshotError } from "../errors.js";
import type { RunMachine } from "../machines/run-machine.js";
import type { PersistedRunSnapshot } from "../persistence/envelope.js";
import { RESTARTABLE_CHILDREN, validateRunSnapshot } from "../persistence/snapshot-validation.js";

/**
 * Throws an {@link InvalidSnapshotError} naming the field for a snapshot that cannot restore.
 *
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
  const checked = validateRunSnapshot(machine, snapshot);
  // A done run runs nothing: its (stopped) children are not restored at all.
  const children = Object.fromEntries(
    Object.entries(checked.children).filter(
      ([id]) => checked.status !== "done" && RESTARTABLE_CHILDREN.has(id),
    ),
  );
  const cleaned = {
    ...checked,
    children,
    // Stored once, in context: XState's output of a done run is the machine's `output` of it.
    ...(checked.status === "done" ? { output: checked.context.result } : {}),
  } as unknown as Snapshot<unknown>;
  const actor = createActor(machine, {
    snapshot: cleaned,
    // createActor requires `input` even when restoring (statelyai/xstate#4915); it is unused.
    input: { runId: checked.context.runId, mode: checked.context.mode, responseId: "" },
    ...(options.inspect ? { inspect: options.inspect } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  // An actor that errors with no error observer has XState rethrow the error on a timer, out
  // of every try; with one, the error stays in the actor (its status, its observers).
  actor.subscribe({ error: () => {} });
  actor.start();
  if (actor.getSnapshot().status === "active") actor.send({ type: "run.restored" });
  const restored = actor.getSnapshot();
  if (restored.status === "error") {
    const cause = restored.error;
    throw new InvalidSnapshotError(
      "corrupt",
      `snapshot: does not restore (${cause instanceof Error ? cause.message : String(cause)})`,
      "snapshot",
    );
  }
  return actor;
}
