/**
 * Shared helpers of the run tests: an emulator per test, a real `openai` client pointed at it,
 * and a consumer that records every delta a run delivers.
 */
import OpenAI from "openai";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js";
import {
  type ClientLike,
  type Run,
  type RunDelta,
  type RunHostOptions,
  type RunOptions,
  type RunRequest,
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

/** The usual test request: "x" to o3. */
export const REQUEST = { model: "o3", input: "x" } as const;

/** Where a test run runs: the host options, and a client of its own if the test needs one. */
export interface TestHost extends RunHostOptions {
  /** Defaults to `clientFor(emulator)`, a new client per run. */
  client?: ClientLike;
}

/** What a test changes of the usual run. */
export interface TestRun {
  /** Create fields over {@link REQUEST} (`input`, `maxOutputTokens`, ...). */
  request?: Partial<Omit<RunRequest, "stream">>;
  /** Run options over {@link FAST}, shallowly: `{ deadlineMs: 300 }` is `{ ...FAST, deadlineMs: 300 }`. */
  options?: Partial<RunOptions>;
  runId?: string;
}

/**
 * A streamed run of the usual test request ("x" to o3, FAST retries) on the emulator, started
 * as an app starts one: `startRun(host, request, { runId, options })`.
 *
 * @example
 * ```ts
 * const run = startStreamedRun(emulator, { store }, { options: { idleTimeoutMs: 150 } });
 * ```
 */
export function startStreamedRun(emulator: Emulator, host: TestHost = {}, run: TestRun = {}): Run {
  return startTestRun(emulator, true, host, run);
}

/** The same run polled (no stream): what `startRun` does without `stream: true`. */
export function startPolledRun(emulator: Emulator, host: TestHost = {}, run: TestRun = {}): Run {
  return startTestRun(emulator, false, host, run);
}

function startTestRun(emulator: Emulator, stream: boolean, host: TestHost, run: TestRun): Run {
  const { client = clientFor(emulator), ...hostOptions } = host;
  return startRun(
    { client, ...hostOptions },
    { ...REQUEST, ...run.request, ...(stream ? { stream: true } : {}) },
    {
      ...(run.runId !== undefined ? { runId: run.runId } : {}),
      options: { ...FAST, ...run.options },
    },
  );
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
