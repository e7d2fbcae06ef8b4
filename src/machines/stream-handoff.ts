/**
 * How a stream opened by one actor reaches the actor that reads it, the XState way: the opening
 * actor (`createStream` in `started`, `resume` in `resumed`) returns it in its output, the done
 * event carries it to the transition into `streaming`, and the reader's invoke takes it as its
 * input. Each run reads the stream it opened, whatever else runs beside it in the process.
 *
 * XState keeps a child's input (and a done child's output) in the snapshot it persists:
 * {@link persistedWithoutStream} leaves the stream out, so a save stays plain data (and a
 * restored run opens its stream again).
 */
import type { AnyActorLogic } from "xstate";
import type { ResponseEventStream, ResponseState } from "../services/responses-client.js";

/** A stream opened and handed over to the state that reads it (in a done event's output). */
export interface OpenedStream {
  /** Never persisted: see {@link persistedWithoutStream}. */
  stream: ResponseEventStream;
}

/** The create stream, read up to `response.created`, which names the response. */
export interface CreatedStream extends OpenedStream {
  response: ResponseState;
  sequenceNumber: number;
}

/**
 * `logic` whose persisted snapshot leaves out the live stream of its input or output. XState
 * keeps a child's input (and a done child's output) in the snapshot it persists, and a handed-
 * over stream lives there; a save must stay plain data.
 *
 * @example
 * ```ts
 * const openStream = persistedWithoutStream(fromPromise(async () => ({ stream: await open() })));
 * ```
 */
export function persistedWithoutStream<TLogic extends AnyActorLogic>(logic: TLogic): TLogic {
  return {
    ...logic,
    getPersistedSnapshot: (snapshot: unknown, options: unknown) => {
      const persisted = logic.getPersistedSnapshot(snapshot, options as never) as object;
      if (!holdsStream(persisted, "input") && !holdsStream(persisted, "output")) return persisted;
      const plain: Record<string, unknown> = { ...persisted };
      for (const key of ["input", "output"] as const) {
        if (!holdsStream(plain, key)) continue;
        const { stream: _stream, ...rest } = plain[key] as Record<string, unknown>;
        plain[key] = rest;
      }
      return plain;
    },
  };
}

function holdsStream(snapshot: object, key: "input" | "output"): boolean {
  const value = (snapshot as Record<string, unknown>)[key];
  return typeof value === "object" && value !== null && "stream" in value;
}

/**
 * A stream an opening actor hands over in its output. Until the output is delivered it is the
 * actor's: stopped before that (its state left: a cancel, a disconnect, the deadline), the actor
 * closes it. Once the output is delivered XState no longer aborts the actor's signal, and the
 * stream is the next state's (or the transition's, which closes it if it does not read it).
 *
 * @example
 * ```ts
 * fromPromise(async ({ signal }) => ({ stream: handOver(await client.streamFrom(id, 41, signal), signal) }));
 * ```
 */
export function handOver(stream: ResponseEventStream, signal: AbortSignal): ResponseEventStream {
  if (signal.aborted) stream.abort();
  else signal.addEventListener("abort", () => stream.abort(), { once: true });
  return stream;
}
