/**
 * A queue read as an async iterable: listeners `push` items as they come, `end()` says no more
 * will, and one `for await` reads them in order, waiting when the queue is empty.
 *
 * @example
 * ```ts
 * const queue = new AsyncQueue<string>();
 * run.on("delta", (d) => queue.push(d.text));
 * run.result().finally(() => queue.end());
 * for await (const text of queue) process.stdout.write(text);
 * ```
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    while (true) {
      if (this.#items.length > 0) {
        yield this.#items.shift() as T;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
