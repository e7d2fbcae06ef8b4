/**
 * `baton run "prompt"`: starts a background response run (polling, or streaming with
 * `--stream`), persisted in the store, and prints the answer on stdout as it arrives. Everything
 * else (run id, token, progress, hints, errors) goes to stderr.
 *
 * Text is printed only once the save covering it is written (`delivery: "after-save"`), so a
 * crash at any moment never loses or repeats printed text: `baton resume <run-id>` prints
 * exactly the rest.
 */
import { mkdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { RunResult } from "../machines/run-types.js";
import type { CheckpointOptions } from "../persistence/checkpointer.js";
import { type Run, startRun } from "../run.js";
import { FileRunStore } from "../services/stores/file-run-store.js";
import type { RunStore } from "../services/stores/run-store.js";
import {
  CliError,
  type CliIo,
  CONNECTION_OPTIONS,
  type Connection,
  connect,
  describeError,
  describeOutcome,
  EXIT,
  nonEmpty,
  Progress,
  processIo,
  say,
  settled,
  storeDirectory,
  usageError,
} from "./shared.js";
import { RUN_USAGE } from "./usage.js";

/** Saves while text flows: often enough that printing stays fluid. */
export const CLI_CHECKPOINT: Partial<CheckpointOptions> = { everyEvents: 20, everyMs: 100 };

/** Unreachable this many times in a row, with a response: detach (the run stays resumable). */
const UNREACHABLE_DETACH_AFTER = 3;

/** How a followed run ended in this process. */
type Ending = { kind: "done" } | { kind: "signal"; signal: Interruption } | { kind: "unreachable" };

/** What stops a run in this process: Ctrl-C, SIGTERM, or stdout closed (`| head`). */
type Interruption = "SIGINT" | "SIGTERM" | "EPIPE";

const INTERRUPTION_EXIT: Record<Interruption, number> = {
  SIGINT: EXIT.detached,
  SIGTERM: EXIT.terminated,
  EPIPE: EXIT.brokenPipe,
};

/** Longest wait, on Ctrl-C, for a create call in flight to answer (so the run can resume). */
const CREATE_WAIT_MS = 30_000;

export interface FollowOptions {
  io: CliIo;
  connection: Connection;
  store: RunStore;
  /** Flags to repeat in the printed `baton resume` / `baton cancel` hints. */
  hintFlags: string;
  /**
   * Characters of the final text printed before this process took over (by an earlier
   * process); null when unknown (a stream followed from a token).
   */
  offset: number | null;
  /** Characters of what the run delivers to skip (they were printed by an earlier process). */
  skip?: number;
  /**
   * The `baton: …` lines saying which run this is, once its response id is known (with the
   * token and status of that moment: the run may have moved on by the time they print).
   */
  announce: (run: Run, at: { token: string | null; status: string | null }) => string[];
}

/**
 * Follows a run to its end in this process: answer on stdout, progress on stderr, Ctrl-C
 * detaches. Resolves with the exit code.
 */
export async function followRun(run: Run, options: FollowOptions): Promise<number> {
  const { io, connection } = options;
  const progress = new Progress(io, connection.secrets);
  let skip = options.skip ?? 0;
  let consumed = 0;
  let lastChar = "\n";
  let stdoutClosed = false;
  const write = (text: string) => {
    if (text === "" || stdoutClosed) return;
    progress.beforeText();
    io.stdout.write(text);
    progress.addChars(text.length);
    lastChar = text.at(-1) ?? lastChar;
  };
  // One write per batch: a batch is what one save covers, so a kill between two writes
  // cannot leave the saved cursor ahead of what was printed.
  run.onDeltaBatch((deltas) => {
    let text = deltas.map((delta) => delta.text).join("");
    consumed += text.length;
    if (skip > 0) {
      const cut = Math.min(skip, text.length);
      text = text.slice(cut);
      skip -= cut;
    }
    write(text);
  });

  // Announce the run once its response id is known and saved (the run id then resumes it).
  let announced = false;
  const announce = () => {
    if (announced || run.responseId === null) return;
    announced = true;
    const at = { token: run.token, status: run.getSnapshot().context.status };
    const saved = run.getSnapshot().status === "stopped" ? Promise.resolve() : run.flush();
    void saved.then(() => {
      for (const line of options.announce(run, at)) progress.line(line);
      progress.markReady();
    });
  };
  const announcing = run.subscribe({ next: announce, error: () => {} });
  progress.attach(run);
  announce();

  const signals: { signal: "SIGINT" | "SIGTERM"; handler: () => void }[] = [];
  let stopping = false;
  let watching: { unsubscribe(): void } | undefined;
  let removeStdoutListener = () => {};
  const ending = await new Promise<Ending>((resolve) => {
    // Not run.result(): it flushes the store once settled, and a detached run must not be.
    void settled(run).then(() => resolve({ kind: "done" }));
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const handler = () => {
        // A second Ctrl-C while saving: leave at once (the last save stands).
        if (stopping) process.exit(INTERRUPTION_EXIT[signal]);
        stopping = true;
        resolve({ kind: "signal", signal });
      };
      signals.push({ signal, handler });
      process.on(signal, handler);
    }
    if (io.stdout === process.stdout) {
      // The reader went away (`baton run … | head`): detach, as for Ctrl-C.
      const onError = () => {
        stdoutClosed = true;
        stopping = true;
        resolve({ kind: "signal", signal: "EPIPE" });
      };
      process.stdout.on("error", onError);
      removeStdoutListener = () => process.stdout.off("error", onError);
    }
    watching = run.subscribe({
      next: (snapshot) => {
        const context = snapshot.context;
        if (snapshot.status !== "active" || context.lastFailure?.kind !== "unreachable") return;
        const attempts = Math.max(context.attempts, context.resumeAttempts);
        const limit = context.responseId === null ? 1 : UNREACHABLE_DETACH_AFTER;
        const waiting = context.responseId === null || run.state !== "streaming";
        if (attempts >= limit && waiting) resolve({ kind: "unreachable" });
      },
      error: () => {},
    });
  });

  try {
    if (ending.kind === "signal") {
      stopping = true;
      const value = run.getSnapshot().value;
      const creating = typeof value === "object" && value !== null && "started" in value;
      if (creating && (value as { started: string }).started === "backoff") {
        // Waiting to retry a create that provably did nothing: there is nothing to resume.
        await run.cancel().catch(() => undefined);
        progress.stop();
        await options.store.delete(run.id).catch(() => false);
        say(io, "stopped before the response was created: nothing runs, nothing to resume");
        return INTERRUPTION_EXIT[ending.signal];
      }
      if (creating) {
        // A create in flight: wait for its answer, or a resume could not know the response.
        progress.line(
          "waiting for the create call to answer, so that the run can be resumed (Ctrl-C again to quit now)",
        );
        await Promise.race([
          until(run, () => run.responseId !== null || run.getSnapshot().status !== "active"),
          sleep(CREATE_WAIT_MS, undefined, { ref: false }),
        ]);
      }
      if (run.getSnapshot().status === "done") return await finish();
      await run.detach();
      progress.stop();
      if (io.stdout.isTTY && progress.chars > 0 && lastChar !== "\n") io.stdout.write("\n");
      return detached(run, options, ending.signal);
    }
    if (ending.kind === "unreachable") {
      const failure = run.getSnapshot().context.lastFailure;
      const reason = `cannot reach ${connection.baseURL}: ${failure?.message ?? "no connection"}`;
      if (run.responseId === null) {
        // Nothing was created (the request never reached the server): drop the run.
        await run.cancel().catch(() => undefined);
        progress.stop();
        await options.store.delete(run.id).catch(() => false);
        say(io, reason, connection.secrets);
        return EXIT.unreachable;
      }
      await run.detach();
      progress.stop();
      if (io.stdout.isTTY && progress.chars > 0 && lastChar !== "\n") io.stdout.write("\n");
      say(
        io,
        `${reason}; ${run.id} is saved and goes on server-side: baton resume ${run.id}${options.hintFlags}`,
        connection.secrets,
      );
      return EXIT.unreachable;
    }

    return await finish();
  } finally {
    announcing.unsubscribe();
    watching?.unsubscribe();
    progress.stop();
    for (const { signal, handler } of signals) process.off(signal, handler);
    removeStdoutListener();
  }

  async function finish(): Promise<number> {
    let result: RunResult;
    try {
      result = await run.result();
    } catch (err) {
      progress.stop();
      const described = describeError(err, { baseURL: connection.baseURL });
      say(io, described.message, connection.secrets);
      return described.code;
    }
    // A save that failed holds its text back: print whatever the final text has beyond it.
    if (options.offset !== null && result.text.length > options.offset + consumed) {
      write(result.text.slice(options.offset + consumed));
    }
    progress.stop();
    if (io.stdout.isTTY && progress.chars > 0 && lastChar !== "\n") io.stdout.write("\n");
    const outcome = describeOutcome(result, connection.baseURL);
    if (result.outcome === "completed") {
      progress.line(`completed: ${progress.chars} chars in ${progress.elapsed()}`);
    } else if (result.outcome === "cancelled") {
      progress.line(`${run.id} was ${outcome.line}`);
    } else {
      progress.line(outcome.line);
    }
    return outcome.code;
  }
}

/** Resolves once `predicate` holds, checked on every snapshot. */
function until(run: Run, predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (predicate()) return resolve();
    const subscription = run.subscribe({
      next: () => {
        if (!predicate()) return;
        queueMicrotask(() => subscription.unsubscribe());
        resolve();
      },
      error: () => resolve(),
      complete: () => resolve(),
    });
  });
}

function detached(run: Run, options: FollowOptions, signal: Interruption): number {
  const { io, connection } = options;
  say(io, `detached: ${run.id} goes on server-side`, connection.secrets);
  say(io, `resume with: baton resume ${run.id}${options.hintFlags}`, connection.secrets);
  say(io, `stop it with: baton cancel ${run.id}${options.hintFlags}`, connection.secrets);
  if (connection.embedded) {
    say(
      io,
      "note: the embedded emulator (--emulator) stops with this process, and its responses with it",
    );
  }
  return INTERRUPTION_EXIT[signal];
}

/** The flags to repeat in hints: those given on the command line that a resume needs too. */
export function hintFlagsOf(values: {
  store?: string | undefined;
  "base-url"?: string | undefined;
}) {
  let flags = "";
  if (values.store !== undefined) flags += ` --store ${shellQuote(values.store)}`;
  if (values["base-url"] !== undefined) flags += ` --base-url ${shellQuote(values["base-url"])}`;
  return flags;
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

/** Reads the prompt: the positionals, or stdin when there are none (or `-`) and it is piped. */
async function readPrompt(positionals: readonly string[]): Promise<string> {
  const fromStdin =
    (positionals.length === 0 && !process.stdin.isTTY) ||
    (positionals.length === 1 && positionals[0] === "-");
  if (!fromStdin) return positionals.join(" ");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Runs `baton run`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runRunCommand(["--stream", "Explain relativity."]);
 * ```
 */
export async function runRunCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const io = processIo(overrides);
  let connection: Connection | undefined;
  let storeDir: string | undefined;
  try {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(argv);
    } catch (err) {
      throw usageError(err, "run");
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(`${RUN_USAGE}\n`);
      return EXIT.ok;
    }
    const prompt = await readPrompt(positionals);
    if (prompt.trim() === "") {
      throw new CliError(EXIT.usage, `no prompt: baton run "your prompt" (see 'baton run --help')`);
    }
    let pollIntervalMs: number | undefined;
    if (values["poll-interval"] !== undefined) {
      pollIntervalMs = Number(values["poll-interval"]);
      if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 0) {
        throw new CliError(EXIT.usage, "--poll-interval needs a number of milliseconds");
      }
    }
    const model = values.model ?? nonEmpty(io.env.OPENAI_MODEL) ?? "o3";
    storeDir = storeDirectory(values, io);
    connection = await connect(values, io);
    try {
      await mkdir(storeDir, { recursive: true });
    } catch (err) {
      throw new CliError(
        EXIT.failed,
        `cannot use the store ${storeDir}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const store = new FileRunStore(storeDir, { sync: true });
    const conn = connection;
    let saveErrorShown = false;
    const run = startRun({
      client: conn.client,
      model,
      input: prompt,
      stream: values.stream === true,
      store,
      delivery: "after-save",
      checkpoint: CLI_CHECKPOINT,
      ...(pollIntervalMs !== undefined ? { options: { pollIntervalMs } } : {}),
      onSaveError: (err) => {
        if (saveErrorShown) return;
        saveErrorShown = true;
        say(io, `cannot save the run in ${storeDir}: ${String(err)}`, conn.secrets);
      },
    });
    const hintFlags = hintFlagsOf(values);
    return await followRun(run, {
      io,
      connection: conn,
      store,
      hintFlags,
      offset: 0,
      announce: (r, at) => [
        `run ${r.id} · response ${r.responseId} · ${values.stream ? "stream" : "poll"} · ${at.status ?? "created"}`,
        `token ${at.token ?? "(finished)"}`,
      ],
    });
  } catch (err) {
    const described = describeError(err, {
      ...(connection ? { baseURL: connection.baseURL } : {}),
      ...(storeDir ? { storeDir } : {}),
    });
    say(io, described.message, connection?.secrets);
    return described.code;
  } finally {
    await connection?.close();
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      ...CONNECTION_OPTIONS,
      stream: { type: "boolean" },
      model: { type: "string", short: "m" },
      "poll-interval": { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
}
