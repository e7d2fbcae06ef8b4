/**
 * `baton emulator` as a real child process: it prints the base URL as one line, serves the SDK,
 * and exits 0 on SIGINT / SIGTERM; usage errors exit 2.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { runEmulatorCommand } from "../../src/cli/emulator-command.js";
import { events, MODEL } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

function baton(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return child;
}

/** Resolves with the first stdout line of the child. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf("\n");
      if (newline >= 0) resolve(buffer.slice(0, newline));
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code} before printing a line`)));
  });
}

/** Waits for the child to exit; resolves with its exit code and everything it wrote. */
async function finished(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

describe("baton emulator (child process)", () => {
  it("prints the URL, serves the SDK, and exits 0 on SIGINT", async () => {
    const child = baton([
      "emulator",
      "--port",
      "0",
      "--token-delay-ms",
      "0",
      "--output-tokens",
      "5",
    ]);
    const exit = finished(child);
    const url = await firstLine(child);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const client = new OpenAI({ baseURL: url, apiKey: "test", maxRetries: 0 });
    const list = await events(
      await client.responses.create({ model: MODEL, input: "cli", background: true, stream: true }),
    );
    expect(list.filter((e) => e.type === "response.output_text.delta")).toHaveLength(5);
    expect(list.at(-1)?.type).toBe("response.completed");
    child.kill("SIGINT");
    const { code, stderr } = await exit;
    expect(code).toBe(0);
    expect(stderr).toBe("");
  });

  it("honours --seed (same seed, same text) and exits 0 on SIGTERM", async () => {
    const texts: string[] = [];
    for (const seed of ["5", "5", "6"]) {
      const child = baton(["emulator", "--port", "0", "--seed", seed, "--token-delay-ms", "0"]);
      const exit = finished(child);
      const client = new OpenAI({ baseURL: await firstLine(child), apiKey: "t", maxRetries: 0 });
      texts.push((await client.responses.create({ model: MODEL, input: "same" })).output_text);
      child.kill("SIGTERM");
      expect((await exit).code).toBe(0);
    }
    expect(texts[0]).toBe(texts[1]);
    expect(texts[2]).not.toBe(texts[0]);
  });

  it("an unknown command exits 2 with one clear line and the usage on stderr", async () => {
    const child = baton(["frobnicate"]);
    const { code, stderr } = await finished(child);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toBe("baton: unknown command 'frobnicate'");
    expect(stderr).toContain("Usage: baton <command>");
    expect(stderr).toContain("emulator");
  });

  it("a bad option exits 2", async () => {
    const child = baton(["emulator", "--port", "4.5"]);
    const { code, stderr } = await finished(child);
    expect(code).toBe(2);
    expect(stderr).toContain("--port needs a non-negative integer");
  });
});

describe("runEmulatorCommand (in process)", () => {
  it("writes the URL, stops on abort, returns 0; --help and bad flags", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => err.push(text) },
    };
    const stop = new AbortController();
    const done = runEmulatorCommand(["--port", "0", "--host", "127.0.0.1"], {
      ...io,
      signal: stop.signal,
    });
    while (out.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const url = out[0]?.trim() ?? "";
    const reply = await fetch(`${url}/responses/resp_x`);
    expect(reply.status).toBe(404);
    stop.abort();
    expect(await done).toBe(0);
    await expect(fetch(`${url}/responses/resp_x`)).rejects.toThrow();

    expect(await runEmulatorCommand(["--help"], io)).toBe(0);
    expect(out.at(-1)).toContain("Usage: baton emulator");
    expect(await runEmulatorCommand(["--nope"], io)).toBe(2);
    expect(err.at(-1)).toContain("Unknown option");
  });
});
