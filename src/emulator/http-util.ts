/**
 * Small helpers of the HTTP layer: reading a body, writing JSON and SSE heads, and flattening
 * headers and query strings for the request log.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";

/** Reads the whole request body as UTF-8 text. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    let ended = false;
    req.on("end", () => {
      ended = true;
      resolve(chunks.length === 0 ? "" : Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", reject);
    // A client that goes away mid-body never sends "end": settle instead of leaking the handler.
    req.on("close", () => {
      if (!ended) reject(new Error("request aborted before its body was complete"));
    });
  });
}

/** Sends a JSON reply (`content-type: application/json`). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.destroyed || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** Writes the head of an SSE reply; the body follows through an `SseWriter`. */
export function writeSseHead(res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
}

/** Request headers as a flat record, without `authorization` (never logged). */
export function recordableHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === "authorization" || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** Query parameters as a flat record; repeated keys (`include[]`) are joined with commas. */
export function queryRecord(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of params) {
    const previous = out[key];
    out[key] = previous === undefined ? value : `${previous},${value}`;
  }
  return out;
}
