/**
 * The HTTP layer: routes `/v1/responses…` to `ResponsesApi`, records every request, checks the
 * API key, applies faults, and writes the reply (JSON, awaited JSON, or SSE through the shared
 * `SseWriter`, see `sse-reply.ts`). `startEmulator` wires it all together.
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BodyRefusedError } from "../errors.js";
import type { LogListener } from "../sse/event-log.js";
import { type ApiSettings, type Reply, ResponsesApi } from "./api.js";
import { systemClock } from "./clock.js";
import {
  ApiError,
  bodyTooLarge,
  faultError,
  invalidApiKey,
  invalidRequest,
  invalidUrl,
  overloaded,
  unknownRoute,
} from "./errors.js";
import { actionOf, type FaultAction, FaultRules, parseFaultHeader, parseScript } from "./faults.js";
import { queryRecord, readBody, recordableHeaders, sendJson } from "./http-util.js";
import { newId } from "./random.js";
import { RequestLog } from "./request-log.js";
import { toResponseObject } from "./response-object.js";
import { type StreamFaults, sendSse } from "./sse-reply.js";
import { ResponseStore } from "./store.js";
import type {
  Emulator,
  EmulatorOptions,
  GenerationScript,
  RecordedRequest,
  RequestKind,
  ResponseObject,
} from "./types.js";

/** How often expired responses are swept from memory (lookups also check on their own). */
const SWEEP_INTERVAL_MS = 10_000;
/** Default of `maxBodyBytes`. */
const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * Bodies buffered at once, over every connection, as a multiple of `maxBodyBytes` (at least
 * 64 MiB): past it a request is answered 503, so many large uploads at once cannot exhaust
 * memory either.
 */
const BODY_BUDGET_FACTOR = 16;
/** After refusing a body, how long its connection may keep sending (drained, not kept). */
const REFUSED_BODY_LINGER_MS = 2_000;

type Endpoint = "create" | "retrieve" | "cancel" | "delete";

interface Route {
  endpoint: Endpoint | null;
  responseId?: string;
}

/**
 * Maps method + path to an endpoint; `endpoint: null` is an unknown route (404). Throws
 * `URIError` for an id with a malformed `%` escape.
 */
function route(method: string, pathname: string): Route {
  const parts = pathname.replace(/\/+$/, "").split("/");
  // ["", "v1", "responses", id?, "cancel"?]
  if (parts[1] !== "v1" || parts[2] !== "responses") return { endpoint: null };
  const id = parts[3] === undefined ? undefined : decodeURIComponent(parts[3]);
  if (parts.length === 3) return { endpoint: method === "POST" ? "create" : null };
  if (parts.length === 4 && id) {
    if (method === "GET") return { endpoint: "retrieve", responseId: id };
    if (method === "DELETE") return { endpoint: "delete", responseId: id };
  }
  if (parts.length === 5 && id && parts[4] === "cancel" && method === "POST") {
    return { endpoint: "cancel", responseId: id };
  }
  return { endpoint: null, ...(id ? { responseId: id } : {}) };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Starts an emulator of the OpenAI Responses API (background mode) on a local port.
 *
 * @example
 * ```ts
 * const emulator = await startEmulator({ tokenDelayMs: 0, outputTokens: 8 });
 * const client = new OpenAI({ baseURL: emulator.url, apiKey: "test" });
 * const response = await client.responses.create({ model: "gpt-4o-mini", input: "hi", background: true });
 * // … poll or stream …
 * await emulator.close();
 * ```
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const clock = options.clock ?? systemClock;
  const settings: ApiSettings = {
    clock,
    seed: options.seed ?? 1,
    tokenDelayMs: options.tokenDelayMs ?? 15,
    queuedMs: options.queuedMs ?? 50,
    outputTokens: options.outputTokens ?? 40,
    replayWindowMs: options.replayWindowMs ?? 300_000,
    cancelCompleted: options.cancelCompleted ?? "error",
    pollAfterMs: options.pollAfterMs ?? null,
    streamOnCancel: options.streamOnCancel ?? "failed-event",
    rejectBackgroundWithoutStore: options.rejectBackgroundWithoutStore ?? true,
    obfuscation: options.obfuscation ?? true,
  };
  const store = new ResponseStore(
    clock,
    options.retentionMs ?? 600_000,
    settings.replayWindowMs,
    options.maxResponses ?? 10_000,
  );
  const api = new ResponsesApi(settings, store);
  const faults = new FaultRules();
  for (const rule of options.faults ?? []) faults.add(rule);
  const requestLog = new RequestLog(options.requestLog);
  const requests = requestLog.entries;
  const maxBodyBytes = Math.max(0, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  const bodyLimits = {
    maxBytes: maxBodyBytes,
    budget: { used: 0, max: Math.max(64 * 1024 * 1024, BODY_BUDGET_FACTOR * maxBodyBytes) },
  };
  const pendingTimers = new Set<NodeJS.Timeout>();
  const apiKey = options.apiKey;
  let creates = 0;

  /** Writes a reply; `sse` carries the fault behaviour of an SSE connection. */
  const send = (res: ServerResponse, reply: Reply, sse: StreamFaults = {}): void => {
    if (reply.type === "json") {
      sendJson(res, reply.status, reply.body, reply.headers);
      return;
    }
    if (reply.type === "sse") {
      sendSse(res, reply.record.log, {
        ...sse,
        start: reply.start,
        stripObfuscation: reply.stripObfuscation,
      });
      return;
    }
    // Foreground JSON: answer once the response is terminal (or gone).
    const { log } = reply.record;
    const answer = (): void => sendJson(res, 200, toResponseObject(reply.record));
    if (log.closed) {
      answer();
      return;
    }
    const waiter: LogListener = {
      onAppend: () => {},
      onClose: () => {
        log.unsubscribe(waiter);
        answer();
      },
    };
    log.subscribe(waiter);
    res.on("close", () => log.unsubscribe(waiter));
  };

  const sendError = (
    res: ServerResponse,
    error: ApiError,
    extraHeaders: Record<string, string> = {},
  ): void => {
    sendJson(res, error.status, error.body(), { ...error.headers, ...extraHeaders });
  };

  /** Runs `work` and sends its reply (or its error) after `ms`, or never when `ms` is undefined. */
  const sendLater = (res: ServerResponse, ms: number | undefined, work: () => void): void => {
    if (ms === undefined) return; // stalled until the client goes away
    const timer = setTimeout(() => {
      pendingTimers.delete(timer);
      work();
    }, ms);
    pendingTimers.add(timer);
    res.on("close", () => {
      clearTimeout(timer);
      pendingTimers.delete(timer);
    });
  };

  /** Carries out the request under an optional fault. */
  const execute = (
    req: IncomingMessage,
    res: ServerResponse,
    action: FaultAction | undefined,
    run: () => Reply,
  ): void => {
    const attempt = (): Reply | ApiError => {
      try {
        return run();
      } catch (error) {
        if (error instanceof ApiError) return error;
        throw error;
      }
    };
    const deliver = (outcome: Reply | ApiError, sse?: Parameters<typeof send>[2]): void => {
      if (outcome instanceof ApiError) sendError(res, outcome);
      else send(res, outcome, sse);
    };
    if (action === undefined) {
      deliver(attempt());
      return;
    }
    switch (action.kind) {
      case "status": {
        const { status } = action;
        if (status.afterHandling) attempt();
        const headers: Record<string, string> = {};
        if (status.retryAfter !== undefined) headers["retry-after"] = String(status.retryAfter);
        if (status.retryAfterMs !== undefined) {
          headers["retry-after-ms"] = String(status.retryAfterMs);
        }
        if (status.shouldRetry !== undefined) {
          headers["x-should-retry"] = String(status.shouldRetry);
        }
        sendError(res, faultError(status.code, status.message, headers));
        return;
      }
      case "reset":
        if (action.afterHandling) attempt();
        req.socket.destroy();
        return;
      case "garbage":
        res.writeHead(action.status, { "content-type": action.contentType });
        res.end(action.body);
        return;
      case "drop":
        deliver(attempt(), { dropAfter: action.afterEvents });
        return;
      case "stall": {
        const outcome = attempt();
        if (!(outcome instanceof ApiError) && outcome.type === "sse") {
          send(res, outcome, { stallAfter: action.afterEvents, stallMs: action.ms });
          return;
        }
        sendLater(res, action.ms, () => deliver(outcome));
        return;
      }
    }
  };

  /**
   * Answers a refused body, then reads the rest of it and throws it away: a client still
   * sending then reads the answer (closing a socket with unread data makes the kernel send a
   * reset, and the client would see that instead of the 413). A client that has not finished
   * within `REFUSED_BODY_LINGER_MS` is cut off.
   */
  const refuseBody = (req: IncomingMessage, res: ServerResponse, error: ApiError): void => {
    req.on("data", () => {});
    req.resume();
    sendError(res, error);
    if (req.complete) return;
    const linger = setTimeout(() => req.socket.destroy(), REFUSED_BODY_LINGER_MS);
    linger.unref();
    const done = (): void => clearTimeout(linger);
    req.once("end", done);
    req.socket.once("close", done);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    res.setHeader("x-request-id", newId("req", 16));
    const method = req.method ?? "GET";
    let url: URL;
    let target: Route;
    try {
      url = new URL(req.url ?? "/", "http://emulator.invalid");
      target = route(method, url.pathname);
    } catch {
      // A malformed `%` escape (or a target no URL parser takes): the client's mistake, a 400.
      refuseBody(req, res, invalidUrl(method, req.url ?? ""));
      return;
    }
    const { endpoint, responseId } = target;
    let bodyText: string;
    try {
      bodyText = await readBody(req, bodyLimits);
    } catch (error) {
      if (!(error instanceof BodyRefusedError)) return; // the client went away mid-body
      refuseBody(
        req,
        res,
        error.reason === "too-large" ? bodyTooLarge(error.bytes, maxBodyBytes) : overloaded(),
      );
      return;
    }

    let body: unknown;
    let bodyError: ApiError | undefined;
    if (endpoint === "create") {
      try {
        body = JSON.parse(bodyText);
      } catch {
        bodyError = invalidRequest(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        );
      }
    }
    let kind: RequestKind | "other" = "other";
    if (endpoint === "create") {
      const streamFlag = (body as { stream?: unknown } | null | undefined)?.stream === true;
      kind = streamFlag ? "create-stream" : "create";
      creates++;
    } else if (endpoint === "retrieve") {
      kind = url.searchParams.get("stream") === "true" ? "retrieve-stream" : "retrieve";
    } else if (endpoint !== null) {
      kind = endpoint;
    }
    const recorded: RecordedRequest = {
      kind,
      method,
      path: url.pathname,
      query: queryRecord(url.searchParams),
      ...(responseId === undefined ? {} : { responseId }),
      headers: recordableHeaders(req.headers),
      at: clock.now(),
    };
    requestLog.push(recorded);

    try {
      if (apiKey !== undefined && headerValue(req, "authorization") !== `Bearer ${apiKey}`) {
        throw invalidApiKey();
      }
      if (kind === "other") throw unknownRoute(method, url.pathname);
      if (bodyError) throw bodyError;

      const faultHeader = headerValue(req, "x-emulator-fault");
      const headerRule = faultHeader === undefined ? undefined : parseFaultHeader(faultHeader);
      const action =
        headerRule === undefined ? faults.take(kind, responseId) : actionOf(headerRule);

      execute(req, res, action, () => {
        switch (kind) {
          case "create":
          case "create-stream": {
            const scriptHeader = headerValue(req, "x-emulator-script");
            const headerScript: GenerationScript | undefined = {
              ...headerRule?.script,
              ...(scriptHeader === undefined ? {} : parseScript(scriptHeader, "x-emulator-script")),
            };
            const created = api.create(body, [faults.takeScript(kind), headerScript]);
            // Creates learn their response id once carried out: tests can then see which
            // faulted create still produced a response (the duplicate-create hazard).
            recorded.responseId = created.responseId;
            return created.reply;
          }
          case "retrieve":
          case "retrieve-stream":
            return api.retrieve(responseId ?? "", url.searchParams);
          case "cancel":
            return api.cancel(responseId ?? "");
          case "delete":
            return api.delete(responseId ?? "");
        }
      });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      sendError(res, error);
    }
  };

  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
  const server = createServer(
    {
      noDelay: true,
      // Idle and slow clients are closed: without these a CI emulator kept thousands of idle
      // sockets open for minutes (issue 13 item 7). A stream being answered is not affected:
      // these bound receiving a request, and the wait between two requests on one connection.
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
      // node:http refuses a headers timeout longer than the request timeout: clamp it.
      headersTimeout: Math.min(headersTimeoutMs, requestTimeoutMs || headersTimeoutMs),
      requestTimeout: requestTimeoutMs,
      // How often node:http checks the two timeouts above (its default is 30 s).
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        // A bug in the emulator: answer 500 instead of hanging the client.
        if (!res.headersSent) {
          sendError(res, new ApiError(500, `Emulator error: ${String(error)}`, "server_error"));
        } else res.destroy();
      });
    },
  );
  // Past the cap node:http closes new connections at once (the client sees a reset).
  server.maxConnections = options.maxConnections ?? 10_000;
  const sweeper = setInterval(() => store.sweep(), SWEEP_INTERVAL_MS);
  sweeper.unref();

  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // A deep accept backlog: thousands of clients connecting at once must not see dropped SYNs
    // (and the one-second retransmit that follows). The kernel caps it at somaxconn.
    server.listen({ port: options.port ?? 0, host, backlog: 4096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    faults,
    requests,
    countCreates: () => creates,
    droppedRequests: () => requestLog.dropped,
    getResponse: (id: string): ResponseObject | undefined => {
      const record = store.peek(id);
      return record === undefined ? undefined : toResponseObject(record);
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(sweeper);
        for (const timer of pendingTimers) clearTimeout(timer);
        pendingTimers.clear();
        server.close(() => resolve());
        store.clear();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
