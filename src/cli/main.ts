/**
 * Entry point of the `baton` command: a small dispatcher from the first argument to a command
 * module. `bin/baton.js` calls `main`; running this file directly (`node --import tsx
 * src/cli/main.ts …`) does the same, which is how the tests and `npm run emulator` start it.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { runCancelCommand } from "./cancel-command.js";
import { runEmulatorCommand } from "./emulator-command.js";
import { EXIT } from "./exit-codes.js";
import { runResumeCommand } from "./resume-command.js";
import { runRunCommand } from "./run-command.js";
import { runRunsCommand } from "./runs-command.js";
import { runStatusCommand } from "./status-command.js";
import { BATON_USAGE } from "./usage.js";

/** A command: gets the arguments after its name, resolves with the exit code. */
type Command = (argv: readonly string[]) => Promise<number>;

const COMMANDS: Readonly<Record<string, Command>> = {
  emulator: runEmulatorCommand,
  run: runRunCommand,
  resume: runResumeCommand,
  status: runStatusCommand,
  cancel: runCancelCommand,
  runs: runRunsCommand,
};

const USAGE = BATON_USAGE;

/**
 * Runs the `baton` command line and resolves with the process exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2)); // e.g. ["emulator", "--port", "0"]
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (name === undefined) {
    process.stderr.write(`baton: missing command\n${USAGE}\n`);
    return EXIT.usage;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`baton: unknown command '${name}'\n${USAGE}\n`);
    return EXIT.usage;
  }
  return command(rest);
}

/** Whether this module is the program being run (and not imported, e.g. by bin/baton.js). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv.slice(2));
