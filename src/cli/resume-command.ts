/**
 * `baton resume <token|run-id>`: carries on a run in this process and prints the rest of its
 * answer (only text not printed before) on stdout.
 *
 * - A run id: the run saved in the store, from its last save (which covers exactly what was
 *   printed, thanks to after-save delivery).
 * - A token: the run in the store that follows the same response, if there is one; otherwise a
 *   new run attached to that response (saved in the store under a new run id). A stream token
 *   resumes after its event; a poll token carries no position, so the answer is printed from
 *   the start.
 * - A run that gave up locally (server unreachable too long, key refused) is attached to its
 *   response again, skipping the text already printed.
 */
import { parseArgs } from "node:util";
import { encodeContinuationToken } from "../continuation-token.js";
import type { PersistedRun } from "../persistence/envelope.js";
import { type RunHostOptions, rehydrateRun } from "../run.js";
import type { FileRunStore } from "../services/stores/file-run-store.js";
import { CLI_CHECKPOINT, followRun, hintFlagsOf } from "./run-command.js";
import {
  type CliIo,
  CONNECTION_OPTIONS,
  type Connection,
  connect,
  describeError,
  describeOutcome,
  EXIT,
  openStore,
  parseOneTarget,
  processIo,
  resolveTarget,
  say,
} from "./shared.js";
import { RESUME_USAGE } from "./usage.js";

/** Give-up reasons after which the response may still be going on: worth following again. */
const REATTACHABLE = new Set(["retries-exhausted", "rejected"]);

/**
 * Runs `baton resume`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runResumeCommand(["run_0123456789abcdef01234567"]);
 * ```
 */
export async function runResumeCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const io = processIo(overrides);
  let connection: Connection | undefined;
  let store: FileRunStore | undefined;
  try {
    const args = parseOneTarget(argv, "resume", RESUME_USAGE, parse, io);
    if (!args) return EXIT.ok;
    const { values } = args;
    store = openStore(values, io);
    const target = await resolveTarget(args.target, store, "resume");
    connection = await connect(values, io);
    const conn = connection;
    const runStore = store;
    let saveErrorShown = false;
    const host: RunHostOptions & { client: Connection["client"] } = {
      client: conn.client,
      store: runStore,
      delivery: "after-save",
      checkpoint: CLI_CHECKPOINT,
      onSaveError: (err) => {
        if (saveErrorShown) return;
        saveErrorShown = true;
        say(io, `cannot save the run in ${runStore.directory}: ${String(err)}`, conn.secrets);
      },
    };
    const hintFlags = hintFlagsOf(values);
    const follow = { io, connection: conn, store: runStore, hintFlags };

    if (target.kind === "token") {
      const run = await rehydrateRun(host, { token: target.text });
      const stream = target.token.sequenceNumber !== undefined;
      return await followRun(run, {
        ...follow,
        offset: stream ? null : 0,
        announce: (r) => [
          `following response ${r.responseId} from the token as run ${r.id} (${stream ? `stream, after event ${target.token.sequenceNumber}` : "poll, from the start"})`,
        ],
      });
    }

    const persisted = target.persisted;
    const context = persisted.snapshot.context;
    if (persisted.state === "done") {
      const result = context.result;
      const reattach =
        result?.outcome === "gave-up" &&
        context.responseId !== null &&
        REATTACHABLE.has(result.reason ?? "");
      if (!reattach) {
        const outcome = result
          ? describeOutcome(result, conn.baseURL)
          : { code: EXIT.failed, line: "finished" };
        say(
          io,
          `${persisted.runId} already finished (${outcome.line}); nothing left to print`,
          conn.secrets,
        );
        return outcome.code;
      }
      return await reattachRun(persisted, host, follow);
    }
    const run = await rehydrateRun(host, { persisted });
    return await followRun(run, {
      ...follow,
      offset: context.deliveredChars,
      announce: (r) => [
        `resuming ${r.id} · response ${r.responseId} · ${context.mode}${context.deliveredChars !== null ? ` · ${context.deliveredChars} chars printed before` : ""}`,
      ],
    });
  } catch (err) {
    const described = describeError(err, {
      ...(connection ? { baseURL: connection.baseURL } : {}),
      ...(store ? { storeDir: store.directory } : {}),
    });
    say(io, described.message, connection?.secrets);
    return described.code;
  } finally {
    await connection?.close();
  }
}

/** Follows the response of a run that gave up, under the same run id, skipping printed text. */
async function reattachRun(
  persisted: PersistedRun,
  host: RunHostOptions & { client: Connection["client"] },
  follow: Omit<Parameters<typeof followRun>[1], "offset" | "announce" | "skip">,
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
    options: { ...CONNECTION_OPTIONS },
    allowPositionals: true,
    strict: true,
  });
}
