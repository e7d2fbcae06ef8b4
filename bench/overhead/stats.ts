/** Small statistics and timing helpers of the overhead benchmark. */
import { performance } from "node:perf_hooks";

/** The median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of nothing");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Rounds to `digits` significant decimals for the report (keeps JSON readable). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Throws a harness failure (quick mode exits non-zero on any). */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`harness check failed: ${message}`);
}

/**
 * Runs `rounds` rounds of several variants, rotating their order from round to round so that
 * drift (other processes, thermal, GC) falls on each alike. Returns the samples per variant.
 */
export async function interleave<K extends string>(
  rounds: number,
  variants: Record<K, () => Promise<number>>,
  onRound?: (round: number, samples: Record<K, number>) => void,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<
    K,
    number[]
  >;
  for (let round = 0; round < rounds; round++) {
    const shift = round % names.length;
    const order = [...names.slice(shift), ...names.slice(0, shift)];
    const these = {} as Record<K, number>;
    for (const name of order) {
      const value = await variants[name]();
      samples[name].push(value);
      these[name] = value;
    }
    onRound?.(round, these);
  }
  return samples;
}
