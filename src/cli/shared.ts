/**
 * What the `baton` run commands share: the client (from flags and environment), the store,
 * errors as one `baton: …` line, exit codes, and the progress renderer on stderr.
 *
 * The API key lives only in the client: it is never printed, never stored, and any message
 * shown to the user is redacted first.
 */
import { resolve } from "node:path";
import OpenAI from "openai";
import { type ContinuationToken, decodeContinuationToken } from "../continuation-token.js";
import {
  CliError,
  InvalidContinuationTokenError,
  InvalidSnapshotError,
  RunNotFoundError,
} from "../errors.js";
import { type RunStateName, topState } from "../machines/run-state.js";
import type { RunResult } from "../machines/run-types.js";
import type { PersistedRun } from "../persistence/envelope.js";
import type { RunStore } from "../persistence/run-store.js";
import { loadRun, type Run } from "../run/index.js";
import {
  type ClientFailure,
  ClientFailureError,
  classifyClientError,
  provesNothingCreated,
} from "../services/client-failure.js";
import { redactSecrets } from "../services/redact.js";
import { FileRunStore } from "../stores/file-run-store.js";

/** The exit codes of `baton`, documented in `baton --help` and docs/cli.md. */
export const EXIT = {
  /** The run completed (or the command did what it was asked). */
  ok: 0,
  /** The run failed, ended incomplete or gave up; or a local failure. */
  failed: 1,
  /** Usage error, bad continuation token, unknown run id. */
  usage: 2,
  /** Cannot reach the server, or the server refused the key (or there is no key). */
  unreachable: 3,
  /** The run ended cancelled (`baton cancel`, from here or elsewhere). */
  cancelled: 4,
  /** Detached by Ctrl-C: the run goes on server-side; `baton resume` carries on. */
  detached: 130,
  /** Detached by SIGTERM. */
  terminated: 143,
  /** Detached because stdout was closed (`baton run … | head`). */
  brokenPipe: 141,
} as const;

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

export function processIo(io: Partial<CliIo> = {}): CliIo {
  return {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
  };
}

export { CliError } from "../errors.js";

/** The options every run command takes (parseArgs form). */
export const CONNECTION_OPTIONS = {
  store: { type: "string" },
  "base-url": { type: "string" },
  emulator: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export interface ConnectionFlags {
  store?: string | undefined;
  "base-url"?: string | undefined;
  emulator?: boolean | undefined;
}

/**
 * Turns a parseArgs failure into a usage error, in baton's words: Node's own messages quote the
 * flag unevenly (`Unknown option '--x'. To specify a positional argument starting with a '-', …`).
 */
export function usageError(err: unknown, command: string): CliError {
  return new CliError(EXIT.usage, `${parseErrorMessage(err)} (see 'baton ${command} --help')`);
}

function parseErrorMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  // Node quotes the flag first: `Unknown option '--x'`, `Option '--store <value>' argument missing`.
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) return `unknown option ${flag}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) {
    return /argument missing/.test(message)
      ? `option ${flag} needs a value`
      : `option ${flag} takes no value`;
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") return "unexpected argument";
  return oneLine(message);
}

/**
 * Parses the arguments of a command that takes one `<token|run-id>`: a parse failure or a second
 * positional is a usage error; `--help` prints `usage` and gives null.
 *
 * @example
 * ```ts
 * const args = parseOneTarget(argv, "status", STATUS_USAGE, parse, io);
 * if (!args) return EXIT.ok;
 * ```
 */
export function parseOneTarget<V extends { help?: boolean | undefined }>(
  argv: readonly string[],
  command: string,
  usage: string,
  parse: (argv: readonly string[]) => { values: V; positionals: string[] },
  io: CliIo,
): { values: V; target: string | undefined } | null {
  let parsed: { values: V; positionals: string[] };
  try {
    parsed = parse(argv);
  } catch (err) {
    throw usageError(err, command);
  }
  if (parsed.values.help) {
    io.stdout.write(`${usage}\n`);
    return null;
  }
  if (parsed.positionals.length > 1) {
    throw usageError(new Error(`${command} takes one <token|run-id>`), command);
  }
  return { values: parsed.values, target: parsed.positionals[0] };
}

/** The store directory: `--store`, else `BATON_STORE`, else `.baton/runs` in the cwd. */
export function storeDirectory(flags: ConnectionFlags, io: CliIo): string {
  const raw = flags.store ?? nonEmpty(io.env.BATON_STORE) ?? ".baton/runs";
  return resolve(io.cwd, raw);
}

export function openStore(flags: ConnectionFlags, io: CliIo): FileRunStore {
  return new FileRunStore(storeDirectory(flags, io), { sync: true });
}

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

/** Whether two base URLs name the same server (a trailing slash aside). */
export function sameServer(a: string, b: string): boolean {
  return a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}

/** Removes secrets (the key, and anything that looks like an OpenAI key) from a message. */
export function redact(text: string, secrets: readonly string[] = []): string {
  // The library's redaction (the key, anything key- or bearer-shaped), then what only the CLI
  // prints: a password in a URL (`https://user:pass@host/v1`) is a secret too.
  return redactSecrets(text, secrets).replace(/(\/\/[^/@\s:]*):[^/@\s]+@/g, "$1:***@");
}

/** How long `status` and `cancel` wait for one answer of the server, by default. */
export const CLI_REQUEST_TIMEOUT_MS = 30_000;

/** `BATON_REQUEST_TIMEOUT_MS` when it is a positive number, else {@link CLI_REQUEST_TIMEOUT_MS}. */
export function requestTimeoutMs(env: NodeJS.ProcessEnv): number {
  const given = Number(env.BATON_REQUEST_TIMEOUT_MS);
  return Number.isFinite(given) && given > 0 ? Math.min(given, 3_600_000) : CLI_REQUEST_TIMEOUT_MS;
}

/**
 * One request of a command, bounded: past `ms` it is aborted and fails as a `timeout` ("the
 * cancel timed out"), not as the SDK's "Request was aborted" or a "cannot reach".
 *
 * @example
 * ```ts
 * const { response } = await boundedRequest("retrieve", (signal) => port.retrieve(id, signal));
 * ```
 */
export async function boundedRequest<T>(
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
  ms = CLI_REQUEST_TIMEOUT_MS,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await call(controller.signal);
  } catch (err) {
    if (!controller.signal.aborted) throw err;
    const failure: ClientFailure = {
      kind: "timeout",
      message: `the ${what} timed out: no answer within ${ms} ms`,
    };
    throw new ClientFailureError(failure);
  } finally {
    clearTimeout(timer);
  }
}

/** Collapses a message to one line. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * Makes text from outside (a server's message, a response id, a run id, a saved file) safe to
 * print on a terminal: terminal escape sequences (CSI, OSC, DCS, …) are removed whole, then
 * every other control character (C0 but tab and newline, DEL, C1) and the bidirectional
 * overrides that reorder what a terminal shows. One function, applied on the way out by
 * {@link say}, {@link formatTable} and the progress line.
 *
 * @example
 * ```ts
 * sanitize("resp_\x1b]0;pwned\x07x\x1b[2J"); // "resp_x"
 * ```
 */
export function sanitize(text: string, options: { keepNewlines?: boolean } = {}): string {
  const cleaned = text.replace(CSI, "").replace(STRING_SEQUENCE, "").replace(OTHER_ESCAPE, "");
  return cleaned.replace(options.keepNewlines ? CONTROL_BUT_NEWLINE : CONTROL, "");
}

// Matching control characters is the point of these (biome's rule is about mistyped ones).
/** CSI (ESC [ or C1 0x9b): parameters, intermediates, one final byte. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const CSI = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?/g;
/** OSC, DCS, SOS, PM, APC (ESC ] P X ^ _, or their C1 forms): up to BEL or ST, or the end. */
const STRING_SEQUENCE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: see above
  /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?/g;
/** Any other escape: ESC, intermediates, one final byte. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const OTHER_ESCAPE = /\x1b[ -/]*[0-~]?/g;
/** C0 but tab, DEL, C1, bidirectional overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const CONTROL_BUT_NEWLINE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/** Writes one `baton: …` line on stderr, redacted and sanitised. */
export function say(io: CliIo, message: string, secrets: readonly string[] = []): void {
  // Sanitised before redacting: an escape sequence inside a key must not split it from redaction.
  const line = redact(sanitize(oneLine(message)), [...secrets, ...envSecrets(io)]);
  io.stderr.write(`baton: ${line}\n`);
}

function envSecrets(io: CliIo): string[] {
  const key = nonEmpty(io.env.OPENAI_API_KEY);
  return key ? [key] : [];
}

/**
 * Turns any error into its one line and exit code: baton's own errors, the SDK's (classified
 * as the run machine classifies them), and anything else.
 */
export function describeError(
  err: unknown,
  context: { baseURL?: string; storeDir?: string } = {},
): { code: number; message: string } {
  if (err instanceof CliError) return { code: err.exitCode, message: err.message };
  if (err instanceof InvalidContinuationTokenError) {
    return { code: EXIT.usage, message: `bad continuation token: ${err.message}` };
  }
  if (err instanceof RunNotFoundError) {
    const where = context.storeDir ? ` in ${context.storeDir}` : "";
    return {
      code: EXIT.usage,
      message: `no run '${err.runId}'${where} (see 'baton runs'; or pass a bt1. token)`,
    };
  }
  if (err instanceof InvalidSnapshotError) {
    return { code: EXIT.failed, message: `cannot read the saved run: ${err.message}` };
  }
  if (isApiLikeError(err)) {
    const failure = classifyClientError(err);
    return describeFailure(failure, context.baseURL);
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: EXIT.failed, message };
}

function isApiLikeError(err: unknown): boolean {
  return err instanceof OpenAI.APIError || (err instanceof Error && "status" in err);
}

/** The line and exit code of a classified client failure. */
export function describeFailure(
  failure: { kind: string; message: string; status?: number },
  baseURL: string | undefined,
): { code: number; message: string } {
  const where = baseURL ? ` ${baseURL}` : " the server";
  switch (failure.kind) {
    case "unreachable":
    case "connection":
      return { code: EXIT.unreachable, message: `cannot reach${where}: ${failure.message}` };
    case "unauthorized":
      return {
        code: EXIT.unreachable,
        message: `the server refused the API key (${failure.status ?? "401"}): ${failure.message}`,
      };
    case "timeout":
      // The server may well be reachable (it took the connection): say what happened.
      return { code: EXIT.unreachable, message: `${failure.message} (${where.trim()})` };
    case "not-found":
      return {
        code: EXIT.failed,
        message: `the response is not on the server (expired or deleted?): ${failure.message}`,
      };
    default:
      return {
        code: EXIT.failed,
        message: `${failure.status ? `${failure.status} ` : ""}${failure.message}`,
      };
  }
}

/**
 * A run whose create the server answered with a 4xx (but 408): the server's word that it did
 * not act on it, so nothing was created and there is nothing to resume.
 */
export function createWasRefused(result: RunResult): boolean {
  const failure = result.failure;
  return (
    (result.reason === "create-unknown" || result.reason === "create-failed") &&
    failure?.status !== undefined &&
    provesNothingCreated(failure)
  );
}

/** The exit code and summary line of a finished run. */
export function describeOutcome(
  result: RunResult,
  baseURL?: string,
): { code: number; line: string } {
  switch (result.outcome) {
    case "completed":
      return { code: EXIT.ok, line: "completed" };
    case "cancelled":
      return {
        code: EXIT.cancelled,
        line: `cancelled${result.cancelledBy && result.cancelledBy !== "consumer" ? ` (${result.cancelledBy})` : ""}`,
      };
    case "failed":
      return {
        code: EXIT.failed,
        line: `failed${result.error ? `: ${result.error.code}: ${result.error.message}` : ""}`,
      };
    case "incomplete":
      return {
        code: EXIT.failed,
        line: `incomplete${result.incompleteReason ? ` (${result.incompleteReason})` : ""}`,
      };
    case "gave-up": {
      const failure = result.failure;
      if (
        failure &&
        (failure.kind === "unreachable" ||
          failure.kind === "unauthorized" ||
          (failure.kind === "connection" && result.reason === "retries-exhausted"))
      ) {
        const described = describeFailure(failure, baseURL);
        return { code: described.code, line: `gave up (${result.reason}): ${described.message}` };
      }
      const detail = failure ? `: ${failure.message}` : "";
      if (createWasRefused(result)) {
        return {
          code: EXIT.failed,
          line: `the server refused the create call (${failure?.status})${detail}; nothing was created`,
        };
      }
      switch (result.reason) {
        case "create-unknown":
          return {
            code: EXIT.failed,
            line: `gave up: the create call broke off${detail}; the response may or may not exist, and creating again could pay twice`,
          };
        case "create-failed":
          return { code: EXIT.failed, line: `the create call failed${detail}` };
        case "not-found":
          return {
            code: EXIT.failed,
            line: "gave up: the response is no longer on the server (expired or deleted)",
          };
        default:
          return { code: EXIT.failed, line: `gave up (${result.reason ?? "unknown"})${detail}` };
      }
    }
  }
}

/** Whether an argument is a continuation token (`bt<version>.…`) rather than a run id. */
export function looksLikeToken(text: string): boolean {
  return /^bt\d+\./.test(text.trim());
}

/** `3s`, `2m05s`, `1h02m`, `3d04h`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
}

function formatElapsed(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : formatAge(ms);
}

/** Left-aligned columns, two spaces apart; every cell sanitised (it may come from a file). */
export function formatTable(table: readonly (readonly string[])[]): string {
  const rows = table.map((row) => row.map((cell) => sanitize(cell)));
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/**
 * Progress of a run on stderr. On a terminal: one line redrawn in place (state, status, polls,
 * characters, elapsed). Otherwise: a plain line per notable change once the response exists
 * (status, interruption, resumption, fallback to polling); nothing per delta.
 *
 * When stdout is the same terminal, the live line is drawn only until the answer starts (it
 * would otherwise be drawn over the answer's text).
 */
export class Progress {
  readonly #io: CliIo;
  readonly #live: boolean;
  readonly #sharedScreen: boolean;
  readonly #secrets: readonly string[];
  readonly #startedAt = Date.now();
  #run: Run | undefined;
  #state: RunStateName = "idle";
  #status: string | null = null;
  #polls = 0;
  #chars = 0;
  #retry: string | null = null;
  #drawn = false;
  #drawnText = "";
  #drawnAt = 0;
  #suspended = false;
  #timer: NodeJS.Timeout | undefined;
  #lastPlain: string | undefined;
  /** Plain lines wait until the run has been announced (its id and token come first). */
  #ready = false;
  #shownStatus: string | null = null;
  #unsubscribe: (() => void) | undefined;

  constructor(
    io: CliIo,
    secrets: readonly string[] = [],
    options: { answerOnStdout?: boolean } = {},
  ) {
    this.#io = io;
    this.#live = io.stderr.isTTY === true;
    // With --output the answer goes to a file: the live line may stay on screen throughout.
    this.#sharedScreen = this.#live && io.stdout.isTTY === true && options.answerOnStdout !== false;
    this.#secrets = secrets;
  }

  /** Characters of answer printed so far. */
  get chars(): number {
    return this.#chars;
  }

  attach(run: Run): void {
    this.#run = run;
    let previous: unknown;
    // A failure in the restored snapshot is an earlier process's: not shown as this one's retry.
    const restoredFailure = run.getSnapshot().context.lastFailure;
    const onSnapshot = () => {
      const snapshot = run.getSnapshot();
      const context = snapshot.context;
      const state = snapshot.status === "done" ? "done" : topState(snapshot.value);
      const fetching =
        typeof snapshot.value === "object" &&
        snapshot.value !== null &&
        (snapshot.value as Record<string, unknown>).polling === "fetching";
      const wasFetching =
        typeof previous === "object" &&
        previous !== null &&
        (previous as Record<string, unknown>).polling === "fetching";
      if (fetching && !wasFetching) this.#polls++;
      previous = snapshot.value;
      const retrying =
        context.lastFailure !== null &&
        context.lastFailure !== restoredFailure &&
        (context.attempts > 0 || state === "interrupted") &&
        state !== "done";
      this.#retry = retrying
        ? `retry ${Math.max(context.attempts, context.resumeAttempts)} (${context.lastFailure?.kind})`
        : null;
      const stateChanged = state !== this.#state;
      const statusChanged = context.status !== this.#shownStatus;
      this.#state = state;
      this.#status = context.status;
      if (!this.#live && this.#ready && state !== "done") {
        if (stateChanged && state === "interrupted") {
          this.#plain(
            `stream interrupted (${context.interruption ?? "unknown"}${context.lastFailure ? `: ${context.lastFailure.message}` : ""}); resuming`,
          );
        } else if (statusChanged && context.status !== null) {
          this.#shownStatus = context.status;
          this.#plain(`status ${context.status}`);
        } else if (this.#retry && context.attempts === 1 && state === "polling") {
          this.#plain(`poll failed (${context.lastFailure?.message ?? "?"}); retrying`);
        }
      }
      this.#draw(false);
    };
    const subscription = run.subscribe({ next: onSnapshot, error: () => {} });
    const segments = run.on("segment", (segment) => {
      if (this.#live || !this.#ready) return;
      if (segment.kind === "continuation") {
        this.#plain(`stream resumed after event ${segment.startingAfter}`);
      } else if (segment.kind === "replay") {
        this.#plain("stream reopened from the start (already printed events are skipped)");
      } else if (segment.kind === "poll-fallback") {
        this.#plain("the stream cannot be resumed; polling for the rest");
      }
    });
    this.#unsubscribe = () => {
      subscription.unsubscribe();
      segments.unsubscribe();
    };
    onSnapshot();
    if (this.#live) {
      this.#timer = setInterval(() => this.#draw(true), 200);
      this.#timer.unref();
    }
  }

  /** The run was announced: plain progress lines may follow (from the status it had then). */
  markReady(): void {
    this.#ready = true;
    this.#shownStatus = this.#status;
  }

  /** The response's status as last seen. */
  get status(): string | null {
    return this.#status;
  }

  /** Called before answer text goes to stdout. */
  beforeText(): void {
    if (this.#sharedScreen && !this.#suspended) {
      this.#clear();
      this.#suspended = true;
    }
  }

  addChars(count: number): void {
    this.#chars += count;
  }

  /** A permanent line (`baton: …`) above the live line. */
  line(message: string): void {
    this.#clear();
    say(this.#io, message, this.#secrets);
    this.#draw(true);
  }

  /** Stops drawing and clears the live line. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#clear();
    this.#suspended = true;
  }

  /** How long since the progress started, as shown. */
  elapsed(): string {
    return formatElapsed(Date.now() - this.#startedAt);
  }

  #plain(message: string): void {
    if (message === this.#lastPlain) return;
    this.#lastPlain = message;
    say(this.#io, message, this.#secrets);
  }

  /** Redraws the live line if it changed; between timer ticks, at most every 80 ms. */
  #draw(force: boolean): void {
    if (!this.#live || this.#suspended || this.#run === undefined) return;
    const now = Date.now();
    if (!force && now - this.#drawnAt < 80) return;
    const parts: string[] = [this.#state];
    if (this.#status) parts.push(this.#status);
    if (this.#polls > 0) parts.push(`${this.#polls} poll${this.#polls === 1 ? "" : "s"}`);
    parts.push(`${this.#chars} chars`);
    parts.push(formatAge(now - this.#startedAt));
    if (this.#retry) parts.push(this.#retry);
    let text = redact(sanitize(`baton: ${parts.join(" · ")}`), this.#secrets);
    const columns = this.#io.stderr.columns;
    if (columns && text.length > columns - 1) text = text.slice(0, Math.max(0, columns - 1));
    if (this.#drawn && text === this.#drawnText) return;
    this.#io.stderr.write(`\r\x1b[2K${text}`);
    this.#drawn = true;
    this.#drawnText = text;
    this.#drawnAt = now;
  }

  #clear(): void {
    if (this.#drawn) {
      this.#io.stderr.write("\r\x1b[2K");
      this.#drawn = false;
    }
  }
}

/** What a run argument names: a run in the store, or a continuation token. */
export type Target =
  | { kind: "stored"; persisted: PersistedRun }
  | { kind: "token"; text: string; token: ContinuationToken };

/**
 * Resolves a `<token|run-id>` argument. A token whose response a run in the store follows
 * resolves to that run (it knows what was printed already).
 */
export async function resolveTarget(
  arg: string | undefined,
  store: RunStore,
  command: string,
): Promise<Target> {
  if (arg === undefined || arg.trim() === "") {
    throw new CliError(EXIT.usage, `missing <token|run-id> (see 'baton ${command} --help')`);
  }
  const text = arg.trim();
  if (looksLikeToken(text)) {
    const token = decodeContinuationToken(text);
    const match = (await store.list()).find((run) => run.responseId === token.responseId);
    const persisted = match ? await loadRun(store, match.runId) : undefined;
    return persisted
      ? ({ kind: "stored", persisted } as const)
      : ({ kind: "token", text, token } as const);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(text) || text.startsWith(".")) {
    throw new CliError(
      EXIT.usage,
      `'${text}' is neither a run id nor a continuation token (tokens start with 'bt1.')`,
    );
  }
  if (text.startsWith("resp_")) {
    // A response id: fine when a run in the store follows it.
    const match = (await store.list()).find((run) => run.responseId === text);
    const persisted = match ? await loadRun(store, match.runId) : undefined;
    if (persisted) return { kind: "stored", persisted } as const;
    throw new CliError(
      EXIT.usage,
      `no run in ${storeDirectoryOf(store)} follows response '${text}' (pass its bt1. token instead)`,
    );
  }
  const persisted = await loadRun(store, text);
  if (!persisted) throw new RunNotFoundError(text);
  return { kind: "stored", persisted } as const;
}

/**
 * Resolves once the run's actor is done, errored or stopped, without touching its saves.
 * (`run.result()` flushes the store afterwards, which must not happen once a run is detached.)
 */
export function settled(run: Run): Promise<"done" | "error" | "stopped"> {
  return new Promise((resolve) => {
    const check = () => {
      const status = run.getSnapshot().status;
      if (status === "done" || status === "error" || status === "stopped") {
        queueMicrotask(() => subscription.unsubscribe());
        resolve(status);
        return true;
      }
      return false;
    };
    const subscription = run.subscribe({
      next: check,
      error: () => resolve("error"),
      complete: () => resolve(run.getSnapshot().status === "done" ? "done" : "stopped"),
    });
    check();
  });
}

function storeDirectoryOf(store: RunStore): string {
  return store instanceof FileRunStore ? store.directory : "the store";
}
