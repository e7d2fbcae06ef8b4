/**
 * Builders of the SSE frames of one response, in the shapes of protocol.md §4.2–4.3. Each
 * returns the finished frame string, which goes into the event log once and is written as is to
 * every follower. Delta frames are assembled by hand: they are the bulk of all traffic.
 */
import { formatJsonEvent } from "../sse/writer.js";
import { outputItem, textPart, toResponseObject } from "./response-object.js";
import type { ResponseRecord } from "./store.js";

/** `event: <type>\ndata: <json>\n\n`: no `id:` lines and no `[DONE]`, as the real API sends. */
function frame(event: string, json: string): string {
  return formatJsonEvent(json, { event });
}

/** Lifecycle events, which embed the full Response object. */
export type LifecycleType =
  | "response.created"
  | "response.queued"
  | "response.in_progress"
  | "response.completed"
  | "response.incomplete"
  | "response.failed";

/** `response.created`, `.queued`, `.in_progress` or a terminal event. */
export function lifecycleFrame(type: LifecycleType, record: ResponseRecord, seq: number): string {
  const response = JSON.stringify(toResponseObject(record));
  return frame(type, `{"type":"${type}","response":${response},"sequence_number":${seq}}`);
}

/** `response.output_item.added` or `.done` with the item as it currently stands. */
export function outputItemFrame(
  type: "response.output_item.added" | "response.output_item.done",
  record: ResponseRecord,
  seq: number,
): string {
  const item = JSON.stringify(outputItem(record));
  return frame(type, `{"type":"${type}","item":${item},"output_index":0,"sequence_number":${seq}}`);
}

/** `response.content_part.added` (empty text) or `.done` (the full text). */
export function contentPartFrame(
  type: "response.content_part.added" | "response.content_part.done",
  record: ResponseRecord,
  seq: number,
): string {
  const part = JSON.stringify(textPart(type === "response.content_part.added" ? "" : record.text));
  return frame(
    type,
    `{"type":"${type}","content_index":0,"item_id":"${record.itemId}","output_index":0,"part":${part},"sequence_number":${seq}}`,
  );
}

/** `response.output_text.delta`; `obfuscation` is omitted when null. */
export function deltaFrame(
  itemId: string,
  delta: string,
  obfuscation: string | null,
  seq: number,
): string {
  const obf = obfuscation === null ? "" : `,"obfuscation":"${obfuscation}"`;
  return frame(
    "response.output_text.delta",
    `{"type":"response.output_text.delta","content_index":0,"delta":${JSON.stringify(delta)},"item_id":"${itemId}","logprobs":[]${obf},"output_index":0,"sequence_number":${seq}}`,
  );
}

/** `response.output_text.done` with the full text. */
export function textDoneFrame(record: ResponseRecord, seq: number): string {
  return frame(
    "response.output_text.done",
    `{"type":"response.output_text.done","content_index":0,"item_id":"${record.itemId}","logprobs":[],"output_index":0,"sequence_number":${seq},"text":${JSON.stringify(record.text)}}`,
  );
}

/**
 * The undocumented `keepalive` event the real service sends on long requests; it uses up a
 * sequence number (protocol.md §4.1).
 */
export function keepaliveFrame(seq: number): string {
  return frame("keepalive", `{"type":"keepalive","sequence_number":${seq}}`);
}
