/**
 * The command line's shared flags (`--store`, `--base-url`, `--emulator`, `--help`) and
 * parseArgs failures turned into usage errors in baton's words.
 */
import { CliError } from "../errors.js";
import { EXIT } from "./exit-codes.js";
import { oneLine } from "./sanitize.js";

/** The options every run command takes (parseArgs form). */
export const CONNECTION_OPTIONS = {
  store: { type: "string" },
  "base-url": { type: "string" },
  emulator: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** The parsed {@link CONNECTION_OPTIONS} (but `--help`). */
export interface ConnectionFlags {
  store?: string | undefined;
  "base-url"?: string | undefined;
  emulator?: boolean | undefined;
}

/**
 * Turns a parseArgs failure into a usage error, in baton's words: Node's own messages quote the
 * flag unevenly (`Unknown option '--x'. To specify a positional argument starting with a '-', …`).
 *
 * @example
 * ```ts
 * try { parse(argv); } catch (err) { throw usageError(err, "status"); }
 * ```
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
