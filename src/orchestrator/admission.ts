/**
 * Admission, as plain data: the queue of waiting runs, the active set, the counts per limit key,
 * and the one decision that matters (which waiting runs may start now). Pure functions over
 * plain values, so the orchestrator machine's actions stay one line each and property tests can
 * call them directly.
 */

/** A limit as the machine knows it: its name and how many runs of one key may be active. */
export interface AdmissionLimit {
  name: string;
  max: number;
}

/** One run as admission sees it: its id, its order and its key under each limit. */
export interface FleetEntry {
  runId: string;
  /** Higher first; equal priorities go first in, first out. */
  priority: number;
  /** Submission order (assigned by the machine). */
  seq: number;
  /** The run's key under each limit, by limit name (a limit it has no key for does not hold it). */
  keys: Readonly<Record<string, string>>;
}

/** What admission keeps: everything the orchestrator machine's context holds but its settings. */
export interface AdmissionState {
  concurrency: number;
  limits: readonly AdmissionLimit[];
  /** Waiting runs in admission order: priority (higher first), then submission (older first). */
  queue: readonly FleetEntry[];
  /** Active runs by id. */
  active: Readonly<Record<string, FleetEntry>>;
  activeCount: number;
  /** Active runs per limit and key: `perKey[limit][key]`. */
  perKey: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/**
 * Inserts a run into the queue at its place: after every run of the same or higher priority
 * (FIFO among equals), before the first of lower priority.
 *
 * @example
 * ```ts
 * enqueue([], { runId: "a", priority: 0, seq: 0, keys: {} }); // [a]
 * ```
 */
export function enqueue(queue: readonly FleetEntry[], entry: FleetEntry): FleetEntry[] {
  // From the end: with equal priorities (the usual case) the place is found at once.
  let at = queue.length;
  while (at > 0 && (queue[at - 1] as FleetEntry).priority < entry.priority) at--;
  if (at === queue.length) return [...queue, entry];
  return [...queue.slice(0, at), entry, ...queue.slice(at)];
}

/** True when one more run of these keys fits every limit. */
function fitsLimits(state: AdmissionState, keys: FleetEntry["keys"]): boolean {
  for (const limit of state.limits) {
    const key = keys[limit.name];
    if (key === undefined) continue;
    if ((state.perKey[limit.name]?.[key] ?? 0) >= limit.max) return false;
  }
  return true;
}

/** `perKey` with one run of `keys` added (`by` 1) or removed (`by` -1). */
function countKeys(
  perKey: AdmissionState["perKey"],
  keys: FleetEntry["keys"],
  by: 1 | -1,
): AdmissionState["perKey"] {
  const next: Record<string, Record<string, number>> = { ...perKey };
  for (const [limit, key] of Object.entries(keys)) {
    const counts = { ...next[limit] };
    const count = (counts[key] ?? 0) + by;
    if (count > 0) counts[key] = count;
    else delete counts[key];
    next[limit] = counts;
  }
  return next;
}

/** The state with `entry` active (whatever the limits: adoption of a run already running). */
export function activate(state: AdmissionState, entry: FleetEntry): AdmissionState {
  if (state.active[entry.runId]) return state;
  return {
    ...state,
    active: { ...state.active, [entry.runId]: entry },
    activeCount: state.activeCount + 1,
    perKey: countKeys(state.perKey, entry.keys, 1),
  };
}

/** The state without run `runId`, waiting or active (a run that settled, or was detached). */
export function release(state: AdmissionState, runId: string): AdmissionState {
  const entry = state.active[runId];
  if (entry) {
    const { [runId]: _gone, ...active } = state.active;
    return {
      ...state,
      active,
      activeCount: state.activeCount - 1,
      perKey: countKeys(state.perKey, entry.keys, -1),
    };
  }
  if (!state.queue.some((queued) => queued.runId === runId)) return state;
  return { ...state, queue: state.queue.filter((queued) => queued.runId !== runId) };
}

/**
 * Admits what fits: waiting runs in queue order while the global limit has room, each only if
 * every per-key limit has room for it. A run held by its key's limit does not hold back the
 * runs behind it (no head-of-line blocking), and keeps its place for the next free slot.
 *
 * @example
 * ```ts
 * const { state, admitted } = admit(current);
 * for (const entry of admitted) start(entry.runId);
 * ```
 */
export function admit(state: AdmissionState): { state: AdmissionState; admitted: FleetEntry[] } {
  if (state.activeCount >= state.concurrency || state.queue.length === 0) {
    return { state, admitted: [] };
  }
  let next = state;
  const admitted: FleetEntry[] = [];
  const waiting: FleetEntry[] = [];
  const queue = state.queue;
  let i = 0;
  // Stops at the first entry once every slot is taken: the rest keeps its order as it is.
  for (; i < queue.length && next.activeCount < next.concurrency; i++) {
    const entry = queue[i] as FleetEntry;
    if (fitsLimits(next, entry.keys)) {
      next = activate(next, entry);
      admitted.push(entry);
    } else {
      waiting.push(entry);
    }
  }
  if (admitted.length === 0) return { state, admitted };
  return {
    state: { ...next, queue: i < queue.length ? waiting.concat(queue.slice(i)) : waiting },
    admitted,
  };
}
