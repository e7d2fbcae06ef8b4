import { expect, it } from "vitest";
import { AsyncQueue } from "../../src/async-queue.js";

it("yields what was pushed, in order, waits when empty, and ends after end()", async () => {
  let closed = 0;
  const queue = new AsyncQueue<number>(() => closed++);
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
  queue.push(4); // after the end: dropped
  await reading;
  expect(read).toEqual([1, 2, 3]);
  expect(closed).toBe(1);
});

it("delivers a backlog pushed before end() before ending", async () => {
  const queue = new AsyncQueue<number>();
  for (let i = 0; i < 1000; i++) queue.push(i);
  queue.end();
  const read: number[] = [];
  for await (const item of queue) read.push(item);
  expect(read).toEqual(Array.from({ length: 1000 }, (_, i) => i));
});

it("a reader that breaks out closes the queue once and drops the rest", async () => {
  let closed = 0;
  const queue = new AsyncQueue<number>(() => closed++);
  queue.push(1);
  queue.push(2);
  for await (const item of queue) {
    expect(item).toBe(1);
    break;
  }
  expect(closed).toBe(1);
  queue.push(3);
  expect(await queue.next()).toEqual({ value: undefined, done: true });
  expect(closed).toBe(1);
});
