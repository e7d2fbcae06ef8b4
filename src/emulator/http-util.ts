/**
 * Small helpers of the HTTP layer: reading a body, writing JSON, and flattening
 * headers and query strings for the request log.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { BodyRefusedError } from "../errors.js";

/** Limits on the bodies being read at one time. */
export interface BodyLimits {
  /** Largest body of one request, in bytes. */
  readonly maxBytes: number;
  /** Bytes of all bodies being buffered at once (over every connection). */
  readonly budget: { used: number; readonly max: number };
}

/**
 * Reads the whole request body as UTF-8 text, refusing it (`BodyRefused`) as soon as it is
 * known to be too large: from `content-length` before any byte is read, else at the chunk that
 * crosses `maxBytes`. Nothing past the limit is ever buffered, so a 100 MB body costs at most
 * `maxBytes` of memory, and all bodies in flight together at most `budget.max`.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<string> {
  return new Promise((resolve, reject) => {
    const announced = Number(req.headers["content-length"] ?? Number.NaN);
    if (Number.isFinite(announced) && announced > limits.maxBytes) {
      reject(new BodyRefusedError("too-large", announced));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const release = (): void => {
      limits.budget.used -= received;
      received = 0;
    };
    const settle = (error: Error | undefined, text?: string): void => {
      if (settled) return;
      settled = true;
      req.off("data", onData);
      release();
      chunks.length = 0;
      if (error) reject(error);
      else resolve(text ?? "");
    };
    const onData = (chunk: Buffer): void => {
      if (received + chunk.length > limits.maxBytes) {
        settle(new BodyRefusedError("too-large", received + chunk.length));
        return;
      }
      if (limits.budget.used + chunk.length > limits.budget.max) {
        settle(new BodyRefusedError("overloaded", received + chunk.length));
        return;
      }
      received += chunk.length;
      limits.budget.used += chunk.length;
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => {
      const text = chunks.length === 0 ? "" : Buffer.concat(chunks).toString("utf8");
      settle(undefined, text);
    });
    req.on("error", (error) => settle(error));
    // A client that goes away mid-body never sends "end": settle instead of leaking the handler.
    req.on("close", () => settle(new Error("request aborted before its body was complete")));
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
