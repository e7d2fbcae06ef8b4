/**
 * Child processes of the overhead benchmark: the emulator (`baton emulator --port 0`, so it never
 * shares an event loop with what is measured) and the polling workers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** The repository root (children run from it, so `--import tsx` resolves). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const live = new Set<ChildProcess>();

/** Kills every child still running (on exit, on a failure). */
export function killChildren(): void {
  for (const child of live) if (child.exitCode === null) child.kill("SIGKILL");
  live.clear();
}
process.once("exit", killChildren);

/** Emulator settings, as `baton emulator` flags. */
export interface EmulatorFlags {
  tokenDelayMs: number;
  outputTokens: number;
  queuedMs: number;
}

/** A running emulator child. */
export interface EmulatorChild {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `baton emulator --port 0` in its own process and resolves with its base URL (the
 * first line it prints).
 *
 * @example
 * ```ts
 * const emulator = await spawnEmulator({ tokenDelayMs: 0, outputTokens: 20_000, queuedMs: 0 });
 * const client = new OpenAI({ baseURL: emulator.url, apiKey: "bench" });
 * await emulator.stop();
 * ```
 */
export async function spawnEmulator(flags: EmulatorFlags): Promise<EmulatorChild> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "emulator",
      "--port",
      "0",
      "--token-delay-ms",
      String(flags.tokenDelayMs),
      "--output-tokens",
      String(flags.outputTokens),
      "--queued-ms",
      String(flags.queuedMs),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  live.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = await firstLine(child, () => stderr);
  if (!/^http:\/\/127\.0\.0\.1:\d+\/v1$/.test(url)) {
    child.kill("SIGKILL");
    throw new Error(`the emulator printed '${url}' instead of its URL`);
  }
  return {
    url,
    pid: child.pid ?? -1,
    async stop() {
      live.delete(child);
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs a TypeScript worker (`node <nodeFlags> --import tsx <script> <args>`) to its end and
 * parses the last stdout line as JSON. Rejects when it exits non-zero or prints no JSON.
 */
export async function runWorker<T>(
  script: string,
  args: readonly string[],
  nodeFlags: readonly string[] = [],
  timeoutMs = 600_000,
): Promise<T> {
  const child = spawn(process.execPath, [...nodeFlags, "--import", "tsx", script, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
  clearTimeout(timer);
  live.delete(child);
  if (code !== 0) {
    throw new Error(
      `worker ${script} ${args.join(" ")} exited with ${code ?? signal}: ${stderr.trim().slice(-2000)}`,
    );
  }
  const last = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`worker ${script} printed no JSON result: ${stdout.slice(-500)}`);
  }
}

function firstLine(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the emulator printed nothing in 30 s: ${stderr()}`));
    }, 30_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(buffer.slice(0, newline).trim());
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the emulator exited with ${code} before printing its URL: ${stderr()}`));
    });
  });
}
