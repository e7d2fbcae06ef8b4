/**
 * A create is never redirected (issue 13.6): `fetch` re-sends the body of a 307/308, so one
 * create became 21 POSTs. Reads do follow a redirect (idempotent, bounded by `fetch`).
 */
import OpenAI from "openai";
import { afterEach, expect, it } from "vitest";
import { openAIResponsesClient, startRun } from "../../src/index.js";
import {
  json,
  responseObject,
  type ScriptedServer,
  scriptedServer,
} from "../support/scripted-server.js";

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = {
  pollIntervalMs: 5,
  retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, jitter: 0 },
};

/** Every POST is redirected to the same path (a 307 loop); reads answer a completed response. */
function redirectingServer(status: 307 | 308): Promise<ScriptedServer> {
  return scriptedServer((req, res) => {
    if (req.method === "POST") {
      res.writeHead(status, { location: `/v1/elsewhere${req.url}` });
      return res.end();
    }
    return json(res, 200, responseObject("resp_1", "completed"));
  });
}

for (const status of [307, 308] as const) {
  for (const stream of [false, true]) {
    it(`a ${status} on a create (stream: ${stream}) is one POST and a clear refusal`, async () => {
      server = await redirectingServer(status);
      const run = startRun({
        client: new OpenAI({ baseURL: server.url, apiKey: "sk-local-000000" }),
        model: "o3",
        input: "x",
        stream,
        options: FAST,
      });
      const result = await run.result();
      expect(server.requests.filter((r) => r.method === "POST")).toHaveLength(1);
      expect(server.requests).toHaveLength(1);
      expect(result.outcome).toBe("gave-up");
      expect(result.failure?.kind).toBe("rejected");
      expect(result.failure?.status).toBe(status);
      expect(result.failure?.message).toMatch(/redirect/);
      expect(result.failure?.message).toMatch(/refused/);
      expect(result.failure?.message).toContain("/v1/elsewhere/v1/responses");
    });
  }
}

it("a retrieve follows a redirect to the same response", async () => {
  server = await scriptedServer((req, res) => {
    if (req.url.startsWith("/v1/responses/")) {
      res.writeHead(307, { location: `/v1/moved/${req.url.slice("/v1/responses/".length)}` });
      return res.end();
    }
    return json(res, 200, responseObject("resp_1", "completed"));
  });
  const port = openAIResponsesClient(
    new OpenAI({ baseURL: server.url, apiKey: "sk-local-000000" }),
  );
  const { response } = await port.retrieve("resp_1", AbortSignal.timeout(10_000));
  expect(response.status).toBe("completed");
  expect(server.requests.map((r) => r.url)).toEqual(["/v1/responses/resp_1", "/v1/moved/resp_1"]);
});
