/**
 * `baton runs`: what the store holds, newest save first: run id, state, status (the outcome
 * once a run is done), mode, age of the last save, response id. Reads the store only.
 *
 * Every file is listed: one that cannot be read (corrupt, foreign, from a newer baton) is a row
 * in state `unreadable`, and its error is printed on stderr, so that a store holding only a
 * corrupt file does not say "no runs".
 */
import { parseArgs } from "node:util";
import { responseIdOf } from "../persistence/envelope.js";
import type { RunStoreEntry } from "../persistence/run-store.js";
import { loadEntries } from "../run/index.js";
import { runCommand } from "./command.js";
import { EXIT } from "./exit-codes.js";
import { formatAge, formatTable } from "./format.js";
import { type CliIo, say } from "./io.js";
import { RUNS_USAGE } from "./usage.js";

/** One row of `baton runs` (the `--json` shape). */
export interface RunRow {
  runId: string;
  /** The run's top-level state, or `unreadable`. */
  state: string;
  /** The outcome of a finished run, else the response's last known status. */
  status: string | null;
  mode: string | null;
  /** Epoch ms of the last save; null for an unreadable entry. */
  savedAt: number | null;
  responseId: string | null;
  /** Why the entry cannot be read (only for `unreadable` rows). */
  error?: string;
}

/** The row of one store entry: read from the snapshot, the one source of every field. */
export function rowOf(entry: RunStoreEntry): RunRow {
  if (!entry.run) {
    return {
      runId: entry.runId,
      state: "unreadable",
      status: null,
      mode: null,
      savedAt: null,
      responseId: null,
      error: entry.error.message,
    };
  }
  const run = entry.run;
  const context = run.snapshot.context;
  return {
    runId: run.runId,
    state: run.state,
    status: context.result?.outcome ?? context.status,
    mode: context.mode,
    savedAt: run.savedAt,
    responseId: responseIdOf(run),
  };
}

/** A cell as printed: text from a file, with control characters (terminal escapes) removed. */
function cell(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

/**
 * Runs `baton runs`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runRunsCommand(["--store", ".baton/runs"]);
 * ```
 */
export function runRunsCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const spec = { name: "runs", usage: RUNS_USAGE, parse };
  return runCommand(argv, overrides, spec, async (session) => {
    const { io, values } = session;
    const { store, directory } = session.store();
    const rows = (await loadEntries(store)).map(rowOf);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      say(io, `no runs in ${directory}`);
      return EXIT.ok;
    }
    const now = Date.now();
    const table = [
      ["RUN ID", "STATE", "STATUS", "MODE", "AGE", "RESPONSE"],
      ...rows.map((row) => [
        cell(row.runId),
        cell(row.state),
        cell(row.status),
        cell(row.mode),
        row.savedAt === null ? "-" : formatAge(now - row.savedAt),
        cell(row.responseId),
      ]),
    ];
    io.stdout.write(`${formatTable(table)}\n`);
    for (const row of rows) {
      if (row.error !== undefined) say(io, `unreadable: ${cell(row.runId)}: ${cell(row.error)}`);
    }
    return EXIT.ok;
  });
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      store: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: false,
    strict: true,
  });
}
