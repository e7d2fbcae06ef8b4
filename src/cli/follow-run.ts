/**
 * Following a run to its end in this process, for `baton run` and `baton resume`: the answer on
 * stdout (or in the `--output` file) exactly once, progress on stderr, and every way the
 * process can stop (Ctrl-C, SIGTERM, stdout closed, the server unreachable, a file that holds
 * another answer) leaving the run resumable, or removed when it never existed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { subState, topState } from "../machines/run-state.js";
import type { RunResult } from "../machines/run-types.js";
import type { RunStore } from "../persistence/run-store.js";
import type { Run } from "../run/index.js";
import type { ClientFailure } from "../services/client-failure.js";
import type { Connection } from "./connect.js";
import { describeError } from "./describe-error.js";
import { createWasRefused, describeOutcome, describeRefusedCreate } from "./describe-outcome.js";
import { EXIT } from "./exit-codes.js";
import { type CliIo, say } from "./io.js";
import type { OutputFile } from "./output-file.js";
import { Progress } from "./progress.js";
import { deleteRunMeta, updateRunMeta } from "./run-meta.js";
import { settled, until } from "./run-waits.js";

/** Unreachable this many times in a row, with a response: detach (the run stays resumable). */
const UNREACHABLE_DETACH_AFTER = 3;

/** How a followed run ended in this process. */
type Ending =
  | { kind: "done" }
  | { kind: "signal"; signal: Interruption }
  | { kind: "unreachable" }
  | { kind: "mismatch" };

/** What stops a run in this process: Ctrl-C, SIGTERM, or stdout closed (`| head`). */
type Interruption = "SIGINT" | "SIGTERM" | "EPIPE";

const INTERRUPTION_EXIT: Record<Interruption, number> = {
  SIGINT: EXIT.detached,
  SIGTERM: EXIT.terminated,
  EPIPE: EXIT.brokenPipe,
};

/**
 * Longest wait, on Ctrl-C or SIGTERM, for a create call in flight to answer (then the run can
 * be resumed). Short: a container's grace period after SIGTERM is often 10 s, and a create that
 * has not answered by now may never answer.
 */
const CREATE_GRACE_MS = 1_000;

/** The CLI's notes of the run being followed (`<run-id>.cli.json` in the store). */
export interface FollowNotes {
  directory: string;
  /** The server the run was created on, when known. */
  homeBaseURL?: string | undefined;
}

export interface FollowOptions {
  io: CliIo;
  connection: Connection;
  store: RunStore;
  /** Flags to repeat in the printed `baton resume` / `baton cancel` hints. */
  hintFlags: string;
  /**
   * Where in the final text the run's deliveries start (characters printed before this process
   * took over); null when unknown (a stream followed from a token).
   */
  offset: number | null;
  /** Characters of what the run delivers to skip (they were printed by an earlier process). */
  skip?: number;
  /**
   * The answer's text from its start as stdout's file holds it (stdout-file.ts): text skipped
   * must be this text, as with `--output`.
   */
  printed?: string;
  /** The answer's file (`--output`): text goes there instead of stdout. */
  output?: OutputFile | undefined;
  /**
   * How the run came to be followed here: `new` (this process creates it), `stored` (a run of
   * the store), `token` (a run made here for a token). Decides what a failure leaves behind.
   */
  origin: "new" | "stored" | "token";
  notes: FollowNotes;
  /** True when a not-found verdict was kept out of the store (it came from another server). */
  vetoed?: () => boolean;
  /**
   * The `baton: …` lines saying which run this is, once its response id is known (with the
   * token and status of that moment: the run may have moved on by the time they print).
   */
  announce: (run: Run, at: { token: string | null; status: string | null }) => string[];
}

/**
 * Follows a run to its end in this process: answer on stdout (or in the `--output` file),
 * progress on stderr, Ctrl-C detaches. Resolves with the exit code.
 *
 * @example
 * ```ts
 * return await followRun(run, { io, connection, store, hintFlags: "", offset: 0, origin: "new",
 *   notes: { directory }, announce: (r) => [`run ${r.id}`] });
 * ```
 */
export async function followRun(run: Run, options: FollowOptions): Promise<number> {
  const { io, connection, output } = options;
  const progress = new Progress(io, connection.secrets, { answerOnStdout: output === undefined });
  let skip = options.skip ?? 0;
  // Where the next delivered character falls in the final text (null: unknown).
  let position = options.offset;
  let consumed = 0;
  let lastChar = "\n";
  let stdoutClosed = false;
  let mismatchAt: number | null = null;
  let onMismatch = () => {};
  const write = (text: string) => {
    if (text === "") return;
    if (output) {
      output.write(text);
    } else {
      if (stdoutClosed) return;
      progress.beforeText();
      io.stdout.write(text);
    }
    progress.addChars(text.length);
    lastChar = text.at(-1) ?? lastChar;
  };
  // One write per batch: a batch is what one save covers, so a kill between two writes
  // cannot leave the saved cursor ahead of what was printed. (With --output, each delta comes
  // alone, before any save counts it, and goes to the file at once.)
  run.onDeltaBatch((deltas) => {
    if (mismatchAt !== null) return;
    let text = deltas.map((delta) => delta.text).join("");
    consumed += text.length;
    if (skip > 0) {
      const cut = Math.min(skip, text.length);
      const skipped = text.slice(0, cut);
      // Text delivered again must be what the file holds: else the file is another answer's.
      const known = output?.existing ?? options.printed;
      if (known !== undefined && position !== null) {
        const held = known.slice(position, position + cut);
        if (held !== skipped) {
          mismatchAt = position + firstDifference(held, skipped);
          onMismatch();
          return;
        }
      }
      text = text.slice(cut);
      skip -= cut;
      if (position !== null) position += cut;
    }
    write(text);
    if (position !== null) position += text.length;
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
    onMismatch = () => resolve({ kind: "mismatch" });
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
    if (io.stdout === process.stdout && !output) {
      // The reader went away (`baton run … | head`): detach, as for Ctrl-C.
      const onError = () => {
        stdoutClosed = true;
        stopping = true;
        resolve({ kind: "signal", signal: "EPIPE" });
      };
      process.stdout.on("error", onError);
      removeStdoutListener = () => process.stdout.off("error", onError);
    }
    // Only failures met by this process count: a restored snapshot's are an earlier one's.
    let lastSeen = run.getSnapshot().context.lastFailure;
    let unreachable = 0;
    watching = run.subscribe({
      next: (snapshot) => {
        const context = snapshot.context;
        if (context.lastFailure !== lastSeen) {
          lastSeen = context.lastFailure;
          unreachable = context.lastFailure?.kind === "unreachable" ? unreachable + 1 : 0;
        }
        if (snapshot.status !== "active" || unreachable === 0) return;
        const limit = context.responseId === null ? 1 : UNREACHABLE_DETACH_AFTER;
        const waiting = context.responseId === null || run.state !== "streaming";
        if (unreachable >= limit && waiting) resolve({ kind: "unreachable" });
      },
      error: () => {},
    });
  });

  try {
    if (ending.kind === "mismatch") {
      await run.detach();
      progress.stop();
      say(
        io,
        output
          ? `${output.path} does not hold the answer of ${run.id} (it differs at character ${mismatchAt}): left as it is, nothing appended; give another --output`
          : `the file on stdout does not hold the answer of ${run.id} (it differs at character ${mismatchAt}): nothing appended; resume to another file or a pipe`,
        connection.secrets,
      );
      return EXIT.failed;
    }
    if (ending.kind === "signal") {
      stopping = true;
      if (isCreating(run, "backoff")) {
        // Waiting to retry a create that provably did nothing: there is nothing to resume.
        await run.cancel().catch(() => undefined);
        progress.stop();
        await forget(run, options);
        say(io, "stopped before the response was created: nothing runs, nothing to resume");
        return INTERRUPTION_EXIT[ending.signal];
      }
      if (isCreating(run)) {
        // A create in flight: give its answer a moment, or a resume could not know the response.
        await Promise.race([
          until(run, () => run.responseId !== null || run.getSnapshot().status !== "active"),
          sleep(CREATE_GRACE_MS, undefined, { ref: false }),
        ]);
        if (run.responseId === null && run.getSnapshot().status === "active") {
          // Stopping the run aborts the create's request; the run is of no use to anyone.
          await run.detach();
          progress.stop();
          await forget(run, options);
          say(
            io,
            `stopped: the create call had not answered, so there is no response id to follow and nothing to resume. If the server did receive it, the response runs (and is billed) server-side, tagged metadata.baton_run_id=${run.id}`,
          );
          return INTERRUPTION_EXIT[ending.signal];
        }
      }
      if (run.getSnapshot().status === "done") return await finish();
      await run.detach();
      progress.stop();
      endLine();
      return detached(run, options, ending.signal);
    }
    if (ending.kind === "unreachable") {
      const failure = run.getSnapshot().context.lastFailure;
      const reason = `cannot reach ${connection.baseURL}: ${failure?.message ?? "no connection"}`;
      if (run.responseId === null) {
        // Nothing was created (the request never reached the server): drop the run.
        await run.cancel().catch(() => undefined);
        progress.stop();
        await forget(run, options);
        say(io, reason, connection.secrets);
        return EXIT.unreachable;
      }
      await run.detach();
      progress.stop();
      endLine();
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
    output?.close();
  }

  /** On a terminal, the answer ends with a newline (the prompt must not follow it on its line). */
  function endLine(): void {
    if (!output && io.stdout.isTTY && progress.chars > 0 && lastChar !== "\n") {
      io.stdout.write("\n");
    }
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
    // With --output, the file's length says what it has.
    if (output) {
      if (result.text.length > output.chars && result.text.startsWith(output.existing)) {
        write(result.text.slice(output.chars));
      }
    } else if (options.offset !== null && result.text.length > options.offset + consumed) {
      write(result.text.slice(options.offset + consumed));
    }
    progress.stop();
    endLine();
    const verdict = await notAVerdict(run, result, options, consumed > 0);
    if (verdict) {
      say(io, verdict.message, connection.secrets);
      return verdict.code;
    }
    if (!output && options.offset !== null) {
      // This process printed the answer to its end: a `baton cancel` elsewhere may note (or
      // have noted) less when it ended the run, and the note keeps the larger of the two.
      await updateRunMeta(options.notes.directory, run.id, { printed: result.text.length });
    }
    const outcome = describeOutcome(result, connection.baseURL);
    if (result.outcome === "completed") {
      const here = progress.chars === result.text.length ? "" : `, ${progress.chars} of them here`;
      const where = output ? ` in ${output.path}` : "";
      progress.line(
        `completed: ${result.text.length} chars${where}${here} in ${progress.elapsed()}`,
      );
    } else if (result.outcome === "cancelled") {
      progress.line(`${run.id} was ${outcome.line}`);
    } else {
      progress.line(outcome.line);
    }
    return outcome.code;
  }
}

/** Whether the run is in its create call (`started`), or in one of its sub-states. */
function isCreating(run: Run, sub?: string): boolean {
  const snapshot = run.getSnapshot();
  if (topState(snapshot) !== "started") return false;
  return sub === undefined || subState(snapshot.value, "started") === sub;
}

/** Removes a run that never existed (and its notes) from the store. */
async function forget(run: Run, options: FollowOptions): Promise<void> {
  await options.store.delete(run.id).catch(() => false);
  await deleteRunMeta(options.notes.directory, run.id);
}

/**
 * An ending that is no verdict on a run: a create the server refused with a 4xx (nothing was
 * created: the run is removed), a token whose response the server does not know (the run made
 * for it is removed), a 404 from a server the run was not created on (the run stays as saved
 * before it). Null for a real ending.
 */
async function notAVerdict(
  run: Run,
  result: RunResult,
  options: FollowOptions,
  received: boolean,
): Promise<{ code: number; message: string } | null> {
  if (result.outcome !== "gave-up") return null;
  const { connection } = options;
  const failure = result.failure;
  if (createWasRefused(result)) {
    await forget(run, options);
    return describeRefusedCreate(failure as ClientFailure, connection.baseURL);
  }
  const notFound = result.reason === "not-found" || failure?.kind === "not-found";
  const responseId = result.responseId ?? run.responseId ?? "?";
  if (options.origin === "token" && !received && run.getSnapshot().context.status === null) {
    // A run made here for a token whose response the server never showed: it never existed.
    await forget(run, options);
    if (!notFound) {
      const outcome = describeOutcome(result, connection.baseURL);
      return { code: outcome.code, message: `${outcome.line}; nothing is saved` };
    }
    return {
      code: EXIT.failed,
      message: `the server at ${connection.baseURL} does not know response ${responseId} (expired, deleted, or created on another server); nothing is saved`,
    };
  }
  if (!notFound) return null;
  if (options.vetoed?.()) {
    const home = options.notes.homeBaseURL;
    return {
      code: EXIT.failed,
      message: `the server at ${connection.baseURL} does not know response ${responseId}; ${run.id} was created on ${home}, so it is kept as it was: baton resume ${run.id}${home ? "" : options.hintFlags} asks ${home ?? "that server"}`,
    };
  }
  return null;
}

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
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
