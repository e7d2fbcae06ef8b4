/**
 * A tiny HTTP server whose every answer the test writes by hand: a server that echoes the key,
 * redirects a create, answers about another response, or answers garbage. Real sockets, so the
 * real `openai` SDK and `fetch` are what baton goes through.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  /** Path and query, as sent (`/v1/responses/resp_1?stream=true`). */
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface ScriptedServer {
  /** The base URL to give the SDK (ends in `/v1`). */
  url: string;
  /** Every request received, in order. */
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** Answers one request (its return value is ignored; a rejection destroys the socket). */
export type Handler = (request: SeenRequest, res: ServerResponse) => unknown;

export async function scriptedServer(handler: Handler): Promise<ScriptedServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const seen: SeenRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(seen);
      Promise.resolve(handler(seen, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes a JSON answer. */
export function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

/** A Responses API object, as the service writes it. */
export function responseObject(
  id: string,
  status: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    object: "response",
    created_at: 1_700_000_000,
    status,
    background: true,
    model: "o3",
    output: [],
    usage: null,
    error: null,
    incomplete_details: null,
    ...extra,
  };
}

/** Writes a server-sent event stream of `events` (sequence numbers added from 0) and ends it. */
export function sse(res: ServerResponse, events: Record<string, unknown>[]): void {
  res.writeHead(200, { "content-type": "text/event-stream" });
  events.forEach((event, i) => {
    res.write(
      `event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: i })}\n\n`,
    );
  });
  res.end();
}
