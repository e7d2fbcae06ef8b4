/**
 * Delivery: how a run's text reaches its consumers. The machine emits each piece of text once,
 * with its character offset (`chars`, counted once, in the machine's context); delivery hands it
 * on, either at once (`immediate`) or only once the save covering it is written (`after-save`,
 * released by the checkpointer's `onSaved`), and skips what a consumer already applied (a
 * consumer cursor's `from.chars`).
 */
import type { Actor, Subscription } from "xstate";
import type { RunMachine } from "../machines/run-machine.js";
import type { RunEmitted } from "../machines/run-types.js";

/**
 * One piece of output text, as a consumer receives it. A streamed piece holds the text of
 * consecutive delta events received together: one token while the model is slower than the
 * reader, up to a few hundred when events come faster (a replay, a backlog after a pause).
 */
export interface RunDelta {
  text: string;
  /** The last stream event this piece covers (resume after it); absent for polled text. */
  sequenceNumber?: number;
  /**
   * Characters (UTF-16 units) of the output text up to the end of this piece: where the next
   * piece starts. Store it with what you did with the text, and `rehydrateRun(host, { runId,
   * from: { chars } })` hands you exactly what follows; it also makes a browser's
   * `Last-Event-ID`. Absent when the run does not know what came before it (a stream attached
   * mid-way by token alone).
   */
  chars?: number;
  source: "stream" | "poll" | "final";
}

/** How a {@link Delivery} hands text on. */
export interface DeliveryOptions {
  /** Hold each delta until a save covers it (`delivery: "after-save"` with a store). */
  durable: boolean;
  /** Text before this offset is not handed to consumers (they applied it: `from.chars`). */
  fromChars?: number;
  /** A finished run's text after a consumer's cursor, handed to every listener once. */
  tail?: RunDelta;
}

type DeltaEvent = Extract<RunEmitted, { type: "delta" }>;

/**
 * The delta listeners of one run and the deltas held for a save.
 *
 * @example
 * ```ts
 * const delivery = new Delivery(actor, { durable: true });
 * delivery.addBatch((deltas) => process.stdout.write(deltas.map((d) => d.text).join("")));
 * // in the checkpointer's onSaved:
 * delivery.release(saved.snapshot.context.deliveredChars);
 * ```
 */
export class Delivery {
  readonly #actor: Actor<RunMachine>;
  readonly #durable: boolean;
  readonly #fromChars: number;
  readonly #tail: RunDelta | undefined;
  // Created on first use: thousands of polling runs may never have a listener, and each empty
  // Set costs a hash table (see bench/, heap per run).
  #listeners: Set<(delta: RunDelta) => void> | undefined;
  #batchListeners: Set<(deltas: readonly RunDelta[]) => void> | undefined;
  #pending: { delta: RunDelta; end: number }[] | undefined;
  #following = false;

  constructor(actor: Actor<RunMachine>, options: DeliveryOptions) {
    this.#actor = actor;
    this.#durable = options.durable;
    this.#fromChars = options.fromChars ?? 0;
    this.#tail = options.tail;
    // Held deltas are counted from the first one: follow them from the start.
    if (this.#durable) this.#follow();
  }

  /**
   * Adds a listener of single deltas: the tail of a finished run first, if any, unless
   * `tail: false` (the caller took {@link tail} itself).
   */
  add(listener: (delta: RunDelta) => void, options: { tail?: boolean } = {}): Subscription {
    this.#follow();
    this.#listeners ??= new Set();
    const listeners = this.#listeners;
    listeners.add(listener);
    const tail = options.tail === false ? undefined : this.#tail;
    // After the caller's own setup: it may subscribe to more before the tail arrives.
    if (tail) queueMicrotask(() => listeners.has(listener) && listener(tail));
    return { unsubscribe: () => listeners.delete(listener) };
  }

  /** Adds a listener of whole batches (with `after-save`, every delta one save covers). */
  addBatch(handler: (deltas: readonly RunDelta[]) => void): Subscription {
    this.#follow();
    this.#batchListeners ??= new Set();
    const listeners = this.#batchListeners;
    listeners.add(handler);
    const tail = this.#tail;
    if (tail) queueMicrotask(() => listeners.has(handler) && handler([tail]));
    return { unsubscribe: () => listeners.delete(handler) };
  }

  /** The tail of a finished run, handed to iterators before anything else. */
  get tail(): RunDelta | undefined {
    return this.#tail;
  }

  /** Hands consumers every held delta a save now covers (`savedChars`), as one batch. */
  release(savedChars: number | null): void {
    const pending = this.#pending;
    if (!pending) return;
    let count = 0;
    while (count < pending.length) {
      const held = pending[count] as { delta: RunDelta; end: number };
      if (savedChars !== null && held.end > savedChars) break;
      count++;
    }
    if (count > 0) this.#dispatch(pending.splice(0, count).map((held) => held.delta));
  }

  /** Starts listening to the machine's deltas (once; before that, nobody was listening). */
  #follow(): void {
    if (this.#following) return;
    this.#following = true;
    this.#actor.on("delta", (event) => this.#onDelta(event));
  }

  #onDelta(event: DeltaEvent): void {
    const end = event.chars;
    const from = this.#fromChars;
    // The consumer's cursor: what it applied already is not handed to it again.
    if (end !== undefined && from > 0) {
      if (end <= from && event.text.length > 0) return;
      const start = end - event.text.length;
      if (start < from) {
        this.#hand(event, event.text.slice(from - start), end);
        return;
      }
    }
    this.#hand(event, event.text, end);
  }

  #hand(event: DeltaEvent, text: string, end: number | undefined): void {
    const delta: RunDelta = {
      text,
      source: event.source,
      ...(event.sequenceNumber !== undefined ? { sequenceNumber: event.sequenceNumber } : {}),
      ...(end !== undefined ? { chars: end } : {}),
    };
    if (!this.#durable) {
      this.#dispatch([delta]);
      return;
    }
    this.#pending ??= [];
    // A run that does not know its offsets saves `deliveredChars: null`: released by any save.
    this.#pending.push({ delta, end: end ?? 0 });
  }

  #dispatch(deltas: readonly RunDelta[]): void {
    if (this.#batchListeners) for (const listener of this.#batchListeners) listener(deltas);
    const listeners = this.#listeners;
    if (listeners) for (const delta of deltas) for (const listener of listeners) listener(delta);
  }
}
