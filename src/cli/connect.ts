/**
 * The client of a command, from flags and environment: `--emulator`, `--base-url`, the server a
 * run was created on, `OPENAI_BASE_URL`, with `OPENAI_API_KEY`. The key lives only in the
 * client: it is never printed, never stored.
 */
import OpenAI from "openai";
import { CliError } from "../errors.js";
import type { ConnectionFlags } from "./args.js";
import { EXIT } from "./exit-codes.js";
import { type CliIo, nonEmpty } from "./io.js";

/** A client and where it points. `close()` stops the embedded emulator, if any. */
export interface Connection {
  client: OpenAI;
  baseURL: string;
  /** True with `--emulator`: the server lives and dies with this process. */
  embedded: boolean;
  /** Strings that must never be printed (the key). */
  secrets: string[];
  close(): Promise<void>;
}

const DEFAULT_BASE_URL = "https://api.openai.com/v1";

/**
 * Builds the client: `--emulator` starts an emulator in this process; otherwise `--base-url`,
 * else the server the run was created on (`savedBaseURL`, from its notes), else
 * `OPENAI_BASE_URL`, with `OPENAI_API_KEY`. Without a key, a custom base URL gets a placeholder
 * (a local server may need none); api.openai.com refuses to start.
 *
 * @example
 * ```ts
 * const connection = await connect({ emulator: true }, io);
 * try { … connection.client … } finally { await connection.close(); }
 * ```
 */
export async function connect(
  flags: ConnectionFlags,
  io: CliIo,
  savedBaseURL?: string,
): Promise<Connection> {
  const key = nonEmpty(io.env.OPENAI_API_KEY);
  const secrets = key ? [key] : [];
  if (flags.emulator) {
    const { startEmulator } = await import("../emulator/index.js");
    const emulator = await startEmulator({ port: 0 });
    return {
      client: new OpenAI({ baseURL: emulator.url, apiKey: "baton-emulator" }),
      baseURL: emulator.url,
      embedded: true,
      secrets,
      close: () => emulator.close(),
    };
  }
  const baseURL = flags["base-url"] ?? savedBaseURL ?? nonEmpty(io.env.OPENAI_BASE_URL);
  if (baseURL !== undefined) {
    let url: URL;
    try {
      url = new URL(baseURL);
    } catch {
      throw new CliError(EXIT.usage, `'${baseURL}' is not a URL (--base-url / OPENAI_BASE_URL)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new CliError(EXIT.usage, `'${baseURL}' is not an http(s) URL`);
    }
  }
  if (key === undefined && (baseURL === undefined || sameServer(baseURL, DEFAULT_BASE_URL))) {
    throw new CliError(
      EXIT.unreachable,
      "OPENAI_API_KEY is not set (set it, or use --base-url URL for a server that needs no key, or --emulator)",
    );
  }
  const client = new OpenAI({
    apiKey: key ?? "baton-no-key",
    ...(baseURL !== undefined ? { baseURL } : {}),
  });
  return {
    client,
    baseURL: baseURL ?? DEFAULT_BASE_URL,
    embedded: false,
    secrets,
    close: async () => {},
  };
}

/**
 * Whether two base URLs name the same server (a trailing slash aside).
 *
 * @example
 * ```ts
 * sameServer("http://127.0.0.1:4010/v1/", "http://127.0.0.1:4010/v1"); // true
 * ```
 */
export function sameServer(a: string, b: string): boolean {
  return a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}

/**
 * A base URL with a user or password in it is not written down (it may hold a secret).
 *
 * @example
 * ```ts
 * hasCredentials("https://user:pass@host/v1"); // true
 * ```
 */
export function hasCredentials(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username !== "" || parsed.password !== "";
  } catch {
    return true;
  }
}

/**
 * The server to note as a run's home (`baseURL` in its notes): none for the embedded emulator
 * (it dies with this process) or a URL holding credentials (never written down).
 *
 * @example
 * ```ts
 * writeRunMeta(directory, runId, { ...homeOf(connection) });
 * ```
 */
export function homeOf(connection: Connection): { baseURL?: string } {
  return connection.embedded || hasCredentials(connection.baseURL)
    ? {}
    : { baseURL: connection.baseURL };
}
