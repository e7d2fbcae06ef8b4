/**
 * The stream a run opens (the create's, a resume's) is the stream that run reads: handed from
 * the opening actor to the reader in the done event, never through a table shared by the runs
 * of one machine. A stream nobody will read is closed at once. Real emulator, real SDK.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  type PersistedRun,
  type RunStateName,
  rehydrateRun,
  type StartRunOptions,
  startRun,
} from "../../src/index.js";
import { openAIResponsesClient } from "../../src/services/openai-responses-client.js";
import type {
  ResponseEventStream,
  ResponseStreamEvent,
  ResponsesClient,
} from "../../src/services/responses-client.js";
import { clientFor, emulatorFor, FAST, inState, Recorder, until } from "../support/run-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

/** One stream the client opened, as its reader treated it. */
interface TrackedStream {
  kind: "create" | "resume";
  /** Read up to its terminal event (or its end). */
  ended: boolean;
  /** `abort()` before that: the stream was thrown away. */
  abortedEarly: boolean;
  /** Aborted or read to its end: nothing holds the connection any more. */
  closed: boolean;
}

interface TrackingClient extends ResponsesClient {
  readonly streams: TrackedStream[];
  /** Streams still open. */
  open(): TrackedStream[];
}

/**
 * The real client port, noting every stream it hands out. `pairResumes`: the first two resumes
 * return together, once both are open (two runs resuming in the same turn of the event loop).
 * `holdResumes`: each resume, once open, waits for `release()` before it is returned.
 */
function trackingClient(
  real: ResponsesClient,
  options: { pairResumes?: boolean; holdResumes?: Promise<void> } = {},
): TrackingClient {
  const streams: TrackedStream[] = [];
  const pairing: (() => void)[] = [];
  let paired = 0;
  const pairUp = () =>
    new Promise<void>((resolve) => {
      if (!options.pairResumes || paired >= 2) return resolve();
      paired++;
      pairing.push(resolve);
      if (pairing.length === 2) for (const release of pairing) release();
    });
  const track = (kind: TrackedStream["kind"], stream: ResponseEventStream): ResponseEventStream => {
    const tracked: TrackedStream = { kind, ended: false, abortedEarly: false, closed: false };
    streams.push(tracked);
    async function* read(iterator: AsyncIterator<ResponseStreamEvent>) {
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done) break;
          // Noted before it is handed on: the reader aborts as soon as it has the verdict.
          if (next.value.kind === "terminal") tracked.ended = true;
          yield next.value;
        }
        tracked.ended = true;
      } finally {
        tracked.closed = true;
      }
    }
    return {
      abort: () => {
        if (!tracked.ended) tracked.abortedEarly = true;
        tracked.closed = true;
        stream.abort();
      },
      [Symbol.asyncIterator]: () => read(stream[Symbol.asyncIterator]()),
    };
  };
  return {
    ...real,
    createStream: async (request, signal) =>
      track("create", await real.createStream(request, signal)),
    streamFrom: async (responseId, startingAfter, signal) => {
      const stream = await real.streamFrom(responseId, startingAfter, signal);
      await pairUp();
      await options.holdResumes;
      return track("resume", stream);
    },
    streams,
    open: () => streams.filter((s) => !s.closed),
  };
}

/** A run saved the first time `when` holds in `state`, its process then gone. */
async function savedAt(
  options: Omit<StartRunOptions, "client">,
  state: RunStateName,
  when: (run: ReturnType<typeof startRun>) => boolean,
) {
  const run = startRun({ client: clientFor(emulator), ...options });
  const first = new Recorder(run);
  const persisted = await new Promise<PersistedRun>((resolve) => {
    const check = () => {
      if (run.state === state && when(run)) {
        sub.unsubscribe();
        const saved = run.toPersisted();
        run.actor.stop();
        resolve(JSON.parse(JSON.stringify(saved)));
      }
    };
    const sub = run.subscribe({ next: check, error: () => {} });
    check();
  });
  const firstText = first.text.slice(0, persisted.snapshot.context.deliveredChars ?? 0);
  return { persisted, firstText };
}

/** Resolves once `holds()` is true (checked every few ms). */
async function eventually(holds: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!holds()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 2));
  }
}

const streamRequests = () => emulator.requests.filter((r) => r.kind === "retrieve-stream").length;

describe("the stream hand-off", () => {
  it("two rehydrations of one saved streaming run, one client: each reads its own stream to the end", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const { persisted, firstText } = await savedAt(
      { model: "o3", input: "twice", stream: true, options: FAST },
      "streaming",
      (run) => (run.getSnapshot().context.deliveredChars ?? 0) > 10,
    );
    const before = streamRequests();
    // One client, so one machine (and one set of actors) for both runs.
    const client = trackingClient(openAIResponsesClient(clientFor(emulator)), {
      pairResumes: true,
    });
    const [a, b] = await Promise.all([
      rehydrateRun({ client }, { persisted }),
      rehydrateRun({ client }, { persisted }),
    ]);
    const [seenA, seenB] = [new Recorder(a), new Recorder(b)];
    const [resultA, resultB] = await Promise.all([a.result(), b.result()]);

    expect(resultA.outcome).toBe("completed");
    expect(resultB.outcome).toBe("completed");
    expect(firstText + seenA.text).toBe(resultA.text);
    expect(firstText + seenB.text).toBe(resultB.text);
    expect(seenA.repeatedSequenceNumbers).toEqual([]);
    expect(seenB.repeatedSequenceNumbers).toEqual([]);
    // Each run read the one stream it opened, to its end: none was thrown away, none reopened.
    expect(client.streams).toEqual([
      { kind: "resume", ended: true, abortedEarly: false, closed: true },
      { kind: "resume", ended: true, abortedEarly: false, closed: true },
    ]);
    expect(streamRequests() - before).toBe(2);
  });

  it("a cancel while the create stream is answering closes that stream at once", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const client = trackingClient(openAIResponsesClient(clientFor(emulator)));
    const run = startRun({ client }, { model: "o3", input: "x", stream: true }, { options: FAST });
    expect(run.state).toBe("started");
    run.actor.send({ type: "run.cancel" });
    const result = await run.result();
    expect(result.outcome).toBe("cancelled");
    expect(client.streams.map((s) => s.kind)).toEqual(["create"]);
    expect(client.open()).toEqual([]);
  });

  for (const leave of ["run.cancel", "run.disconnect"] as const) {
    it(`${leave} while a resume is opening leaves no stream open`, async () => {
      emulator = await emulatorFor({ tokenDelayMs: 20 });
      emulator.faults.add({ on: "create-stream", drop: { afterEvents: 5 } });
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const client = trackingClient(openAIResponsesClient(clientFor(emulator)), {
        holdResumes: held,
      });
      const run = startRun(
        { client },
        { model: "o3", input: "x", stream: true },
        { options: FAST },
      );
      await until(run, inState("resumed"));
      // The resume's stream is open on the server; the actor has not had it yet.
      await eventually(() => streamRequests() > 0);
      await new Promise((r) => setTimeout(r, 30));
      expect(run.state).toBe("resumed");
      run.actor.send({ type: leave });
      release();
      await new Promise((r) => setTimeout(r, 30));
      if (leave === "run.cancel") expect((await run.result()).outcome).toBe("cancelled");
      else expect(run.state).toBe("interrupted");
      expect(client.streams.map((s) => s.kind)).toEqual(["create", "resume"]);
      expect(client.open()).toEqual([]);
      run.actor.stop();
    });
  }

  it("a save never holds the stream: the reader's input is persisted without it", async () => {
    emulator = await emulatorFor({ tokenDelayMs: 5 });
    const run = startRun(
      { client: clientFor(emulator) },
      { model: "o3", input: "x", stream: true },
      { options: FAST },
    );
    await until(run, inState("streaming"));
    const live = run.actor.getSnapshot().children.stream?.getSnapshot() as {
      input: Record<string, unknown>;
    };
    expect(live.input.stream).toBeDefined();
    const saved = run.toPersisted().snapshot as unknown as {
      children: Record<string, { snapshot: { input: Record<string, unknown> } }>;
    };
    const input = saved.children.stream?.snapshot.input;
    expect(input).toBeDefined();
    expect(Object.keys(input ?? {})).not.toContain("stream");
    expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
    await run.result();
  });
});
