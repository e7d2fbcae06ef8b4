/**
 * Server-sent events, both ends, for any floor of baton: `formatEvent` (and its hot-path form
 * `formatJsonEvent`) and `formatComment` frame what goes on the wire, an `EventLog` holds a
 * stream's frames for replay, an `SseWriter` streams a log to one connection (batching,
 * back-pressure, heartbeats), and `sseEventStream` reads a JSON event stream on the client side.
 *
 * @example
 * ```ts
 * import { EventLog, formatEvent, SseWriter, writeSseHead } from "./sse/index.js";
 *
 * const log = new EventLog();
 * writeSseHead(res);
 * new SseWriter(res, log).begin();
 * log.push(formatEvent({ id: 0, data: '{"text":"hi"}' }));
 * log.publish();
 * ```
 */
export { EventLog, type LogListener } from "./event-log.js";
export {
  type SseEventStream,
  type StreamBody,
  type StreamResponse,
  sseEventStream,
} from "./reader.js";
export {
  formatComment,
  formatEvent,
  formatJsonEvent,
  type SseEvent,
  type SseGate,
  type SseSink,
  SseWriter,
  type SseWriterOptions,
  writeSseHead,
} from "./writer.js";
