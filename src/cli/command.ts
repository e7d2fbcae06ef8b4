/**
 * The one opening and the one ending of the `baton` run commands (`run`, `resume`, `status`,
 * `cancel`, `runs`): arguments parsed (a failure is a usage error), `--help` answered, the store
 * and the connection opened on demand, and whatever escapes the command described as one
 * `baton: …` line on stderr with its exit code. The connection is closed at the end, always.
 */
import { usageError } from "./args.js";
import { type Connection, connect } from "./connect.js";
import { type Described, describeError } from "./describe-error.js";
import { EXIT } from "./exit-codes.js";
import { type CliIo, processIo, say } from "./io.js";
import { type OpenedStore, openStore } from "./store.js";

/** The flags {@link runCommand} itself reads. */
interface CommandFlags {
  help?: boolean | undefined;
  store?: string | undefined;
}

/** What a command is, as {@link runCommand} needs it. */
export interface CommandSpec<V extends CommandFlags> {
  /** As in `baton <name> --help`. */
  name: string;
  /** Printed on stdout for `--help`. */
  usage: string;
  /** parseArgs with the command's options (strict: a failure is a usage error). */
  parse: (argv: readonly string[]) => { values: V; positionals: string[] };
  /** The command takes one `<token|run-id>`: a second positional is a usage error. */
  oneTarget?: boolean;
}

/** What a command's body gets from {@link runCommand}. */
export interface CommandSession<V> {
  readonly io: CliIo;
  readonly values: V;
  readonly positionals: readonly string[];
  /** The store the flags name, opened once; its directory goes into the error line. */
  store(): OpenedStore;
  /**
   * Connects (once): the server's URL goes into the error line, the key is redacted from it,
   * and the connection is closed when the command ends.
   */
  connect(savedBaseURL?: string): Promise<Connection>;
  /** Runs when the command ends, whatever happened (before the connection is closed). */
  defer(cleanup: () => void): void;
  /** Prints a described failure (the key redacted) and gives its exit code. */
  fail(described: Described): number;
}

/**
 * Runs one command: parses `argv` (answering `--help`), runs `body`, and turns anything it
 * throws into one `baton: …` line and an exit code. Resolves with the exit code.
 *
 * @example
 * ```ts
 * export function runRunsCommand(argv: readonly string[], overrides: Partial<CliIo> = {}) {
 *   return runCommand(argv, overrides, { name: "runs", usage: RUNS_USAGE, parse }, async (session) => {
 *     const { store } = session.store();
 *     session.io.stdout.write(`${(await store.list()).length} runs\n`);
 *     return EXIT.ok;
 *   });
 * }
 * ```
 */
export async function runCommand<V extends CommandFlags>(
  argv: readonly string[],
  overrides: Partial<CliIo>,
  spec: CommandSpec<V>,
  body: (session: CommandSession<V>) => Promise<number>,
): Promise<number> {
  const io = processIo(overrides);
  let opened: OpenedStore | undefined;
  let connection: Connection | undefined;
  const cleanups: (() => void)[] = [];
  try {
    let parsed: { values: V; positionals: string[] };
    try {
      parsed = spec.parse(argv);
    } catch (err) {
      throw usageError(err, spec.name);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(`${spec.usage}\n`);
      return EXIT.ok;
    }
    if (spec.oneTarget && positionals.length > 1) {
      throw usageError(new Error(`${spec.name} takes one <token|run-id>`), spec.name);
    }
    const session: CommandSession<V> = {
      io,
      values,
      positionals,
      store: () => {
        opened ??= openStore(values, io);
        return opened;
      },
      connect: async (savedBaseURL) => {
        connection ??= await connect(values, io, savedBaseURL);
        return connection;
      },
      defer: (cleanup) => {
        cleanups.push(cleanup);
      },
      fail: (described) => {
        say(io, described.message, connection?.secrets);
        return described.code;
      },
    };
    return await body(session);
  } catch (err) {
    const described = describeError(err, {
      ...(connection ? { baseURL: connection.baseURL } : {}),
      ...(opened ? { storeDir: opened.directory } : {}),
    });
    say(io, described.message, connection?.secrets);
    return described.code;
  } finally {
    for (const cleanup of cleanups) cleanup();
    await connection?.close();
  }
}
