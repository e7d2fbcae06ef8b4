/**
 * Drives one response from `queued` to a terminal state on the server's own timers, independent
 * of any connection: clients only ever follow the event log. The schedule is
 * created(+queued) → [queuedMs] → in_progress, item added, part added → a delta every
 * tokenDelayMs → text done, part done, item done, terminal. A token delay of 0 emits deltas in
 * batches on `setImmediate`, so one response cannot starve the event loop.
 */
import type { Clock } from "./clock.js";
import {
  contentPartFrame,
  deltaFrame,
  keepaliveFrame,
  lifecycleFrame,
  outputItemFrame,
  textDoneFrame,
} from "./events.js";
import { createTextGenerator } from "./generator.js";
import { createPrng, hashString, randomAlphanumeric } from "./random.js";
import type { ResponseRecord } from "./store.js";
import type { ResponseUsage } from "./types.js";

/** The resolved generation settings of one response (defaults merged with its script). */
export interface GenerationPlan {
  outputTokens: number;
  tokenDelayMs: number;
  queuedMs: number;
  stuckQueued: boolean;
  failAfterDeltas: number | null;
  failCode: string;
  failMessage: string;
  keepaliveEvery: number | null;
}

/** What generation needs besides the record and the plan. */
export interface GenerationContext {
  clock: Clock;
  seed: number;
  /** The input flattened to text; with the instructions and seed it fixes the output. */
  inputText: string;
  /** Called once when the response reaches a terminal state on its own. */
  onFinished?: (record: ResponseRecord) => void;
}

/** Deltas emitted per `setImmediate` turn when the token delay is 0. */
const IMMEDIATE_BATCH = 64;

/** The default message of a scripted failure, in the wording users report from the service. */
export const DEFAULT_FAIL_MESSAGE =
  "An error occurred while processing your request. You can retry your request, or contact us through our help center if the error persists.";

/**
 * Writes the creation events of `record` and schedules the rest; sets `record.stop`.
 *
 * @example
 * ```ts
 * startGeneration(record, plan, { clock: systemClock, seed: 1, inputText: "Say hi" });
 * record.log.frames[0]; // "event: response.created\n…"
 * ```
 */
export function startGeneration(
  record: ResponseRecord,
  plan: GenerationPlan,
  context: GenerationContext,
): void {
  // The log's length is the sequence number of the next event.
  const { log } = record;
  const tokens = createTextGenerator(context.inputText, record.echo.instructions, context.seed);
  const obfuscationPrng = record.obfuscation
    ? createPrng(hashString(`obfuscation\u0000${context.inputText}`, context.seed))
    : null;
  const maxTokens = record.echo.maxOutputTokens;
  const limit = maxTokens === null ? plan.outputTokens : Math.min(plan.outputTokens, maxTokens);
  const truncated = maxTokens !== null && maxTokens < plan.outputTokens;
  const batch = plan.tokenDelayMs > 0 ? 1 : IMMEDIATE_BATCH;

  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let stopped = false;
  record.stop = () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
  };

  const usage = (): ResponseUsage => ({
    input_tokens: record.inputTokens,
    input_tokens_details: { cache_write_tokens: 0, cached_tokens: 0 },
    output_tokens: record.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: record.inputTokens + record.outputTokens,
  });

  const end = (): void => {
    stopped = true;
    record.stop = () => {};
    log.publish();
    log.close();
    context.onFinished?.(record);
  };

  const fail = (): void => {
    if (record.itemStatus !== null) record.itemStatus = "incomplete";
    record.status = "failed";
    record.error = { code: plan.failCode, message: plan.failMessage };
    record.usage = usage();
    log.push(lifecycleFrame("response.failed", record, log.length));
    end();
  };

  const finish = (): void => {
    record.itemStatus = truncated ? "incomplete" : "completed";
    log.push(textDoneFrame(record, log.length));
    log.push(contentPartFrame("response.content_part.done", record, log.length));
    log.push(outputItemFrame("response.output_item.done", record, log.length));
    record.status = truncated ? "incomplete" : "completed";
    if (truncated) record.incompleteReason = "max_output_tokens";
    record.completedAtMs = context.clock.now();
    record.usage = usage();
    log.push(
      lifecycleFrame(truncated ? "response.incomplete" : "response.completed", record, log.length),
    );
    end();
  };

  /** Ends the response if it is due; true when it did. */
  const maybeEnd = (): boolean => {
    if (plan.failAfterDeltas !== null && record.outputTokens >= plan.failAfterDeltas) {
      fail();
      return true;
    }
    if (record.outputTokens >= limit) {
      finish();
      return true;
    }
    return false;
  };

  const emitDelta = (): void => {
    const token = tokens.next();
    record.text += token;
    record.outputTokens++;
    const obfuscation =
      obfuscationPrng === null
        ? null
        : randomAlphanumeric(obfuscationPrng, 2 + Math.floor(obfuscationPrng() * 14));
    log.push(deltaFrame(record.itemId, token, obfuscation, log.length));
    if (plan.keepaliveEvery !== null && record.outputTokens % plan.keepaliveEvery === 0) {
      log.push(keepaliveFrame(log.length));
    }
  };

  const step = (): void => {
    timer = undefined;
    immediate = undefined;
    if (stopped) return;
    for (let i = 0; i < batch; i++) {
      emitDelta();
      if (maybeEnd()) return;
    }
    log.publish();
    scheduleStep();
  };

  // One Timeout per response, re-armed with refresh(): no allocation per token.
  let stepTimer: NodeJS.Timeout | undefined;
  const scheduleStep = (): void => {
    if (plan.tokenDelayMs <= 0) {
      immediate = setImmediate(step);
      return;
    }
    if (stepTimer === undefined) stepTimer = setTimeout(step, plan.tokenDelayMs);
    else stepTimer.refresh();
    timer = stepTimer;
  };

  const begin = (): void => {
    timer = undefined;
    immediate = undefined;
    if (stopped) return;
    record.status = "in_progress";
    log.push(lifecycleFrame("response.in_progress", record, log.length));
    record.itemStatus = "in_progress";
    log.push(outputItemFrame("response.output_item.added", record, log.length));
    record.hasPart = true;
    log.push(contentPartFrame("response.content_part.added", record, log.length));
    if (maybeEnd()) return;
    log.publish();
    scheduleStep();
  };

  log.push(lifecycleFrame("response.created", record, log.length));
  if (record.background) {
    log.push(lifecycleFrame("response.queued", record, log.length));
    log.publish();
    if (!plan.stuckQueued) timer = setTimeout(begin, plan.queuedMs);
  } else {
    log.publish();
    immediate = setImmediate(begin);
  }
}
