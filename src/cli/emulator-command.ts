/**
 * `baton emulator`: runs the local Responses API emulator in the foreground, prints its base URL
 * as one line on stdout (so scripts can read it), and closes it cleanly on SIGINT / SIGTERM.
 */
import { parseArgs } from "node:util";
import { type EmulatorOptions, startEmulator } from "../emulator/index.js";
import { EXIT } from "./exit-codes.js";

/** Usage text of `baton emulator`. */
export const EMULATOR_USAGE = `Usage: baton emulator [options]

Runs a local emulator of the OpenAI Responses API (background mode) and prints its base URL.
Stops on SIGINT / SIGTERM.

Options:
  --port N             port to listen on (default 4010; 0 picks a free port)
  --host H             interface to listen on (default 127.0.0.1)
  --seed N             seed of the deterministic text (default 1)
  --token-delay-ms N   pause between text deltas (default 15)
  --queued-ms N        time a background response stays queued (default 50)
  --output-tokens N    deltas per response (default 40)
  -h, --help           show this help`;

/** Where the command writes and what stops it; the defaults are the real process. */
export interface EmulatorCommandIo {
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  /** Stops the emulator when aborted; by default SIGINT / SIGTERM do. */
  signal?: AbortSignal;
}

const NUMERIC_FLAGS = {
  port: "port",
  seed: "seed",
  "token-delay-ms": "tokenDelayMs",
  "queued-ms": "queuedMs",
  "output-tokens": "outputTokens",
} as const satisfies Record<string, keyof EmulatorOptions>;

/**
 * Runs `baton emulator`; resolves with the exit code once the emulator was stopped.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * const done = runEmulatorCommand(["--port", "0"], { signal: stop.signal });
 * // … stdout got "http://127.0.0.1:<port>/v1" …
 * stop.abort();
 * await done; // 0
 * ```
 */
export async function runEmulatorCommand(
  argv: readonly string[],
  io: EmulatorCommandIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: "string" },
        host: { type: "string" },
        seed: { type: "string" },
        "token-delay-ms": { type: "string" },
        "queued-ms": { type: "string" },
        "output-tokens": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    stderr.write(`baton emulator: ${(error as Error).message}\n${EMULATOR_USAGE}\n`);
    return EXIT.usage;
  }
  if (values.help) {
    stdout.write(`${EMULATOR_USAGE}\n`);
    return EXIT.ok;
  }

  const options: EmulatorOptions = { port: 4010 };
  for (const [flag, key] of Object.entries(NUMERIC_FLAGS)) {
    const raw = values[flag];
    if (typeof raw !== "string") continue;
    const value = Number(raw);
    if (raw.trim() === "" || !Number.isInteger(value) || value < 0) {
      stderr.write(
        `baton emulator: --${flag} needs a non-negative integer, got '${raw}'\n${EMULATOR_USAGE}\n`,
      );
      return EXIT.usage;
    }
    options[key] = value;
  }
  if (typeof values.host === "string") options.host = values.host;

  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  try {
    emulator = await startEmulator(options);
  } catch (error) {
    stderr.write(`baton emulator: cannot start: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
  stdout.write(`${emulator.url}\n`);

  await new Promise<void>((resolve) => {
    if (io.signal) {
      if (io.signal.aborted) resolve();
      else io.signal.addEventListener("abort", () => resolve(), { once: true });
      return;
    }
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await emulator.close();
  return EXIT.ok;
}
