/**
 * `baton resume <token|run-id>`: carries on a run in this process and prints the rest of its
 * answer (only text not printed before) on stdout.
 *
 * - A run id: the run saved in the store, from its last save (which covers exactly what was
 *   printed, thanks to after-save delivery), or, when stdout is the regular file `baton run`
 *   printed to, from what that file holds (stdout-file.ts).
 * - A token: the run in the store that follows the same response, if there is one; otherwise a
 *   new run attached to that response (saved in the store under a new run id). A stream token
 *   resumes after its event; a poll token carries no position, so the answer is printed from
 *   the start.
 * - A run that gave up locally (server unreachable too long, key refused) is attached to its
 *   response again, skipping the text already printed.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { encodeContinuationToken } from "../continuation-token.js";
import { CliError } from "../errors.js";
import type { PersistedRun } from "../persistence/envelope.js";
import { newRunId, type RunHost, rehydrateRun } from "../run/index.js";
import { openAIResponsesClient } from "../services/openai-responses-client.js";
import { CONNECTION_OPTIONS } from "./args.js";
import { runCommand } from "./command.js";
import { type Connection, homeOf, sameServer } from "./connect.js";
import { describeOutcome } from "./describe-outcome.js";
import { EXIT } from "./exit-codes.js";
import { type FollowOptions, followRun } from "./follow-run.js";
import { GuardedStore } from "./guarded-store.js";
import { hintFlagsOf } from "./hints.js";
import { type CliIo, say } from "./io.js";
import { OutputFile } from "./output-file.js";
import { cliRunHost } from "./run-host.js";
import { readRunMeta, updateRunMeta, writeRunMeta } from "./run-meta.js";
import { printedToStdout } from "./stdout-file.js";
import { resolveTarget } from "./targets.js";
import { RESUME_USAGE } from "./usage.js";

/** Give-up reasons after which the response may still be going on: worth following again. */
const REATTACHABLE = new Set(["retries-exhausted", "rejected"]);

type Follow = Omit<FollowOptions, "offset" | "announce" | "skip">;

/**
 * Runs `baton resume`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runResumeCommand(["run_0123456789abcdef01234567"]);
 * ```
 */
export function runResumeCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const spec = { name: "resume", usage: RESUME_USAGE, parse, oneTarget: true };
  return runCommand(argv, overrides, spec, async (session) => {
    const { io, values } = session;
    const opened = session.store();
    const { directory } = opened;
    const target = await resolveTarget(session.positionals[0], opened, "resume");
    const storedId = target.kind === "stored" ? target.persisted.runId : undefined;
    const meta = storedId ? await readRunMeta(directory, storedId) : {};
    const conn = await session.connect(meta.baseURL);
    // Asked of a server the run was not created on: its 404 is no verdict on the run.
    const foreign =
      meta.baseURL !== undefined && (conn.embedded || !sameServer(conn.baseURL, meta.baseURL));
    if (foreign) {
      say(io, `note: ${storedId} was created on ${meta.baseURL}; asking ${conn.baseURL}`);
    }
    const guarded = new GuardedStore(
      opened.store,
      (run) =>
        foreign &&
        run.state === "done" &&
        run.snapshot.context.result?.outcome === "gave-up" &&
        run.snapshot.context.result.reason === "not-found",
    );
    const outputPath = values.output !== undefined ? resolve(io.cwd, values.output) : meta.output;
    const output = outputPath === undefined ? undefined : OutputFile.open(outputPath);
    if (output) session.defer(() => output.close());
    const host = cliRunHost({
      io,
      connection: conn,
      store: guarded,
      directory,
      toFile: output !== undefined,
    });
    const follow: Follow = {
      io,
      connection: conn,
      store: guarded,
      hintFlags: hintFlagsOf(values),
      output,
      origin: "stored",
      notes: { directory, homeBaseURL: meta.baseURL },
      vetoed: () => guarded.vetoed,
    };

    if (target.kind === "token") {
      const runId = newRunId();
      if (output && output.chars > 0) {
        await checkAgainstServer(output, target.token.responseId, runId, conn);
      }
      writeRunMeta(directory, runId, {
        ...homeOf(conn),
        ...(output ? { output: output.path } : {}),
      });
      const tokenFollow: Follow = {
        ...follow,
        origin: "token",
        notes: { directory, homeBaseURL: conn.baseURL },
      };
      if (output) {
        // The file's text must line up with the answer: follow it from its start.
        return await fromTheStart(target.token.responseId, runId, host, tokenFollow, output);
      }
      const run = await rehydrateRun(host, { token: target.text, runId });
      const stream = target.token.sequenceNumber !== undefined;
      return await followRun(run, {
        ...tokenFollow,
        offset: stream ? null : 0,
        announce: (r) => [
          `following response ${r.responseId} from the token as run ${r.id} (${stream ? `stream, after event ${target.token.sequenceNumber}` : "poll, from the start"})`,
        ],
      });
    }

    const persisted = target.persisted;
    const context = persisted.snapshot.context;
    // stdout the very file `baton run` printed to: what it holds is what was printed (the saved
    // cursor may be one save ahead of it: a kill between a save's rename and its write).
    let printed =
      !output && io.stdout === process.stdout && meta.stdout
        ? printedToStdout(meta.stdout)
        : undefined;
    const fileLost = (why: string) => {
      say(io, `note: the file on stdout ${why}; resuming from the saved cursor`);
      printed = undefined;
    };
    // Once the file given now is known to fit, it is the run's file from now on.
    const adopt = async () => {
      if (output && output.path !== meta.output) {
        await updateRunMeta(directory, persisted.runId, { output: output.path });
      }
    };
    if (persisted.state === "done") {
      const result = context.result;
      const reattach =
        result?.outcome === "gave-up" &&
        context.responseId !== null &&
        REATTACHABLE.has(result.reason ?? "");
      if (reattach) {
        if (output) {
          if (output.chars > 0) {
            await checkAgainstServer(output, context.responseId as string, persisted.runId, conn);
          }
          await adopt();
          return await fromTheStart(
            context.responseId as string,
            persisted.runId,
            host,
            follow,
            output,
          );
        }
        if (printed !== undefined) {
          // From the start of the answer, what the file holds skipped (and checked).
          const known = printed;
          return await fromTheStart(context.responseId as string, persisted.runId, host, follow, {
            skip: known.length,
            printed: known,
            where: "on stdout",
          });
        }
        return await reattachRun(persisted, host, follow);
      }
      const outcome = result
        ? describeOutcome(result, conn.baseURL)
        : { code: EXIT.failed, line: "finished" };
      if (printed !== undefined && !finalTextOf(persisted).startsWith(printed)) {
        fileLost("does not hold the beginning of this answer");
      }
      const rest = restOfFinished(persisted, printed?.length ?? meta.printed, output);
      if (rest === null) {
        throw new CliError(
          EXIT.failed,
          `${output?.path} does not hold the answer of ${persisted.runId}: left as it is, nothing appended; give another --output`,
        );
      }
      await adopt();
      if (rest !== "") {
        if (output) {
          output.write(rest);
        } else {
          io.stdout.write(rest);
          if (io.stdout.isTTY && !rest.endsWith("\n")) io.stdout.write("\n");
          await updateRunMeta(directory, persisted.runId, {
            printed: finalTextOf(persisted).length,
          });
        }
      }
      say(
        io,
        rest === ""
          ? `${persisted.runId} already finished (${outcome.line}); nothing left to print`
          : `${persisted.runId} had finished (${outcome.line}); ${output ? `wrote to ${output.path}` : "printed"} the ${rest.length} chars not ${output ? "written" : "printed"} before`,
        conn.secrets,
      );
      return outcome.code;
    }

    if (output && context.responseId !== null) {
      // Before anything is saved or appended: a file of another answer is refused here.
      if (output.chars > 0) {
        await checkAgainstServer(output, context.responseId, persisted.runId, conn);
      }
      await adopt();
      const delivered = context.deliveredChars;
      if (delivered === null || delivered > output.chars) {
        // The saved cursor is past the file's end (the file is not the one this run wrote
        // to, or was cut): follow the answer from its start.
        return await fromTheStart(context.responseId, persisted.runId, host, follow, output);
      }
    }
    if (printed !== undefined && context.responseId !== null) {
      const known = printed;
      if (known.length > 0 && !(await agreesWithServer(known, context.responseId, conn))) {
        fileLost("does not hold the beginning of this answer");
      } else {
        const delivered = context.deliveredChars;
        if (delivered === null) {
          return await fromTheStart(context.responseId, persisted.runId, host, follow, {
            skip: known.length,
            printed: known,
            where: "on stdout",
          });
        }
        if (known.length < delivered) {
          // The store is ahead of the file: exactly what follows the file, by the consumer's
          // own cursor (the run replays its stream and skips what the file holds).
          const run = await rehydrateRun(host, { persisted, from: { chars: known.length } });
          return await followRun(run, {
            ...follow,
            offset: known.length,
            announce: (r) => [
              `resuming ${r.id} · response ${r.responseId} · ${context.mode} · ${known.length} chars on stdout before`,
            ],
          });
        }
        const run = await rehydrateRun(host, { persisted });
        return await followRun(run, {
          ...follow,
          offset: delivered,
          skip: known.length - delivered,
          printed: known,
          announce: (r) => [
            `resuming ${r.id} · response ${r.responseId} · ${context.mode} · ${known.length} chars on stdout before`,
          ],
        });
      }
    }
    const run = await rehydrateRun(host, { persisted });
    const offset = context.deliveredChars;
    return await followRun(run, {
      ...follow,
      offset,
      skip: output && offset !== null ? output.chars - offset : 0,
      announce: (r) => [
        `resuming ${r.id} · response ${r.responseId} · ${context.mode}${offset !== null ? ` · ${output ? output.chars : offset} chars ${output ? `in ${output.path}` : "printed"} before` : ""}`,
      ],
    });
  });
}

/**
 * What of a finished run's answer its reader has not seen: after the file's length with
 * `--output` (null when the file is not a prefix of the answer), else after what was printed
 * (`printed` from the notes when a process that printed nothing ended the run).
 */
function restOfFinished(
  persisted: PersistedRun,
  printed: number | undefined,
  output: OutputFile | undefined,
): string | null {
  const context = persisted.snapshot.context;
  const text = finalTextOf(persisted);
  if (output) return text.startsWith(output.existing) ? text.slice(output.existing.length) : null;
  const seen = printed ?? context.deliveredChars;
  // Unknown (a stream followed from a token): nothing can be said to be missing.
  if (seen === null) return "";
  return text.slice(Math.min(seen, text.length));
}

/** A finished run's final text: its result's (or XState's output, should only that hold it). */
function finalTextOf(persisted: PersistedRun): string {
  const output = persisted.snapshot.output as { text?: unknown } | undefined;
  const text = persisted.snapshot.context.result?.text ?? output?.text;
  return typeof text === "string" ? text : "";
}

/**
 * Before appending to a file with text in it: one retrieve, and the file must agree with the
 * answer as far as both go (a file of another answer is refused, not appended to).
 */
async function checkAgainstServer(
  output: OutputFile,
  responseId: string,
  runId: string,
  connection: Connection,
): Promise<void> {
  if (!(await agreesWithServer(output.existing, responseId, connection))) {
    throw new CliError(
      EXIT.failed,
      `${output.path} does not hold the answer of ${runId}: left as it is, nothing appended; give another --output`,
    );
  }
}

/**
 * Whether `text` agrees with the response's answer as far as both go (one retrieve; true when
 * the server cannot say: the run meets the same failure and reports it, and the text delivered
 * again is checked anyway).
 */
async function agreesWithServer(
  text: string,
  responseId: string,
  connection: Connection,
): Promise<boolean> {
  let answer: string;
  try {
    ({
      response: { outputText: answer },
    } = await openAIResponsesClient(connection.client).retrieve(
      responseId,
      AbortSignal.timeout(30_000),
    ));
  } catch {
    return true;
  }
  const common = Math.min(answer.length, text.length);
  return answer.slice(0, common) === text.slice(0, common);
}

/**
 * Follows a response from the first character of its answer, under `runId`, skipping (and
 * checking) what the file holds: for a file whose length the saved cursor cannot be lined up
 * with. Polls: only a poll token carries no position.
 */
async function fromTheStart(
  responseId: string,
  runId: string,
  host: RunHost,
  follow: Follow,
  held: OutputFile | { skip: number; printed: string; where: string },
): Promise<number> {
  const token = encodeContinuationToken({ responseId });
  const run = await rehydrateRun(host, { token, runId });
  const skip = held instanceof OutputFile ? held.chars : held.skip;
  const where = held instanceof OutputFile ? `in ${held.path}` : held.where;
  return followRun(run, {
    ...follow,
    offset: 0,
    skip,
    ...(held instanceof OutputFile ? {} : { printed: held.printed }),
    announce: (r) => [
      `following ${r.id} · response ${r.responseId} from the start of its answer (${skip} chars already ${where})`,
    ],
  });
}

/** Follows the response of a run that gave up, under the same run id, skipping printed text. */
async function reattachRun(
  persisted: PersistedRun,
  host: RunHost,
  follow: Follow,
): Promise<number> {
  const context = persisted.snapshot.context;
  const stream = context.mode === "stream" && context.sequenceNumber !== null;
  const token = encodeContinuationToken({
    responseId: context.responseId as string,
    ...(stream ? { sequenceNumber: context.sequenceNumber as number } : {}),
  });
  const run = await rehydrateRun(host, { token, runId: persisted.runId });
  return followRun(run, {
    ...follow,
    offset: stream ? null : 0,
    skip: stream ? 0 : (context.deliveredChars ?? 0),
    announce: (r) => [`following ${r.id} again · response ${r.responseId} (it had given up)`],
  });
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: { ...CONNECTION_OPTIONS, output: { type: "string", short: "o" } },
    allowPositionals: true,
    strict: true,
  });
}
