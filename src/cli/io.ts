/**
 * Where a command reads and writes (stdout, stderr, environment, cwd; the real process by
 * default, a double in tests), and the one way it speaks to the user: a `baton: …` line on
 * stderr, sanitised and with the key redacted.
 */
import { oneLine, redact, sanitize } from "./sanitize.js";

/** A writable text stream (process.stdout / process.stderr, or a test double). */
export interface TextOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Where a command reads and writes; the defaults are the real process. */
export interface CliIo {
  stdout: TextOut;
  stderr: TextOut;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * The real process, but for what `io` gives.
 *
 * @example
 * ```ts
 * const io = processIo({ stdout: { write: (text) => chunks.push(text) } });
 * ```
 */
export function processIo(io: Partial<CliIo> = {}): CliIo {
  return {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
  };
}

/**
 * An environment value (or flag) trimmed, undefined when unset or blank.
 *
 * @example
 * ```ts
 * nonEmpty(io.env.OPENAI_MODEL) ?? "o3";
 * ```
 */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/**
 * Writes one `baton: …` line on stderr, redacted and sanitised.
 *
 * @example
 * ```ts
 * say(io, `cannot reach ${baseURL}`, connection.secrets);
 * ```
 */
export function say(io: CliIo, message: string, secrets: readonly string[] = []): void {
  // Sanitised before redacting: an escape sequence inside a key must not split it from redaction.
  const line = redact(sanitize(oneLine(message)), [...secrets, ...envSecrets(io)]);
  io.stderr.write(`baton: ${line}\n`);
}

function envSecrets(io: CliIo): string[] {
  const key = nonEmpty(io.env.OPENAI_API_KEY);
  return key ? [key] : [];
}
