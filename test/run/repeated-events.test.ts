/**
 * Issue 13.5: a stream that replays old sequence numbers forever used to feed the idle
 * watchdog, and the run never ended. Only progress (a new sequence number) resets it now, and
 * past a bound the repeats are a broken stream: interrupt, check, resume or poll.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { encodeContinuationToken, rehydrateRun } from "../../src/index.js";
import {
  type FakeServer,
  fakeResponse,
  sendJson,
  sseFrame,
  startFakeServer,
} from "../support/fake-server.js";

let server: FakeServer | undefined;
const timers = new Set<NodeJS.Timeout>();
afterEach(async () => {
  for (const timer of timers) clearInterval(timer);
  timers.clear();
  await server?.close();
  server = undefined;
});

const delta = (n: number) => ({
  type: "response.output_text.delta",
  sequence_number: n,
  item_id: "msg_1",
  output_index: 0,
  content_index: 0,
  delta: `t${n} `,
});

/**
 * A stream of events 0-3, then event 2 again and again every `everyMs`, forever. A poll says
 * the response completed with the text of the four events.
 */
function repeatingServer(everyMs: number) {
  const text = "t1 t2 t3 ";
  return startFakeServer((request, res: ServerResponse) => {
    if (request.query.get("stream") === "true") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const response = fakeResponse("resp_rep", "in_progress");
      res.write(sseFrame({ type: "response.in_progress", sequence_number: 0, response }));
      for (const n of [1, 2, 3]) res.write(sseFrame(delta(n)));
      const timer = setInterval(() => res.write(sseFrame(delta(2))), everyMs);
      timers.add(timer);
      res.on("close", () => clearInterval(timer));
      return;
    }
    sendJson(res, 200, fakeResponse("resp_rep", "completed", text));
  });
}

async function follow(options: { idleTimeoutMs: number; firstEventTimeoutMs: number }) {
  const token = encodeContinuationToken({ responseId: "resp_rep", sequenceNumber: 0 });
  const run = await rehydrateRun({ client: (server as FakeServer).client() }, { token, options });
  const interruptions: string[] = [];
  let text = "";
  run.on("delta", (d) => {
    text += d.text;
  });
  run.subscribe({
    next: () => {
      const why = run.getSnapshot().context.interruption;
      if (why && interruptions.at(-1) !== why) interruptions.push(why);
    },
  });
  const result = await run.result();
  return { result, interruptions, text, run };
}

describe("a stream that repeats old events", () => {
  it("does not feed the idle watchdog: repeats slower than the bound still stall", async () => {
    // 101 repeats take 5 s; the idle watchdog (1 s without progress) comes first. The headers
    // may take their time on a loaded machine (firstEventTimeoutMs bounds them too).
    server = await repeatingServer(50);
    const { result, interruptions } = await follow({
      idleTimeoutMs: 1_000,
      firstEventTimeoutMs: 10_000,
    });
    expect(result.outcome).toBe("completed");
    expect(result.text).toBe("t1 t2 t3 ");
    expect(interruptions).toContain("stalled");
    expect(interruptions).not.toContain("dropped");
  });

  it("past the bound is a broken stream, whatever the idle timeout", async () => {
    server = await repeatingServer(1);
    const { result, interruptions, run } = await follow({
      idleTimeoutMs: 600_000,
      firstEventTimeoutMs: 600_000,
    });
    expect(result.outcome).toBe("completed");
    expect(interruptions[0]).toBe("dropped");
    expect(run.getSnapshot().context.lastFailure?.message).toMatch(/repeated \d+ events/);
  });
});
