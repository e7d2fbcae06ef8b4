/**
 * The shared SSE writer (src/sse): framing of events and comments, an `SseWriter` following an
 * `EventLog` (replay from an index, live appends, batching, the end of the log), back-pressure
 * from a slow consumer, heartbeats, and the gate hooks the emulator's faults use. The framing is
 * checked by reading it back with the parser baton's reader uses (eventsource-parser).
 */
import { EventEmitter } from "node:events";
import {
  createServer,
  get,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  EventLog,
  formatComment,
  formatEvent,
  formatJsonEvent,
  type SseSink,
  SseWriter,
  sseEventStream,
  writeSseHead,
} from "../../src/sse/index.js";

/** What a client's parser makes of `text`: events, and comments apart. */
function parse(text: string): { events: EventSourceMessage[]; comments: string[] } {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
  });
  parser.feed(text);
  return { events, comments };
}

/** A sink whose buffer the test fills and drains by hand. */
class FakeSink extends EventEmitter implements SseSink {
  readonly chunks: string[] = [];
  full = false;
  ended = false;
  destroyed = false;
  headersFlushed = 0;

  write(chunk: string, callback?: () => void): boolean {
    this.chunks.push(chunk);
    if (callback) queueMicrotask(callback);
    return !this.full;
  }

  end(): void {
    this.ended = true;
    this.emit("close");
  }

  flushHeaders(): void {
    this.headersFlushed++;
  }

  destroy(): void {
    this.destroyed = true;
    this.emit("close");
  }

  drain(): void {
    this.full = false;
    this.emit("drain");
  }

  get text(): string {
    return this.chunks.join("");
  }
}

const event = (n: number) => formatEvent({ event: "tick", data: `{"n":${n}}` });

function logOf(count: number): EventLog {
  const log = new EventLog();
  for (let n = 0; n < count; n++) log.push(event(n));
  return log;
}

describe("formatEvent", () => {
  it("frames a one-line payload as event and data lines, ended by a blank line", () => {
    expect(formatEvent({ event: "keepalive", data: '{"sequence_number":7}' })).toBe(
      'event: keepalive\ndata: {"sequence_number":7}\n\n',
    );
    expect(formatEvent({ data: "plain" })).toBe("data: plain\n\n");
    expect(formatEvent({ data: "" })).toBe("data: \n\n");
  });

  it("puts the id first and the retry last", () => {
    const text = formatEvent({ id: 120, event: "delta", data: "x", retry: 3000 });
    expect(text).toBe("id: 120\nevent: delta\ndata: x\nretry: 3000\n\n");
    expect(parse(text).events).toEqual([{ id: "120", event: "delta", data: "x" }]);
  });

  it("sends each line of a multi-line payload as its own data line", () => {
    const text = formatEvent({ id: "a", data: "one\ntwo\r\nthree\rfour" });
    expect(text).toBe("id: a\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
    // The client joins them with \n: the payload comes back, line breaks normalized.
    expect(parse(text).events).toEqual([
      { id: "a", event: undefined, data: "one\ntwo\nthree\nfour" },
    ]);
    expect(parse(formatEvent({ data: "\nend\n" })).events[0]?.data).toBe("\nend\n");
  });

  it("keeps data that looks like a field or a comment inside the payload", () => {
    const data = "event: fake\n: not a comment\nid: 9";
    const { events, comments } = parse(formatEvent({ event: "real", data }));
    expect(events).toEqual([{ id: undefined, event: "real", data }]);
    expect(comments).toEqual([]);
  });

  it("refuses an id or event type that would break the framing", () => {
    expect(() => formatEvent({ id: "1\n2", data: "x" })).toThrow(RangeError);
    expect(() => formatEvent({ id: "1\u00002", data: "x" })).toThrow(RangeError);
    expect(() => formatEvent({ event: "a\rb", data: "x" })).toThrow(RangeError);
    expect(() => formatEvent({ data: "x", retry: -1 })).toThrow(RangeError);
    expect(() => formatEvent({ data: "x", retry: 1.5 })).toThrow(RangeError);
  });
});

describe("formatJsonEvent", () => {
  it("frames compact JSON exactly as formatEvent does, as one data line", () => {
    const values = [{ text: "line\nbreak\r" }, "x", 7, null, [1, { a: "\u2028" }]];
    for (const value of values) {
      const json = JSON.stringify(value);
      expect(formatJsonEvent(json)).toBe(formatEvent({ data: json }));
      expect(formatJsonEvent(json, { event: "e", id: 3 })).toBe(
        formatEvent({ event: "e", id: 3, data: json }),
      );
      expect(JSON.parse(parse(formatJsonEvent(json)).events[0]?.data ?? "")).toEqual(value);
    }
  });

  it("refuses an id or event type that would break the framing", () => {
    expect(() => formatJsonEvent("{}", { event: "a\nb" })).toThrow(RangeError);
    expect(() => formatJsonEvent("{}", { id: "a\rb" })).toThrow(RangeError);
  });
});

describe("formatComment", () => {
  it("frames comment lines that a client ignores", () => {
    expect(formatComment("heartbeat")).toBe(": heartbeat\n\n");
    expect(formatComment()).toBe(":\n\n");
    const text = `${formatComment("two\nlines")}${formatEvent({ data: "after" })}`;
    expect(text.startsWith(": two\n: lines\n\n")).toBe(true);
    const { events, comments } = parse(text);
    expect(comments).toEqual(["two", "lines"]);
    expect(events.map((e) => e.data)).toEqual(["after"]);
  });
});

describe("SseWriter", () => {
  it("replays from `start`, in one write, then follows appends until the log closes", () => {
    const log = logOf(5);
    const sink = new FakeSink();
    new SseWriter(sink, log, { start: 2 }).begin();
    expect(sink.chunks).toEqual([event(2) + event(3) + event(4)]);
    expect(sink.headersFlushed).toBe(0);

    log.push(event(5));
    log.push(event(6));
    expect(sink.chunks).toHaveLength(1); // nothing until the batch is published
    log.publish();
    expect(sink.chunks[1]).toBe(event(5) + event(6));

    expect(sink.ended).toBe(false);
    log.close();
    expect(sink.ended).toBe(true);
    expect(log.listenerCount).toBe(0);
  });

  it("sends the head at once when there is nothing to write yet", () => {
    const sink = new FakeSink();
    new SseWriter(sink, new EventLog()).begin();
    expect(sink.chunks).toEqual([]);
    expect(sink.headersFlushed).toBe(1);
  });

  it("ends at once on a closed log it has fully written, and after it otherwise", () => {
    const log = logOf(2);
    log.close();
    const sink = new FakeSink();
    new SseWriter(sink, log, { start: 1 }).begin();
    expect(sink.chunks).toEqual([event(1)]);
    expect(sink.ended).toBe(true);
  });

  it("stops following when the client goes away", () => {
    const log = logOf(1);
    const sink = new FakeSink();
    new SseWriter(sink, log).begin();
    expect(log.listenerCount).toBe(1);
    sink.emit("close");
    expect(log.listenerCount).toBe(0);
    log.push(event(1));
    log.publish();
    expect(sink.chunks).toHaveLength(1);
  });

  it("holds a slow consumer at a full buffer and sends the backlog in one write on drain", () => {
    const log = logOf(1);
    const sink = new FakeSink();
    sink.full = true;
    new SseWriter(sink, log).begin();
    expect(sink.chunks).toEqual([event(0)]);

    for (let n = 1; n <= 100; n++) {
      log.push(event(n));
      log.publish();
    }
    log.close();
    expect(sink.chunks).toHaveLength(1); // not one write per frame into a full buffer
    expect(sink.ended).toBe(false);

    sink.drain();
    expect(sink.chunks).toHaveLength(2);
    expect(sink.chunks[1]).toBe(log.frames.slice(1).join(""));
    expect(sink.ended).toBe(true);
    expect(parse(sink.text).events.map((e) => e.data)).toEqual(
      Array.from({ length: 101 }, (_, n) => `{"n":${n}}`),
    );
  });

  it("applies `transform` to every chunk", () => {
    const log = logOf(3);
    const sink = new FakeSink();
    new SseWriter(sink, log, { transform: (chunk) => chunk.replaceAll("tick", "tock") }).begin();
    expect(sink.text).toBe(logOf(3).frames.join("").replaceAll("tick", "tock"));
  });

  describe("gate", () => {
    it("caps the frames per chunk and holds at 0 until resume()", () => {
      const log = logOf(6);
      const sink = new FakeSink();
      let holdAt: number | undefined = 4;
      const writer = new SseWriter(sink, log, {
        gate: {
          allow: (written) => (holdAt !== undefined && written >= holdAt ? 0 : 2),
        },
      });
      writer.begin();
      expect(sink.chunks).toEqual([event(0) + event(1), event(2) + event(3)]);
      log.close();
      expect(sink.ended).toBe(false);
      holdAt = undefined;
      writer.resume();
      expect(sink.chunks[2]).toBe(event(4) + event(5));
      expect(writer.written).toBe(6);
      expect(sink.ended).toBe(true);
    });

    it("sends the head when it holds before the first frame", () => {
      const sink = new FakeSink();
      new SseWriter(sink, logOf(2), { gate: { allow: () => 0 } }).begin();
      expect(sink.chunks).toEqual([]);
      expect(sink.headersFlushed).toBe(1);
    });

    it("cuts the connection once the chunk it asked for has been written", async () => {
      const log = logOf(5);
      const sink = new FakeSink();
      const detach = vi.fn();
      new SseWriter(sink, log, {
        gate: {
          allow: (written) => 3 - written,
          cutAfter: (written, complete) => written >= 3 && !complete,
          detach,
        },
      }).begin();
      expect(sink.chunks).toEqual([event(0) + event(1) + event(2)]);
      expect(sink.destroyed).toBe(false); // not before the frames reached the socket
      await Promise.resolve();
      expect(sink.destroyed).toBe(true);
      expect(sink.ended).toBe(false);
      expect(detach).toHaveBeenCalledTimes(1);
      expect(log.listenerCount).toBe(0);
    });
  });

  describe("heartbeats", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("writes a comment only after an interval without frames, and none after the end", () => {
      vi.useFakeTimers();
      const log = new EventLog();
      const sink = new FakeSink();
      new SseWriter(sink, log, { heartbeatMs: 1_000 }).begin();
      vi.advanceTimersByTime(1_000);
      expect(sink.chunks).toEqual([": heartbeat\n\n"]);

      log.push(event(0));
      log.publish();
      vi.advanceTimersByTime(1_000); // a frame went out in this interval: no heartbeat
      expect(sink.chunks).toEqual([": heartbeat\n\n", event(0)]);
      vi.advanceTimersByTime(1_000);
      expect(sink.chunks).toHaveLength(3);

      log.close();
      vi.advanceTimersByTime(10_000);
      expect(sink.chunks).toHaveLength(3);
      expect(vi.getTimerCount()).toBe(0);
      expect(parse(sink.text).events.map((e) => e.data)).toEqual(['{"n":0}']);
    });

    it("writes none into a full buffer, and takes its own text", () => {
      vi.useFakeTimers();
      const log = logOf(1);
      const sink = new FakeSink();
      sink.full = true;
      new SseWriter(sink, log, { heartbeatMs: 500, heartbeatText: "ping" }).begin();
      vi.advanceTimersByTime(5_000);
      expect(sink.chunks).toEqual([event(0)]);
      sink.drain();
      vi.advanceTimersByTime(1_000);
      expect(sink.chunks).toEqual([event(0), ": ping\n\n"]);
      sink.emit("close");
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});

describe("SseWriter over HTTP", () => {
  let server: Server | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(handler: (res: ServerResponse) => void): Promise<string> {
    server = createServer((_req, res) => handler(res));
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it("round-trips ids, types and multi-line payloads through baton's reader", async () => {
    const log = new EventLog();
    const url = await serve((res) => {
      writeSseHead(res);
      new SseWriter(res, log, { start: 1 }).begin();
    });
    const payloads = [{ text: "skipped" }, { text: "a\nb" }, { text: "c" }];
    payloads.forEach((payload, i) => {
      log.push(formatEvent({ id: i, event: "t", data: JSON.stringify(payload, null, 1) }));
    });
    log.close();
    const response = await fetch(url);
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("no-cache");
    const read: unknown[] = [];
    const body = response.body as unknown as AsyncIterable<Uint8Array>;
    for await (const item of sseEventStream(
      { headers: response.headers, body },
      new AbortController(),
      (raw) => raw,
    )) {
      read.push(item);
    }
    expect(read).toEqual(payloads.slice(1));
  });

  it("does not queue more than one chunk in a socket a paused client does not read", async () => {
    const log = new EventLog();
    let reply: ServerResponse | undefined;
    let writes = () => 0;
    const url = await serve((res) => {
      reply = res;
      const spy = vi.spyOn(res, "write");
      writes = () => spy.mock.calls.length;
      writeSseHead(res);
      new SseWriter(res, log).begin();
    });
    const response = await new Promise<IncomingMessage>((resolve) => get(url, resolve));
    response.pause();
    const frame = (n: number) => formatEvent({ id: n, data: `${n}:${"x".repeat(1_000)}` });
    // Append until the socket pushes back (kernel buffers first, then node's).
    let n = 0;
    while (reply !== undefined && !reply.writableNeedDrain && n < 100_000) {
      log.push(frame(n++));
      log.publish();
    }
    expect(reply?.writableNeedDrain).toBe(true);
    const writesWhenFull = writes();
    for (let i = 0; i < 2_000; i++) {
      log.push(frame(n++));
      log.publish();
    }
    expect(writes()).toBe(writesWhenFull); // the backlog stays in the log, not in the socket
    log.close();

    const received: string[] = [];
    const parser = createParser({ onEvent: (message) => received.push(message.id ?? "") });
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => parser.feed(chunk));
    response.resume();
    await new Promise((resolve) => response.on("end", resolve));
    expect(received).toEqual(Array.from({ length: n }, (_, i) => String(i)));
  });
});
