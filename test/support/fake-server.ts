/**
 * A tiny Responses server on node:http for behaviours the emulator does not have (a server that
 * never confirms a cancel, a stream that repeats old events forever, headers a real server would
 * not send). Each test gives its own handler; the real `openai` SDK talks to it over real HTTP.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";

export interface FakeRequest {
  method: string;
  /** The path after `/v1`, e.g. `/responses/resp_1/cancel`. */
  path: string;
  query: URLSearchParams;
  body: string;
}

export type FakeHandler = (request: FakeRequest, res: ServerResponse) => void;

export interface FakeServer {
  url: string;
  requests: FakeRequest[];
  client(): OpenAI;
  close(): Promise<void>;
}

/** A Response object with the fields baton reads. */
export function fakeResponse(
  id: string,
  status: string,
  text = "",
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const terminal = status !== "queued" && status !== "in_progress";
  return {
    id,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status,
    background: true,
    error: null,
    incomplete_details: null,
    output: text
      ? [
          {
            id: "msg_1",
            type: "message",
            status: terminal ? "completed" : "in_progress",
            role: "assistant",
            content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
          },
        ]
      : [],
    usage: terminal ? { input_tokens: 1, output_tokens: 1, total_tokens: 2 } : null,
    ...extra,
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

/** One SSE frame as the service writes it. */
export function sseFrame(event: Record<string, unknown>): string {
  return `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`;
}

export async function startFakeServer(handler: FakeHandler): Promise<FakeServer> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const request: FakeRequest = {
        method: req.method ?? "GET",
        path: url.pathname.replace(/^\/v1/, ""),
        query: url.searchParams,
        body,
      };
      requests.push(request);
      handler(request, res);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/v1`;
  return {
    url,
    requests,
    client: () => new OpenAI({ baseURL: url, apiKey: "sk-fake-server" }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
