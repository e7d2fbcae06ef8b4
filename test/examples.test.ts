/**
 * `npm start`'s script as a child process, offline (no OPENAI_API_KEY: the embedded emulator):
 * the output has the shape of the seed's "Sample output", and the first stream's text plus the
 * resumed text is exactly the full answer.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import {
  EMULATOR_OPTIONS,
  INSTRUCTIONS,
  POLLING_PROMPT,
  STREAMING_PROMPT,
} from "../examples/background-responses.js";
import { Agent } from "../src/agent/index.js";
import { startEmulator } from "../src/emulator/index.js";

const run = promisify(execFile);

/** The full answers, from an emulator with the example's settings (its text is deterministic). */
async function expectedAnswers(): Promise<{ polling: string; streaming: string }> {
  const emulator = await startEmulator({ ...EMULATOR_OPTIONS, tokenDelayMs: 0, queuedMs: 0 });
  try {
    const agent = new Agent({
      name: "researcher",
      instructions: INSTRUCTIONS,
      client: new OpenAI({ baseURL: emulator.url, apiKey: "test" }),
      runOptions: { pollIntervalMs: 10 },
    });
    const polling = (await agent.run(POLLING_PROMPT)).text;
    const streaming = (await agent.run(STREAMING_PROMPT)).text;
    return { polling, streaming };
  } finally {
    await emulator.close();
  }
}

describe("examples/background-responses.ts", () => {
  it("prints the seed's output shape, offline, with a seamless resumption", async () => {
    const env = { ...process.env };
    delete env.OPENAI_API_KEY;
    const { stdout, stderr } = await run(
      process.execPath,
      ["--import", "tsx", "examples/background-responses.ts"],
      { env, timeout: 15_000 },
    );
    expect(stderr).toMatch(/OPENAI_API_KEY is not set: running against baton's embedded emulator/);
    expect(stderr.trim().split("\n")).toHaveLength(1);

    const match =
      /^=== Non-Streaming Polling ===\n\nInitial status: continuation_token=set\n((?: Poll \d+: continuation_token=(?:set|None)\n)+)\nResult \((\d+) poll\(s\)\):\n(.+)\n\n=== Streaming with Resumption ===\n\nFirst stream \(before interruption\):\n(.+)\n \[simulated interruption\]\nResumed stream:\n(.+)\n\n$/s.exec(
        stdout,
      );
    expect(match, stdout).not.toBeNull();
    const [, pollLines, count, result, first, resumed] = match as unknown as string[];

    const polls = (pollLines as string).trimEnd().split("\n");
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(Number(count)).toBe(polls.length);
    polls.forEach((line, i) => {
      const last = i === polls.length - 1;
      expect(line).toBe(` Poll ${i + 1}: continuation_token=${last ? "None" : "set"}`);
    });

    const expected = await expectedAnswers();
    expect(result).toBe(expected.polling);
    // The interruption fell mid-text, and the resumed stream continues it exactly.
    expect((first as string).length).toBeGreaterThan(0);
    expect((resumed as string).length).toBeGreaterThan(0);
    expect(`${first}${resumed}`).toBe(expected.streaming);
  });
});
