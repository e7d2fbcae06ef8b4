/**
 * Background Responses, the TypeScript port of agent-framework's
 * `python/samples/02-agents/background_responses.py` (MIT, Copyright (c) Microsoft) on baton's
 * Agent facade. Two patterns:
 *
 * 1. Non-streaming polling: start a background run, then poll with the `continuationToken`
 *    until the operation completes.
 * 2. Streaming with resumption: start a background streaming run, simulate an interruption,
 *    and resume from the last `continuationToken` (server-side, after its sequence number).
 *
 * `npm start` runs it. With `OPENAI_API_KEY` set it talks to OpenAI (`OPENAI_MODEL`, default
 * `o3`; `OPENAI_BASE_URL` if set); without it, it starts baton's emulator in-process.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import OpenAI from "openai";
import { Agent } from "../src/agent/index.js";
import { type EmulatorOptions, startEmulator } from "../src/emulator/index.js";

export const INSTRUCTIONS = "You are a helpful research assistant. Be concise.";
export const POLLING_PROMPT = "Briefly explain the theory of relativity in two sentences.";
export const STREAMING_PROMPT = "Briefly list three benefits of exercise.";

/** Slow enough for a few polls and a mid-text interruption, fast enough to finish in seconds. */
export const EMULATOR_OPTIONS: EmulatorOptions = {
  tokenDelayMs: 12,
  queuedMs: 200,
  outputTokens: 40,
};

/** Chunks read before the simulated interruption. */
const CHUNKS_BEFORE_INTERRUPTION = 3;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const write = (text: string) => process.stdout.write(text);
const set = (token: string | null) => (token ? "set" : "None");

async function nonStreamingPolling(agent: Agent, pollIntervalMs: number): Promise<void> {
  write("=== Non-Streaming Polling ===\n\n");
  const session = agent.createSession();

  // Start a background run: returns right after the create call.
  let response = await agent.run(POLLING_PROMPT, { session, background: true });
  write(`Initial status: continuation_token=${set(response.continuationToken)}\n`);

  // Poll until the operation completes: each call is one retrieve.
  let pollCount = 0;
  while (response.continuationToken !== null) {
    pollCount++;
    await sleep(pollIntervalMs);
    response = await agent.run(undefined, {
      session,
      continuationToken: response.continuationToken,
    });
    write(` Poll ${pollCount}: continuation_token=${set(response.continuationToken)}\n`);
  }

  write(`\nResult (${pollCount} poll(s)):\n${response.text}\n\n`);
}

async function streamingWithResumption(agent: Agent): Promise<void> {
  write("=== Streaming with Resumption ===\n\n");
  const session = agent.createSession();

  // Start a streaming background run; read a few chunks, then simulate an interruption.
  let lastToken: string | null = null;
  let chunkCount = 0;
  write("First stream (before interruption):\n");
  for await (const update of agent.run(STREAMING_PROMPT, {
    session,
    stream: true,
    background: true,
  })) {
    // Every update but the final one carries the token to resume from.
    lastToken = update.continuationToken ?? lastToken;
    if (update.text) {
      write(update.text);
      chunkCount++;
    }
    if (chunkCount >= CHUNKS_BEFORE_INTERRUPTION) {
      write("\n [simulated interruption]\n");
      break; // disconnects; the response keeps going on the server
    }
  }

  // Resume from the last continuation token: the rest, after its sequence number.
  if (lastToken !== null) {
    write("Resumed stream:\n");
    for await (const update of agent.run(undefined, {
      session,
      stream: true,
      continuationToken: lastToken,
    })) {
      if (update.text) write(update.text);
    }
    write("\n\n");
  }
}

export async function main(): Promise<void> {
  let closeEmulator: (() => Promise<void>) | undefined;
  let client: OpenAI;
  let model: string;
  let pollIntervalMs: number;
  if (process.env.OPENAI_API_KEY) {
    client = new OpenAI(
      process.env.OPENAI_BASE_URL ? { baseURL: process.env.OPENAI_BASE_URL } : undefined,
    );
    model = process.env.OPENAI_MODEL || "o3";
    pollIntervalMs = 2_000;
  } else {
    const emulator = await startEmulator(EMULATOR_OPTIONS);
    closeEmulator = () => emulator.close();
    process.stderr.write(
      `OPENAI_API_KEY is not set: running against baton's embedded emulator at ${emulator.url}\n`,
    );
    client = new OpenAI({ baseURL: emulator.url, apiKey: "emulator" });
    model = "o3";
    pollIntervalMs = 200;
  }

  // Create the agent with an OpenAI client.
  const agent = new Agent({ name: "researcher", instructions: INSTRUCTIONS, client, model });
  try {
    await nonStreamingPolling(agent, pollIntervalMs);
    await streamingWithResumption(agent);
  } finally {
    await closeEmulator?.();
  }
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
