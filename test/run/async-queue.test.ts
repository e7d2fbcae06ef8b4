import { expect, it } from "vitest";
import { AsyncQueue } from "../../src/async-queue.js";

it("yields what was pushed, in order, waits when empty, and ends after end()", async () => {
  const queue = new AsyncQueue<number>();
  queue.push(1);
  const read: number[] = [];
  const reading = (async () => {
    for await (const item of queue) read.push(item);
  })();
  await new Promise((r) => setTimeout(r, 5));
  expect(read).toEqual([1]);
  queue.push(2);
  queue.push(3);
  queue.end();
  await reading;
  expect(read).toEqual([1, 2, 3]);
});
