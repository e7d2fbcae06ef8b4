/**
 * Helpers of the agent tests: an emulator per test (closed afterwards) and an Agent on it with a
 * real `openai` client over HTTP.
 */
import OpenAI from "openai";
import { afterEach } from "vitest";
import { Agent, type AgentOptions } from "../../src/agent/index.js";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js";

const open: Emulator[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((emulator) => emulator.close()));
});

/** An emulator slow enough to poll a few times and to interrupt a stream mid-text. */
export async function emulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const started = await startEmulator({
    tokenDelayMs: 5,
    queuedMs: 40,
    outputTokens: 20,
    ...options,
  });
  open.push(started);
  return started;
}

export function agentOn(target: Emulator, options: Partial<AgentOptions> = {}): Agent {
  return new Agent({
    name: "researcher",
    instructions: "You are a helpful research assistant. Be concise.",
    client: new OpenAI({ baseURL: target.url, apiKey: "test-key" }),
    model: "o3",
    runOptions: {
      pollIntervalMs: 10,
      retry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, jitter: 0 },
    },
    ...options,
  });
}

/** The final text of a response as the emulator stores it. */
export function storedText(target: Emulator, responseId: string): string {
  const response = target.getResponse(responseId);
  if (!response) throw new Error(`no response ${responseId} in the emulator`);
  return response.output.flatMap((item) => item.content.map((part) => part.text)).join("");
}

/** Requests of one kind the emulator received so far. */
export function countRequests(target: Emulator, kind: string): number {
  return target.requests.filter((request) => request.kind === kind).length;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
