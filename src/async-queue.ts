/**
 * A queue read as an async iterable: listeners `push` items as they come, `end()` says no more
 * will, and one `for await` reads them in order, waiting when the queue is empty.
 *
 * A hand-rolled iterator rather than an async generator: a generator costs several promise
 * turns per item, and a run's deltas go through here one by one (see bench/).
 *
 * @example
 * ```ts
 * const queue = new AsyncQueue<string>();
 * run.on("delta", (d) => queue.push(d.text));
 * run.result().finally(() => queue.end());
 * for await (const text of queue) process.stdout.write(text);
 * ```
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  /** Index of the next item to read (no `shift()`: a long backlog would be copied per read). */
  #head = 0;
  #ended = false;
  #waiting: ((result: IteratorResult<T, undefined>) => void) | undefined;
  #onClose: (() => void) | undefined;

  /** @param onClose called once, when the reader is done (the end reached, or `break`). */
  constructor(onClose?: () => void) {
    this.#onClose = onClose;
  }

  push(item: T): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  end(): void {
    this.#ended = true;
    if (this.#waiting && this.#head === this.#items.length) this.#finish();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head++] as T;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    return new Promise((resolve) => {
      this.#waiting = resolve;
      if (this.#ended) this.#finish();
    });
  }

  /** The reader stopped early (`break`, `return`, a throw in the loop): drop what is left. */
  return(): Promise<IteratorResult<T, undefined>> {
    this.#ended = true;
    this.#items = [];
    this.#head = 0;
    this.#finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #finish(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
    const onClose = this.#onClose;
    this.#onClose = undefined;
    onClose?.();
  }
}
