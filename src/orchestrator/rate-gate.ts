/**
 * The rate gate: one shared backoff for every run of a client. A decorator of the client port
 * (`ResponsesClient`): when any call is answered 429, the wait it names (`retry-after-ms`,
 * `retry-after`; a default when it names none) holds every create, stream create, poll and
 * stream resume of every run until that time, instead of each run waiting on its own and all of
 * them coming back at the same instant.
 *
 * When the wait is over the gate says so (`resumed`: the orchestrator admits again), and one
 * held call goes first (a probe); once it is answered without a 429, the others follow one every
 * `spacingMs`, in the order they came: no thundering herd. A 429 to the probe starts a new wait.
 * Cancels are never held (stopping work never adds load), nor the reads that confirm them.
 *
 * A call is held at most `maxHoldMs` (default 20 s, below the run's `createTimeoutMs` of 60 s):
 * then it is refused as a 429 that was never sent (`status: 429`, so the run machine knows
 * nothing was created and retries after the wait left), rather than timing out in the run,
 * which would have to treat an unsent create as possibly created.
 */
import {
  type ClientFailure,
  ClientFailureError,
  classifyClientError,
} from "../services/client-failure.js";
import {
  isTerminalStatus,
  type ResponsesClient,
  type RetrieveResult,
} from "../services/responses-client.js";

/** Most response ids with a cancel under way the gate remembers. */
const MAX_CANCELLING = 10_000;

export interface RateGateOptions {
  /** The wait after a 429 that names none. Default 1 000 ms. */
  defaultWaitMs?: number;
  /** Longest a call is held before it is refused as not sent. Default 20 000 ms. */
  maxHoldMs?: number;
  /** After a wait, held calls go one every this long. Default 25 ms. */
  spacingMs?: number;
  /** Longest the other held calls wait for the probe's answer. Default 2 000 ms. */
  probeTimeoutMs?: number;
  /** The clock (tests). Default `Date.now`. */
  now?: () => number;
}

/** What the gate tells its listener. */
export type RateGateEvent =
  | { type: "paused"; until: number; failure: ClientFailure }
  /** The wait is over (held calls now go: a probe first, then one per spacing). */
  | { type: "resumed" };

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

/**
 * A client port whose calls share one rate-limit backoff.
 *
 * @example
 * ```ts
 * const gate = new RateGate(openAIResponsesClient(openai));
 * gate.subscribe((event) => console.log(event.type)); // "paused" / "resumed"
 * const run = startRun({ client: gate.client }, { model: "o3", input: "…" });
 * ```
 */
export class RateGate {
  /** The gated port: hand this (one object per gate) to the runs. */
  readonly client: ResponsesClient;
  readonly #defaultWaitMs: number;
  readonly #maxHoldMs: number;
  readonly #spacingMs: number;
  readonly #probeTimeoutMs: number;
  readonly #now: () => number;
  readonly #listeners = new Set<(event: RateGateEvent) => void>();
  readonly #waiters: Waiter[] = [];
  /** Responses with a cancel under way: their reads are not held. */
  readonly #cancelling = new Set<string>();
  /** Epoch ms until which calls are held (0: not paused). */
  #until = 0;
  /** After a wait: the one call let through, until it answers. */
  #probe: "none" | "due" | "in-flight" = "none";
  #timer: NodeJS.Timeout | undefined;
  /** Fires `resumed` when the wait is over. */
  #wakeTimer: NodeJS.Timeout | undefined;
  /** When the next held call may go (spacing). */
  #nextRelease = 0;

  constructor(inner: ResponsesClient, options: RateGateOptions = {}) {
    this.#defaultWaitMs = options.defaultWaitMs ?? 1_000;
    this.#maxHoldMs = options.maxHoldMs ?? 20_000;
    this.#spacingMs = options.spacingMs ?? 25;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
    this.#now = options.now ?? Date.now;
    const gated = <A extends unknown[], T>(call: (...args: A) => Promise<T>, signalAt: number) =>
      (async (...args: A): Promise<T> => {
        const probe = await this.#enter(args[signalAt] as AbortSignal);
        return this.#observe(call(...args), probe);
      }) as (...args: A) => Promise<T>;
    const gatedRetrieve = gated((id: string, signal: AbortSignal) => inner.retrieve(id, signal), 1);
    this.client = {
      create: gated((request, signal) => inner.create(request, signal), 1),
      createStream: gated((request, signal) => inner.createStream(request, signal), 1),
      retrieve: (id, signal) =>
        // A cancel's read-back is not held: stopping work never waits for the rate limit.
        this.#cancelling.has(id)
          ? this.#observe(this.#settling(id, inner.retrieve(id, signal)), false)
          : gatedRetrieve(id, signal),
      streamFrom: gated((id, after, signal) => inner.streamFrom(id, after, signal), 2),
      // Never held: a cancel lowers the load. A 429 to it still pauses the others.
      cancel: (id, signal) => {
        this.#cancelling.add(id);
        // Bounded: ids of runs that never read back are forgotten, oldest first.
        if (this.#cancelling.size > MAX_CANCELLING) {
          const oldest = this.#cancelling.values().next().value;
          if (oldest !== undefined) this.#cancelling.delete(oldest);
        }
        return this.#observe(inner.cancel(id, signal), false);
      },
    };
  }

  /** Epoch ms until which calls are held, or null when they are not. */
  get pausedUntil(): number | null {
    return this.#until > this.#now() ? this.#until : null;
  }

  /** Calls held right now. */
  get held(): number {
    return this.#waiters.length;
  }

  /** Listens to pauses and resumptions; returns the unsubscribe. */
  subscribe(listener: (event: RateGateEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records a 429 seen elsewhere (the same API key used by another client). */
  pause(failure: ClientFailure): void {
    const until = this.#now() + (failure.retryAfterMs ?? this.#defaultWaitMs);
    if (until <= this.#until) return;
    this.#until = until;
    this.#probe = "due";
    this.#emit({ type: "paused", until, failure });
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = setTimeout(() => this.#emit({ type: "resumed" }), until - this.#now());
    this.#schedule();
  }

  /**
   * Ends the wait now (an operator's word, or a test's): held calls go, the probe first, and
   * `resumed` is told. A no-op when not paused.
   */
  resume(): void {
    if (this.#until <= this.#now()) return;
    this.#until = this.#now();
    clearTimeout(this.#wakeTimer);
    this.#emit({ type: "resumed" });
    this.#schedule();
  }

  /** A cancelled response's read: forgotten once it reports a final status. */
  async #settling(id: string, read: Promise<RetrieveResult>): Promise<RetrieveResult> {
    const result = await read;
    if (isTerminalStatus(result.response.status)) this.#cancelling.delete(id);
    return result;
  }

  /** Stops the gate's timer and refuses every held call (the orchestrator is going away). */
  close(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#wakeTimer);
    clearTimeout(this.#probeTimer);
    for (const waiter of this.#waiters.splice(0)) {
      waiter.cleanup();
      waiter.reject(this.#refusal());
    }
  }

  /** Resolves when the call may go; true when it goes as the probe. */
  #enter(signal: AbortSignal): Promise<boolean> {
    if (this.#waiters.length === 0 && this.#probe === "none" && this.#until <= this.#now()) {
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          waiter.cleanup();
          const probe = this.#probe === "due";
          if (probe) this.#armProbe();
          resolve(probe);
        },
        reject,
        cleanup: () => {
          clearTimeout(hold);
          signal.removeEventListener("abort", onAbort);
        },
      };
      const drop = (err: unknown) => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        waiter.cleanup();
        reject(err);
      };
      const onAbort = () => drop(signal.reason ?? new Error("aborted"));
      const hold = setTimeout(() => drop(this.#refusal()), this.#maxHoldMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#schedule();
    });
  }

  /** A held call refused unsent: a 429 that proves nothing was created, with the wait left. */
  #refusal(): ClientFailureError {
    const left = Math.max(0, this.#until - this.#now());
    return new ClientFailureError({
      kind: "rate-limited",
      status: 429,
      message: "held by baton's rate gate past its longest hold; not sent",
      retryAfterMs: left,
    });
  }

  #probeTimer: NodeJS.Timeout | undefined;

  #armProbe(): void {
    this.#probe = "in-flight";
    clearTimeout(this.#probeTimer);
    // A probe that never answers (a stalled connection) does not hold the rest forever.
    this.#probeTimer = setTimeout(() => this.#probeAnswered(), this.#probeTimeoutMs);
    this.#probeTimer.unref();
  }

  #probeAnswered(): void {
    clearTimeout(this.#probeTimer);
    if (this.#probe !== "in-flight") return;
    this.#probe = "none";
    this.#nextRelease = this.#now() + this.#spacingMs;
    this.#schedule();
  }

  /** Watches a call's answer: a 429 pauses everyone; the probe's answer releases the rest. */
  async #observe<T>(call: Promise<T>, probe: boolean): Promise<T> {
    try {
      const value = await call;
      if (probe) this.#probeAnswered();
      return value;
    } catch (err) {
      const failure = classifyClientError(err);
      if (failure.kind === "rate-limited") {
        this.pause(failure);
        if (probe && this.#probe === "in-flight") this.#probe = "due";
      } else if (probe) {
        this.#probeAnswered();
      }
      throw err;
    }
  }

  /** Lets the next held call go when it may: after the wait, the probe, then one per spacing. */
  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#waiters.length === 0 || this.#probe === "in-flight") return;
    const now = this.#now();
    const at = Math.max(this.#until, this.#probe === "due" ? 0 : this.#nextRelease);
    if (at > now) {
      this.#timer = setTimeout(() => this.#schedule(), at - now);
      return;
    }
    const next = this.#waiters.shift();
    if (!next) return;
    const wasProbe = this.#probe === "due";
    next.resolve();
    if (!wasProbe) {
      this.#nextRelease = now + this.#spacingMs;
      this.#schedule();
    }
  }

  #emit(event: RateGateEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
