/**
 * What the run machine's transitions hand their guards, actions and invokes: params mapped
 * from the event (an actor's answer, a stream batch) and invoke inputs mapped from context.
 * One mapping a name, so the machine file reads `params: failureParams` rather than the digging.
 */
import type { ClientFailure } from "../services/client-failure.js";
import type {
  ResponseEventStream,
  ResponseState,
  ResponseStreamEvent,
  RetrieveResult,
} from "../services/responses-client.js";
import type { OpenedStream } from "./run-actors.js";
import { requestTimeout } from "./run-context.js";
import type { GiveUpReason, RunContext, RunEvent } from "./run-types.js";
import type { BatchReading } from "./stream-batch.js";

/** Input of the actors that act on the run's response (retrieve, cancel), with their timeout. */
export function requestInput({ context }: { context: RunContext }) {
  return { responseId: context.responseId as string, timeoutMs: requestTimeout(context) };
}

/** Params of a guard on a retrieve's answer: the response's status. */
export function retrievedStatus({ event }: { event: { output: RetrieveResult } }) {
  return { status: event.output.response.status };
}

/** Params of an action on a retrieve's answer: the response. */
export function retrievedResponse({ event }: { event: { output: RetrieveResult } }) {
  return { response: event.output.response };
}

/** Params of a guard on a create's or a cancel's answer: the response's status. */
export function answeredStatus({ event }: { event: { output: ResponseState } }) {
  return { status: event.output.status };
}

/** Params of an action on a create's or a cancel's answer: the response. */
export function answeredResponse({ event }: { event: { output: ResponseState } }) {
  return { response: event.output };
}

/** Params of a guard or action on a promise actor's rejection: the failure it carries. */
export function failureParams({ event }: { event: { error: unknown } }) {
  return { failure: failureOf(event.error) };
}

/** Params of `giveUp` on a promise actor's rejection. */
export function giveUpParams(reason: GiveUpReason) {
  return ({ event }: { event: { error: unknown } }) => ({
    reason,
    failure: failureOf(event.error),
  });
}

/** A promise actor's rejection, as the `ClientFailure` the run actors throw. */
export function failureOf(error: unknown): ClientFailure {
  if (typeof error === "object" && error !== null && "kind" in error && "message" in error) {
    return error as ClientFailure;
  }
  return { kind: "protocol", message: error instanceof Error ? error.message : String(error) };
}

const NOTHING_READ: BatchReading = { accepted: [], end: null };

/** A `stream.events` batch's reading, as the params of its guards and actions. */
export function readingOf({ event }: { event: RunEvent }): { reading: BatchReading } {
  return { reading: event.type === "stream.events" ? event.reading : NOTHING_READ };
}

/**
 * The terminal event of a batch the `reachesTerminalEvent` guard let through (a batch holds at
 * most one: the stream ends with it).
 */
export function verdictOf({
  event,
}: {
  event: RunEvent;
}): Extract<ResponseStreamEvent, { kind: "terminal" }> {
  const end = readingOf({ event }).reading.end;
  if (end?.kind !== "terminal") throw new Error("the batch has no terminal event");
  return end.event;
}

/**
 * The stream the transition into `streaming` brings: the one its opening actor (`createStream`,
 * `resume`) handed over in its output. None for any other event (a model's event without one):
 * the reader then opens its own.
 */
export function openedStreamOf(event: { type: string }): ResponseEventStream | undefined {
  if (
    event.type !== "xstate.done.actor.createStream" &&
    event.type !== "xstate.done.actor.resume"
  ) {
    return undefined;
  }
  return (event as { output?: Partial<OpenedStream> }).output?.stream;
}
