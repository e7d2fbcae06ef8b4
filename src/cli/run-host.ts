/**
 * How the CLI hosts a run (`baton run`, `baton resume`): text delivered only once the save
 * covering it is written (immediately with `--output`: the file leads the saved cursor, see
 * output-file.ts), saves often enough that printing stays fluid, and one line on stderr for
 * the first save that fails.
 */
import type { CheckpointOptions } from "../persistence/checkpointer.js";
import type { RunStore } from "../persistence/run-store.js";
import type { RunHost } from "../run/index.js";
import type { Connection } from "./connect.js";
import { type CliIo, say } from "./io.js";

/** Saves while text flows: often enough that printing stays fluid. */
export const CLI_CHECKPOINT: Partial<CheckpointOptions> = { everyEvents: 20, everyMs: 100 };

/**
 * The host of the CLI's runs.
 *
 * @example
 * ```ts
 * const host = cliRunHost({ io, connection, store, directory, toFile: output !== undefined });
 * const run = startRun(host, { model: "o3", input: prompt });
 * ```
 */
export function cliRunHost(options: {
  io: CliIo;
  connection: Connection;
  /** Where the run is saved (the store, or a guard around it). */
  store: RunStore;
  /** The store's directory, as the failed-save line names it. */
  directory: string;
  /** The answer goes to an `--output` file. */
  toFile: boolean;
}): RunHost {
  const { io, connection, directory } = options;
  let saveErrorShown = false;
  return {
    client: connection.client,
    store: options.store,
    // With --output the file is written first and the saved cursor lags it (output-file.ts).
    delivery: options.toFile ? "immediate" : "after-save",
    checkpoint: CLI_CHECKPOINT,
    onSaveError: (err) => {
      if (saveErrorShown) return;
      saveErrorShown = true;
      say(io, `cannot save the run in ${directory}: ${String(err)}`, connection.secrets);
    },
  };
}
