/**
 * `baton runs`: what the store holds, newest save first: run id, state, status (the outcome
 * once a run is done), mode, age of the last save, response id. Reads the store only.
 */
import { parseArgs } from "node:util";
import type { FileRunStore } from "../services/stores/file-run-store.js";
import {
  type CliIo,
  describeError,
  EXIT,
  formatAge,
  formatTable,
  openStore,
  processIo,
  say,
  usageError,
} from "./shared.js";
import { RUNS_USAGE } from "./usage.js";

/** One row of `baton runs` (the `--json` shape). */
export interface RunRow {
  runId: string;
  state: string;
  /** The outcome of a finished run, else the response's last known status. */
  status: string | null;
  mode: string | null;
  savedAt: number;
  responseId: string | null;
}

/**
 * Runs `baton runs`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runRunsCommand(["--store", ".baton/runs"]);
 * ```
 */
export async function runRunsCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const io = processIo(overrides);
  let store: FileRunStore | undefined;
  try {
    let values: ReturnType<typeof parse>["values"];
    try {
      ({ values } = parse(argv));
    } catch (err) {
      throw usageError(err, "runs");
    }
    if (values.help) {
      io.stdout.write(`${RUNS_USAGE}\n`);
      return EXIT.ok;
    }
    store = openStore(values, io);
    const rows: RunRow[] = [];
    for (const summary of await store.list()) {
      const persisted = await store.load(summary.runId).catch(() => undefined);
      const context = persisted?.snapshot.context;
      rows.push({
        runId: summary.runId,
        state: summary.state,
        status: context?.result?.outcome ?? summary.status,
        mode: context?.mode ?? null,
        savedAt: summary.savedAt,
        responseId: summary.responseId,
      });
    }
    if (values.json) {
      io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      say(io, `no runs in ${store.directory}`);
      return EXIT.ok;
    }
    const now = Date.now();
    const table = [
      ["RUN ID", "STATE", "STATUS", "MODE", "AGE", "RESPONSE"],
      ...rows.map((row) => [
        row.runId,
        row.state,
        row.status ?? "-",
        row.mode ?? "-",
        formatAge(now - row.savedAt),
        row.responseId ?? "-",
      ]),
    ];
    io.stdout.write(`${formatTable(table)}\n`);
    return EXIT.ok;
  } catch (err) {
    const described = describeError(err, store ? { storeDir: store.directory } : {});
    say(io, described.message);
    return described.code;
  }
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
