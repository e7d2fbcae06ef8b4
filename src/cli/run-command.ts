/**
 * `baton run "prompt"`: starts a background response run (polling, or streaming with
 * `--stream`), persisted in the store, and prints the answer on stdout as it arrives. Everything
 * else (run id, token, progress, hints, errors) goes to stderr.
 *
 * Text is printed only once the save covering it is written (`delivery: "after-save"`), so a
 * crash at any moment never loses or repeats printed text: `baton resume <run-id>` prints
 * exactly the rest. When stdout is a regular file, the run's notes say which file and where the
 * answer starts in it: a resume to that file goes by the file itself (stdout-file.ts), which
 * closes the last window (a kill between a save's rename and the write of its batch).
 */
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { CliError } from "../errors.js";
import { newRunId, startRun } from "../run/index.js";
import { CONNECTION_OPTIONS } from "./args.js";
import { runCommand } from "./command.js";
import { homeOf } from "./connect.js";
import { EXIT } from "./exit-codes.js";
import { followRun } from "./follow-run.js";
import { hintFlagsOf } from "./hints.js";
import { type CliIo, nonEmpty } from "./io.js";
import { OutputFile } from "./output-file.js";
import { cliRunHost } from "./run-host.js";
import { writeRunMeta } from "./run-meta.js";
import { stdoutNote } from "./stdout-file.js";
import { RUN_USAGE } from "./usage.js";

/**
 * Runs `baton run`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runRunCommand(["--stream", "Explain relativity."]);
 * ```
 */
export function runRunCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const spec = { name: "run", usage: RUN_USAGE, parse };
  return runCommand(argv, overrides, spec, async (session) => {
    const { io, values } = session;
    const prompt = await readPrompt(session.positionals);
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
    const { store, directory } = session.store();
    const connection = await session.connect();
    try {
      await mkdir(directory, { recursive: true });
    } catch (err) {
      throw cannotUseStore(directory, err);
    }
    const runId = newRunId();
    const outputPath = values.output === undefined ? undefined : resolve(io.cwd, values.output);
    // The file first: a path that cannot be written fails before anything is created.
    const output = outputPath === undefined ? undefined : OutputFile.create(outputPath);
    // stdout a regular file: where the answer starts in it, so that a resume to the same file
    // takes the file as the truth of what was printed (stdout-file.ts). Delivery stays
    // after-save: a resume to a pipe still goes by the saved cursor, which then matches.
    const stdout = output === undefined && io.stdout === process.stdout ? stdoutNote() : undefined;
    try {
      // Where the run lives (never the key): resume, status and cancel go there by default.
      writeRunMeta(directory, runId, {
        ...homeOf(connection),
        ...(outputPath !== undefined ? { output: outputPath } : {}),
        ...(stdout ? { stdout } : {}),
      });
    } catch (err) {
      output?.close();
      throw cannotUseStore(directory, err);
    }
    const host = cliRunHost({ io, connection, store, directory, toFile: output !== undefined });
    const run = startRun(
      host,
      { model, input: prompt, stream: values.stream === true },
      { runId, ...(pollIntervalMs !== undefined ? { options: { pollIntervalMs } } : {}) },
    );
    return await followRun(run, {
      io,
      connection,
      store,
      hintFlags: hintFlagsOf(values),
      offset: 0,
      output,
      origin: "new",
      notes: { directory, ...(connection.embedded ? {} : { homeBaseURL: connection.baseURL }) },
      announce: (r, at) => [
        `run ${r.id} · response ${r.responseId} · ${values.stream ? "stream" : "poll"} · ${at.status ?? "created"}`,
        `token ${at.token ?? "(finished)"}`,
      ],
    });
  });
}

function cannotUseStore(directory: string, err: unknown): CliError {
  return new CliError(
    EXIT.failed,
    `cannot use the store ${directory}: ${err instanceof Error ? err.message : String(err)}`,
  );
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

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      ...CONNECTION_OPTIONS,
      stream: { type: "boolean" },
      model: { type: "string", short: "m" },
      "poll-interval": { type: "string" },
      output: { type: "string", short: "o" },
    },
    allowPositionals: true,
    strict: true,
  });
}
