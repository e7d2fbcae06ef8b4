/**
 * A server that echoes the key (issue 13.2): whatever it puts in a 401, a 500 or a failed
 * response's error, the key reaches no saved envelope (memory and file store), no result, no
 * inspection event, and no stderr line of the CLI.
 */
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { FileRunStore, MemoryRunStore, type RunStore, startRun } from "../../src/index.js";
import { runBaton } from "../cli/cli-harness.js";
import {
  json,
  responseObject,
  type ScriptedServer,
  scriptedServer,
  sse,
} from "../support/scripted-server.js";

/** Not shaped like an OpenAI key: only the port's reading of the client's own key can catch it. */
const KEY = "azure0123456789abcdef0123456789ab";
/** Someone else's key, shaped like one: caught by its shape. */
const OTHER_KEY = "sk-proj-OTHERsecret0123456789";

type Mode = "401" | "500" | "failed";

/** The echo a hostile or careless server makes of the request's credentials. */
function echo(authorization: string | undefined): string {
  const bearer = authorization ?? "";
  return `Incorrect API key provided: ${bearer} (raw ${bearer.replace(/^Bearer /, "")}; also ${OTHER_KEY}, api_key=${KEY})`;
}

/** A Responses server that echoes the `Authorization` header in every error it makes. */
function keyEchoingServer(mode: Mode): Promise<ScriptedServer> {
  return scriptedServer((req, res) => {
    const said = echo(req.headers.authorization);
    const errorBody = { error: { message: said, type: "invalid_request_error", code: said } };
    const echoHeaders = { "x-request-id": `req_${said.replace(/[^\x20-\x7e]/g, "")}` };
    if (mode === "401") return json(res, 401, errorBody, echoHeaders);
    if (mode === "500") return json(res, 500, errorBody, echoHeaders);
    const failed = responseObject("resp_echo", "failed", {
      error: { code: said, message: said },
      incomplete_details: { reason: said },
    });
    if (req.method === "POST" && req.url === "/v1/responses") {
      if (JSON.parse(req.body).stream) {
        return sse(res, [
          { type: "response.created", response: responseObject("resp_echo", "queued") },
          { type: "error", code: said, message: said },
          { type: "response.failed", response: failed },
        ]);
      }
      return json(res, 200, responseObject("resp_echo", "queued"));
    }
    if (req.url.includes("stream=true")) {
      return sse(res, [{ type: "response.failed", response: failed }]);
    }
    return json(res, 200, failed);
  });
}

/** JSON of anything, cycles cut, functions named: all an inspector could show. */
function dump(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === "function") return `[function ${v.name}]`;
    if (typeof v === "bigint") return String(v);
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[cycle]";
      seen.add(v);
    }
    return v;
  });
}

function expectNoKey(where: string, text: string): void {
  expect(text.length, where).toBeGreaterThan(0);
  for (const secret of [KEY, OTHER_KEY]) {
    expect(text.includes(secret), `${where} holds ${secret}`).toBe(false);
  }
}

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const cases: { mode: Mode; stream: boolean; outcome: string }[] = [
  { mode: "401", stream: false, outcome: "gave-up" },
  { mode: "401", stream: true, outcome: "gave-up" },
  { mode: "500", stream: false, outcome: "gave-up" },
  { mode: "500", stream: true, outcome: "gave-up" },
  { mode: "failed", stream: false, outcome: "failed" },
  { mode: "failed", stream: true, outcome: "failed" },
];

describe.each(["memory", "file"] as const)("the key stays out: %s store", (storeKind) => {
  it.each(cases)("$mode (stream: $stream)", async ({ mode, stream, outcome }) => {
    server = await keyEchoingServer(mode);
    const directory = await mkdtemp(join(tmpdir(), "baton-key-echo-"));
    const store: RunStore =
      storeKind === "memory" ? new MemoryRunStore() : new FileRunStore(directory);
    const inspected: unknown[] = [];
    const run = startRun({
      client: new OpenAI({ baseURL: server.url, apiKey: KEY }),
      model: "o3",
      input: "x",
      stream,
      store,
      options: {
        pollIntervalMs: 5,
        retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5, jitter: 0 },
      },
      inspect: (event) => inspected.push(event),
    });
    const result = await run.result();
    expect(result.outcome).toBe(outcome);
    // The server did echo it: the test would prove nothing otherwise.
    expect(server.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
    if (mode === "failed") expect(result.error?.message).toContain("Incorrect API key provided");
    else expect(result.failure?.message).toContain("Incorrect API key provided");

    expectNoKey("result", dump(result));
    expectNoKey("snapshot", dump(run.toPersisted()));
    expectNoKey("inspection events", inspected.map(dump).join("\n"));
    expect(inspected.length).toBeGreaterThan(5);
    expectNoKey("stored run", dump(await store.load(run.id)));
    expectNoKey("store list", dump(await store.list()));
    if (storeKind === "file") {
      const files = await readdir(directory);
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) expectNoKey(file, await readFile(join(directory, file), "utf8"));
    }
  });
});

describe("the key stays out of the CLI", () => {
  it.each(["401", "500", "failed"] as const)("%s: stderr and the store", async (mode) => {
    server = await keyEchoingServer(mode);
    const directory = await mkdtemp(join(tmpdir(), "baton-key-echo-cli-"));
    const out = await runBaton(["run", "--base-url", server.url, "--store", directory, "x"], {
      env: { OPENAI_API_KEY: KEY },
    });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/^baton: /);
    expectNoKey("stderr", out.stderr);
    expect(out.stdout.includes(KEY) || out.stdout.includes(OTHER_KEY)).toBe(false);
    for (const file of await readdir(directory)) {
      expectNoKey(file, await readFile(join(directory, file), "utf8"));
    }
  });
});
