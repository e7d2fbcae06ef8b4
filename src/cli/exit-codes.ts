/** The exit codes of `baton`: one table, documented in `baton --help` and docs/cli.md. */

/**
 * The exit codes of `baton`.
 *
 * @example
 * ```ts
 * if (result.outcome === "cancelled") return EXIT.cancelled; // 4
 * ```
 */
export const EXIT = {
  /** The run completed (or the command did what it was asked). */
  ok: 0,
  /** The run failed, ended incomplete or gave up; or a local failure. */
  failed: 1,
  /** Usage error, bad continuation token, unknown run id. */
  usage: 2,
  /** Cannot reach the server, or the server refused the key (or there is no key). */
  unreachable: 3,
  /** The run ended cancelled (`baton cancel`, from here or elsewhere). */
  cancelled: 4,
  /** Detached by Ctrl-C: the run goes on server-side; `baton resume` carries on. */
  detached: 130,
  /** Detached by SIGTERM. */
  terminated: 143,
  /** Detached because stdout was closed (`baton run … | head`). */
  brokenPipe: 141,
} as const;
