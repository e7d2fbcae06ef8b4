/**
 * What the CLI keeps about a run beside the library's envelope: a small JSON file
 * `<run-id>.cli.json` in the store directory (the store lists `*.run.json` only, so it never
 * shows up as a run).
 *
 * - `baseURL`: the server the run was created on (never the key). `resume`, `status` and
 *   `cancel` use it by default, and a 404 from another server is not the run's verdict.
 * - `output`: the file `--output` wrote the answer to; `resume` writes there by default.
 * - `stdout`: the regular file stdout was when `baton run` started (device, inode) and the byte
 *   offset where the answer starts in it (stdout-file.ts): a resume to that file reads what was
 *   printed from the file itself.
 * - `printed`: characters of the answer the reader has seen, when a process that printed
 *   nothing (`baton cancel`) brought the run to its end (the envelope then counts the whole
 *   answer as delivered).
 *
 * Written atomically (temporary file, fsync, rename), mode 0600. A missing or unreadable file
 * reads as empty: the run then works as it did before this file existed.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { StdoutNote } from "./stdout-file.js";

/** The CLI's own notes about a run. */
export interface RunMeta {
  baseURL?: string;
  output?: string;
  printed?: number;
  stdout?: StdoutNote;
}

const SUFFIX = ".cli.json";

function pathOf(directory: string, runId: string): string | undefined {
  // Same rule as the store's run ids: nothing that could leave the directory.
  if (!/^[A-Za-z0-9_.-]+$/.test(runId) || runId.startsWith(".")) return undefined;
  return join(directory, `${runId}${SUFFIX}`);
}

/**
 * Reads a run's notes; `{}` when there are none or they cannot be read.
 *
 * @example
 * ```ts
 * const { baseURL } = await readRunMeta(store.directory, runId);
 * ```
 */
export async function readRunMeta(directory: string, runId: string): Promise<RunMeta> {
  const path = pathOf(directory, runId);
  if (path === undefined) return {};
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, "utf8"));
  } catch {
    return {};
  }
  if (typeof data !== "object" || data === null) return {};
  const raw = data as Record<string, unknown>;
  const meta: RunMeta = {};
  if (typeof raw.baseURL === "string" && isHttpUrl(raw.baseURL)) meta.baseURL = raw.baseURL;
  if (typeof raw.output === "string" && raw.output !== "") meta.output = raw.output;
  if (typeof raw.printed === "number" && Number.isSafeInteger(raw.printed) && raw.printed >= 0) {
    meta.printed = raw.printed;
  }
  const stdout = raw.stdout as Record<string, unknown> | null | undefined;
  if (
    typeof stdout === "object" &&
    stdout !== null &&
    typeof stdout.dev === "string" &&
    /^\d+$/.test(stdout.dev) &&
    typeof stdout.ino === "string" &&
    /^\d+$/.test(stdout.ino) &&
    typeof stdout.start === "number" &&
    Number.isSafeInteger(stdout.start) &&
    stdout.start >= 0
  ) {
    meta.stdout = { dev: stdout.dev, ino: stdout.ino, start: stdout.start };
  }
  return meta;
}

/**
 * Writes a run's notes (replacing them), synchronously: it is done before the create call.
 *
 * @example
 * ```ts
 * writeRunMeta(store.directory, runId, { baseURL: "http://127.0.0.1:4010/v1" });
 * ```
 */
export function writeRunMeta(directory: string, runId: string, meta: RunMeta): void {
  const path = pathOf(directory, runId);
  if (path === undefined) return;
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const fd = openSync(temporary, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify(meta));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}

/**
 * Adds to a run's notes under a lock (two processes may note one run at once: a `baton cancel`
 * and a follower still printing); `printed` only grows, as it is what some reader has seen. A
 * failure to write them is not the run's failure.
 */
export async function updateRunMeta(
  directory: string,
  runId: string,
  change: Partial<RunMeta>,
): Promise<void> {
  const path = pathOf(directory, runId);
  if (path === undefined) return;
  const release = await lock(`${path}.lock`);
  try {
    const current = await readRunMeta(directory, runId);
    const next = { ...current, ...change };
    if (current.printed !== undefined && change.printed !== undefined) {
      next.printed = Math.max(current.printed, change.printed);
    }
    writeRunMeta(directory, runId, next);
  } catch {
    // The notes are a convenience: the run itself is in its envelope.
  } finally {
    release();
  }
}

/** How long a lock may be held before another process takes it as left by a dead one. */
const STALE_LOCK_MS = 5_000;

/** An exclusive lock file (`O_EXCL`); a stale one is taken over. Resolves with its release. */
async function lock(path: string): Promise<() => void> {
  for (let tries = 0; tries < 400; tries++) {
    try {
      closeSync(openSync(path, "wx", 0o600));
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") return () => {};
      const age = Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > STALE_LOCK_MS) rmSync(path, { force: true });
      else await sleep(5);
    }
  }
  // Waited two seconds: go on unlocked rather than never note the run.
  return () => {};
}

/** Removes a run's notes (with the run). */
export async function deleteRunMeta(directory: string, runId: string): Promise<void> {
  const path = pathOf(directory, runId);
  if (path !== undefined) await rm(path, { force: true }).catch(() => {});
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}
