/**
 * The orchestrator machine: admission of many runs under a global concurrency and per-key
 * limits, paused while the API says to slow down, and drained on shutdown.
 *
 *   admitting ⇄ paused        (fleet.rate-limited / fleet.resume)
 *   admitting | paused → draining → drained   (fleet.drain, then every run settled or detached)
 *
 * Pure: no I/O, no clock, no timer. It decides; the orchestrator (`orchestrator.ts`) acts on what
 * it emits (`run.admitted`: start that run) and tells it what happened (`run.settled`: a run's
 * result is in, or it was detached; `fleet.resume`: the rate gate's wait is over). So
 * `xstate/graph` can walk it and fast-check can drive it with nothing running.
 */
import { assign, enqueueActions, setup } from "xstate";
import {
  type AdmissionLimit,
  type AdmissionState,
  activate,
  admit,
  enqueue,
  type FleetEntry,
  release,
} from "./admission.js";

/** The orchestrator machine's settings. */
export interface OrchestratorMachineInput {
  /** Most runs active at once (admitted and not settled). */
  concurrency: number;
  limits?: readonly AdmissionLimit[];
}

export interface OrchestratorContext extends AdmissionState {
  /** Epoch ms until which the rate gate holds creates (null: not paused). For display only. */
  pausedUntil: number | null;
  /** The next submission's sequence number (FIFO among equal priorities). */
  nextSeq: number;
}

/** What the orchestrator tells the machine. */
export type OrchestratorEvent =
  /** A new run waits for a slot. */
  | {
      type: "fleet.submit";
      runId: string;
      priority?: number;
      keys?: Readonly<Record<string, string>>;
    }
  /** A run found running (recovered from a store): active at once, whatever the limits. */
  | { type: "fleet.adopt"; runId: string; keys?: Readonly<Record<string, string>> }
  /** A run's result is in, or it was detached or withdrawn: its slot (or place) is free. */
  | { type: "run.settled"; runId: string }
  /** A 429 named a wait: no admissions until `fleet.resume`. */
  | { type: "fleet.rate-limited"; until: number }
  | { type: "fleet.resume" }
  /** Stop admitting; done once every run is settled. */
  | { type: "fleet.drain" };

/** What the machine asks of the orchestrator, and tells its observers. */
export type OrchestratorEmitted =
  | { type: "run.admitted"; runId: string }
  | { type: "fleet.paused"; until: number }
  | { type: "fleet.resumed" }
  | { type: "fleet.drained" };

type Submit = Extract<OrchestratorEvent, { type: "fleet.submit" }>;
type Adopt = Extract<OrchestratorEvent, { type: "fleet.adopt" }>;

function entryOf(event: Submit | Adopt, seq: number): FleetEntry {
  return {
    runId: event.runId,
    priority: event.type === "fleet.submit" ? (event.priority ?? 0) : 0,
    seq,
    keys: event.keys ?? {},
  };
}

/** True when the run is known to admission, waiting or active. */
export function isKnown(context: AdmissionState, runId: string): boolean {
  return context.active[runId] !== undefined || context.queue.some((e) => e.runId === runId);
}

export const orchestratorMachine = setup({
  types: {
    context: {} as OrchestratorContext,
    events: {} as OrchestratorEvent,
    input: {} as OrchestratorMachineInput,
    emitted: {} as OrchestratorEmitted,
  },
  guards: {
    /** Nothing waits and nothing runs: a drain is complete. */
    fleetIsEmpty: ({ context }) => context.queue.length === 0 && context.activeCount === 0,
  },
  actions: {
    /** A submitted run takes its place in the queue (a run already known keeps its own). */
    enqueueRun: assign(({ context, event }) => {
      if (event.type !== "fleet.submit" || isKnown(context, event.runId)) return {};
      return {
        queue: enqueue(context.queue, entryOf(event, context.nextSeq)),
        nextSeq: context.nextSeq + 1,
      };
    }),
    /** A recovered running run counts as active at once: it holds a slot at the server already. */
    adoptRun: assign(({ context, event }) => {
      if (event.type !== "fleet.adopt" || isKnown(context, event.runId)) return {};
      return {
        ...activate(context, entryOf(event, context.nextSeq)),
        nextSeq: context.nextSeq + 1,
      };
    }),
    releaseRun: assign(({ context, event }) => {
      if (event.type !== "run.settled") return {};
      return release(context, event.runId);
    }),
    /** Starts what fits (see `admit`): each admitted run is emitted for the orchestrator to start. */
    admitWaiting: enqueueActions(({ context, enqueue }) => {
      const { state, admitted } = admit(context);
      if (admitted.length === 0) return;
      enqueue.assign({
        queue: state.queue,
        active: state.active,
        activeCount: state.activeCount,
        perKey: state.perKey,
      });
      for (const entry of admitted) enqueue.emit({ type: "run.admitted", runId: entry.runId });
    }),
    recordPause: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "fleet.rate-limited") return;
      // A pause only grows: a shorter wait named later does not cut a longer one short.
      if (context.pausedUntil !== null && context.pausedUntil >= event.until) return;
      enqueue.assign({ pausedUntil: event.until });
      enqueue.emit({ type: "fleet.paused", until: event.until });
    }),
    clearPause: enqueueActions(({ enqueue }) => {
      enqueue.assign({ pausedUntil: null });
      enqueue.emit({ type: "fleet.resumed" });
    }),
    announceDrained: enqueueActions(({ enqueue }) => enqueue.emit({ type: "fleet.drained" })),
  },
}).createMachine({
  id: "orchestrator",
  context: ({ input }) => ({
    concurrency: input.concurrency,
    limits: input.limits ?? [],
    queue: [],
    active: {},
    activeCount: 0,
    perKey: {},
    pausedUntil: null,
    nextSeq: 0,
  }),
  initial: "admitting",
  states: {
    /** Runs start as slots free, in queue order, within every limit. */
    admitting: {
      entry: "admitWaiting",
      on: {
        "fleet.submit": { actions: ["enqueueRun", "admitWaiting"] },
        "fleet.adopt": { actions: "adoptRun" },
        "run.settled": { actions: ["releaseRun", "admitWaiting"] },
        "fleet.rate-limited": { target: "paused", actions: "recordPause" },
        "fleet.drain": { target: "draining" },
      },
    },
    /** The API asked for a wait: runs queue, none starts; slots free as runs settle. */
    paused: {
      on: {
        "fleet.submit": { actions: "enqueueRun" },
        "fleet.adopt": { actions: "adoptRun" },
        "run.settled": { actions: "releaseRun" },
        "fleet.rate-limited": { actions: "recordPause" },
        "fleet.resume": { target: "admitting", actions: "clearPause" },
        "fleet.drain": { target: "draining" },
      },
    },
    /** No admission; the orchestrator detaches every run and reports each as settled. */
    draining: {
      always: { guard: "fleetIsEmpty", target: "drained" },
      on: {
        "run.settled": { actions: "releaseRun" },
      },
    },
    drained: {
      type: "final",
      entry: "announceDrained",
    },
  },
});

export type OrchestratorMachine = typeof orchestratorMachine;
