/**
 * The `<token|run-id>` argument of `resume`, `status` and `cancel`: a run of the store (by run
 * id, response id, or a token whose response a stored run follows), or a continuation token.
 */
import { type ContinuationToken, decodeContinuationToken } from "../continuation-token.js";
import { CliError, RunNotFoundError } from "../errors.js";
import type { PersistedRun } from "../persistence/envelope.js";
import { loadRun } from "../run/index.js";
import { EXIT } from "./exit-codes.js";
import type { OpenedStore } from "./store.js";

/** What a run argument names: a run in the store, or a continuation token. */
export type Target =
  | { kind: "stored"; persisted: PersistedRun }
  | { kind: "token"; text: string; token: ContinuationToken };

/**
 * Whether an argument is a continuation token (`bt<version>.…`) rather than a run id.
 *
 * @example
 * ```ts
 * looksLikeToken("bt1.eyJy…"); // true
 * ```
 */
export function looksLikeToken(text: string): boolean {
  return /^bt\d+\./.test(text.trim());
}

/**
 * Resolves a `<token|run-id>` argument. A token whose response a run in the store follows
 * resolves to that run (it knows what was printed already).
 *
 * @example
 * ```ts
 * const target = await resolveTarget("run_0123456789abcdef01234567", opened, "status");
 * if (target.kind === "stored") console.log(target.persisted.state);
 * ```
 */
export async function resolveTarget(
  arg: string | undefined,
  opened: OpenedStore,
  command: string,
): Promise<Target> {
  if (arg === undefined || arg.trim() === "") {
    throw new CliError(EXIT.usage, `missing <token|run-id> (see 'baton ${command} --help')`);
  }
  const { store } = opened;
  const text = arg.trim();
  if (looksLikeToken(text)) {
    const token = decodeContinuationToken(text);
    const persisted = await followerOf(opened, token.responseId);
    return persisted
      ? ({ kind: "stored", persisted } as const)
      : ({ kind: "token", text, token } as const);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(text) || text.startsWith(".")) {
    throw new CliError(
      EXIT.usage,
      `'${text}' is neither a run id nor a continuation token (tokens start with 'bt1.')`,
    );
  }
  if (text.startsWith("resp_")) {
    // A response id: fine when a run in the store follows it.
    const persisted = await followerOf(opened, text);
    if (persisted) return { kind: "stored", persisted } as const;
    throw new CliError(
      EXIT.usage,
      `no run in ${opened.directory} follows response '${text}' (pass its bt1. token instead)`,
    );
  }
  const persisted = await loadRun(store, text);
  if (!persisted) throw new RunNotFoundError(text);
  return { kind: "stored", persisted } as const;
}

/** The stored run that follows a response, if any. */
async function followerOf(
  { store }: OpenedStore,
  responseId: string,
): Promise<PersistedRun | undefined> {
  const match = (await store.list()).find((run) => run.responseId === responseId);
  return match ? await loadRun(store, match.runId) : undefined;
}
