/**
 * Wall-clock time for the emulator: timestamps (`created_at`, `completed_at`), the replay window
 * and the retention check all read it, so tests can jump minutes ahead without sleeping.
 * Generation pacing (token delay, queued time) deliberately uses real timers instead: a manual
 * clock that nobody advances must not freeze a stream.
 */

/** A source of "now" in milliseconds since the Unix epoch. */
export interface Clock {
  now(): number;
}

/** A clock that only moves when told to. */
export interface ManualClock extends Clock {
  /** Moves the clock forward by `ms` (negative values are rejected). */
  advance(ms: number): void;
  /** Sets the clock to an absolute time in ms since the epoch. */
  set(ms: number): void;
}

/** The default clock: `Date.now`. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * Creates a clock for tests that only moves when `advance` or `set` is called.
 *
 * @example
 * ```ts
 * const clock = createManualClock(Date.UTC(2026, 0, 1));
 * const emulator = await startEmulator({ clock });
 * clock.advance(6 * 60_000); // the replay window (5 min) is now over
 * ```
 */
export function createManualClock(startMs: number = Date.now()): ManualClock {
  let current = startMs;
  return {
    now: () => current,
    advance(ms: number): void {
      if (!Number.isFinite(ms) || ms < 0) {
        throw new RangeError(`advance(ms) needs a finite, non-negative number, got ${ms}`);
      }
      current += ms;
    },
    set(ms: number): void {
      if (!Number.isFinite(ms)) throw new RangeError(`set(ms) needs a finite number, got ${ms}`);
      current = ms;
    },
  };
}
