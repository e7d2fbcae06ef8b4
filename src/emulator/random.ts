/**
 * Seeded randomness. Everything that shapes behaviour (generated text, obfuscation padding) comes
 * from these functions so that a given seed always reproduces the same run; identifiers are the
 * one exception and use `node:crypto` (see `newId`), because two emulator processes started with
 * the same seed must not hand out the same response ids.
 */
import { randomBytes } from "node:crypto";

/** A pseudo-random generator returning floats in [0, 1). */
export type Prng = () => number;

/**
 * Hashes a string to an unsigned 32-bit integer (cyrb53 folded to 32 bits).
 *
 * @example
 * ```ts
 * hashString("hello") === hashString("hello"); // true, on every run
 * ```
 */
export function hashString(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 ^ h2) >>> 0;
}

/**
 * mulberry32: a tiny, fast PRNG with a 32-bit state; good enough for canned text.
 *
 * @example
 * ```ts
 * const next = createPrng(42);
 * next(); // the same first number for seed 42, every time
 * ```
 */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A random alphanumeric string of `length` characters drawn from `prng`; used for `obfuscation`.
 * The alphabet never needs JSON escaping, so the value can be spliced into a frame as is.
 */
export function randomAlphanumeric(prng: Prng, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[Math.floor(prng() * ALPHANUMERIC.length)];
  return out;
}

/**
 * A fresh identifier such as `resp_0f3a…` (48 hex digits, like the real API's ids).
 *
 * @example
 * ```ts
 * newId("resp"); // "resp_5b0c…"
 * ```
 */
export function newId(prefix: string, bytes = 24): string {
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_SIZE, bytes));
    poolOffset = 0;
  }
  const id = pool.toString("hex", poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return `${prefix}_${id}`;
}

// Ids are drawn from a pool of random bytes: one `randomBytes` call per ~170 ids instead of one
// per id (a call costs far more than the bytes, and every request needs a request id).
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;
