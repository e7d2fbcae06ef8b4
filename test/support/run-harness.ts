/**
 * Shared helpers of the run tests: an emulator per test, a real `openai` client pointed at it,
 * and a consumer that records every delta a run delivers.
 */
import OpenAI from "openai";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js";
import {
  type Run,
  type RunDelta,
  type RunHostOptions,
  type RunStateName,
  startRun,
} from "../../src/index.js";

/** A key that must never show up in a snapshot, token, log line or inspection event. */
export const SECRET_KEY = "sk-test-SECRET-0123456789abcdef";

export async function emulatorFor(options: EmulatorOptions = {}): Promise<Emulator> {
  return startEmulator({ tokenDelayMs: 2, queuedMs: 5, outputTokens: 30, ...options });
}

/** A real SDK client on the emulator. SDK retries stay at their default: baton turns them off per call. */
export function clientFor(emulator: Emulator, extra: ConstructorParameters<typeof OpenAI>[0] = {}) {
  return new OpenAI({ baseURL: emulator.url, apiKey: SECRET_KEY, ...extra });
}

/** Fast retries so that backoff does not slow the tests. */
export const FAST = {
  pollIntervalMs: 10,
  retry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, jitter: 0 },
} as const;

/** A streamed run of the usual test request ("x" to o3, FAST retries) on the emulator. */
export function startStreamedRun(emulator: Emulator, host: RunHostOptions = {}): Run {
  return startRun({
    client: clientFor(emulator),
    model: "o3",
    input: "x",
    stream: true,
    options: FAST,
    ...host,
  });
}

/** The final text of a response as the emulator stores it (what the SDK calls output_text). */
export function storedText(emulator: Emulator, responseId: string): string {
  const response = emulator.getResponse(responseId);
  if (!response) throw new Error(`no response ${responseId} in the emulator`);
  return response.output.flatMap((item) => item.content.map((part) => part.text)).join("");
}

/** Records what a consumer receives from a run, and the states it goes through. */
export class Recorder {
  readonly deltas: RunDelta[] = [];
  readonly states: RunStateName[] = [];
  readonly segments: string[] = [];

  constructor(run: Run) {
    this.attach(run);
  }

  attach(run: Run): void {
    run.on("delta", (delta) => {
      const { type: _type, ...rest } = delta;
      this.deltas.push(rest);
    });
    run.on("segment", (segment) => this.segments.push(segment.kind));
    const push = () => {
      const state = run.state;
      if (this.states.at(-1) !== state) this.states.push(state);
    };
    push();
    run.subscribe({ next: push, error: () => {} });
  }

  get text(): string {
    return this.deltas.map((d) => d.text).join("");
  }

  /** Sequence numbers delivered more than once (must stay empty). */
  get repeatedSequenceNumbers(): number[] {
    const seen = new Set<number>();
    const repeated: number[] = [];
    for (const d of this.deltas) {
      if (d.sequenceNumber === undefined) continue;
      if (seen.has(d.sequenceNumber)) repeated.push(d.sequenceNumber);
      seen.add(d.sequenceNumber);
    }
    return repeated;
  }
}

/** Resolves when `predicate` holds for the run's snapshot. */
export function until(
  run: Run,
  predicate: (run: Run) => boolean,
  timeoutMs = 5_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (predicate(run)) return resolve();
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out in state ${run.state}`));
    }, timeoutMs);
    const sub = run.subscribe({
      next: () => {
        if (predicate(run)) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        }
      },
      error: () => {},
    });
  });
}

export const inState = (state: RunStateName) => (run: Run) => run.state === state;
