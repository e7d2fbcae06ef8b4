/**
 * Helpers of the CLI tests: `baton` as a real child process (`node --import tsx
 * src/cli/main.ts …`), with a clean environment, against an emulator in the test process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js";

const MAIN = join(import.meta.dirname, "../../src/cli/main.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** A key that must never show up in anything baton prints or saves. */
export const SECRET_KEY = "sk-cli-SECRET-0123456789abcdef";

export async function emulatorFor(options: EmulatorOptions = {}): Promise<Emulator> {
  return startEmulator({ tokenDelayMs: 2, queuedMs: 5, outputTokens: 30, ...options });
}

export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "baton-cli-"));
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Baton {
  child: ChildProcess;
  /** Everything written so far. */
  readonly stdout: string;
  readonly stderr: string;
  finished: Promise<Finished>;
  /** Resolves once stdout holds at least `bytes` characters. */
  stdoutAtLeast(bytes: number, timeoutMs?: number): Promise<void>;
  /** Resolves once stderr matches. */
  stderrMatches(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/**
 * Starts `baton <args>`; the environment has no OPENAI_* / BATON_* but what `env` gives.
 * `stdout`: a file descriptor to write the answer to (as `>> out.txt` gives the shell's), else a
 * pipe read into `stdout`. `prefix`: a command baton runs under (e.g. strace and its flags).
 */
export function baton(
  args: readonly string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    stdout?: number;
    prefix?: readonly string[];
  } = {},
): Baton {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("OPENAI_") && !name.startsWith("BATON_")) env[name] = value;
  }
  Object.assign(env, options.env);
  const command = [...(options.prefix ?? []), process.execPath, "--import", TSX, MAIN, ...args];
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: options.cwd ?? process.cwd(),
    env,
    stdio: ["ignore", options.stdout ?? "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    wake();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    wake();
  });
  const finished = new Promise<Finished>((resolve) => {
    child.on("close", (code, signal) => {
      wake();
      resolve({ code, signal, stdout, stderr });
    });
  });
  let exited = false;
  void finished.then(() => {
    exited = true;
  });
  const waitFor = <T>(check: () => T | undefined, what: string, timeoutMs: number) =>
    new Promise<T>((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) {
          waiters.delete(attempt);
          clearTimeout(timer);
          resolve(value);
        } else if (exited) {
          waiters.delete(attempt);
          clearTimeout(timer);
          reject(new Error(`baton exited before ${what}; stderr: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(attempt);
        reject(new Error(`timed out waiting for ${what}; stderr: ${stderr}`));
      }, timeoutMs);
      waiters.add(attempt);
      attempt();
    });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    finished,
    stdoutAtLeast: (bytes, timeoutMs = 45_000) =>
      waitFor(
        () => (stdout.length >= bytes ? true : undefined),
        `${bytes} stdout chars`,
        timeoutMs,
      ).then(() => {}),
    stderrMatches: (pattern, timeoutMs = 45_000) =>
      waitFor(() => stderr.match(pattern) ?? undefined, `stderr ${pattern}`, timeoutMs),
  };
}

/** Runs `baton <args>` to its end. */
export function runBaton(
  args: readonly string[],
  options: Parameters<typeof baton>[1] = {},
): Promise<Finished> {
  return baton(args, options).finished;
}

/** The final text of a response as the emulator stores it (the SDK's output_text). */
export function storedText(emulator: Emulator, responseId: string): string {
  const response = emulator.getResponse(responseId);
  if (!response) throw new Error(`no response ${responseId} in the emulator`);
  return response.output.flatMap((item) => item.content.map((part) => part.text)).join("");
}

export const RUN_ID = /run_[0-9a-f]{24}/;
export const TOKEN = /bt1\.[A-Za-z0-9_-]+/;
export const RESPONSE_ID = /resp_[0-9a-f]+/;

/** The lines of a stream's text (no trailing empty line). */
export function lines(text: string): string[] {
  return text.split("\n").filter((line, i, all) => !(line === "" && i === all.length - 1));
}

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
