/**
 * The embedded default `RunStore`: one JSON file per run in a folder.
 *
 * Writes are atomic and crash-safe: the new content goes to a temporary file in the same
 * folder, is flushed to disk, then renamed over the old file, and the folder is flushed too (so
 * the rename survives a power loss). A crash mid-write leaves either the old save or the new
 * one, never half of one. Files are created 0600 and folders 0700: a save can hold a prompt or
 * a server's failure message.
 *
 * A save is staged ({@link FileRunStore.stage}): the slow part asynchronously, then a
 * synchronous rename, in the same synchronous step in which `delivery: "after-save"` hands the
 * text it covers to the consumer; a `kill -9` can fall between the two for microseconds at most.
 *
 * `{ sync: true }` makes the writes synchronous too (the event loop blocked for each save,
 * about 0.4 ms on an idle disk, more under load). The staged commit no longer needs it.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { InvalidSnapshotError } from "../errors.js";
import { isValidRunId } from "../input-validation.js";
import { type PersistedRun, readEnvelope } from "../persistence/envelope.js";
import {
  loadAll,
  type RunStoreEntry,
  type RunSummary,
  type StagedSave,
  type StagingRunStore,
  summarize,
} from "../persistence/run-store.js";

const SUFFIX = ".run.json";
/** Saves are the owner's alone: files 0600, folders 0700 (before the umask). */
const FILE_MODE = 0o600;
const DIRECTORY_MODE = 0o700;

/**
 * @example
 * ```ts
 * const store = new FileRunStore(".baton/runs");
 * const saved = await store.load("run_abc");
 * ```
 */
export class FileRunStore implements StagingRunStore {
  readonly #sync: boolean;

  constructor(
    readonly directory: string,
    options: { sync?: boolean } = {},
  ) {
    this.#sync = options.sync ?? false;
  }

  #path(runId: string): string {
    // The one rule of run ids (no '/', no leading '.', at most 128 characters): no path escapes.
    if (!isValidRunId(runId)) {
      throw new InvalidSnapshotError("corrupt", `'${runId}' is not a valid run id`, "runId");
    }
    return join(this.directory, `${runId}${SUFFIX}`);
  }

  async save(run: PersistedRun): Promise<void> {
    const staged = await this.stage(run);
    try {
      await staged.commit();
    } catch (err) {
      staged.abort();
      throw err;
    }
  }

  /**
   * The first half of a save: the new content written to a temporary file and fsynced. The
   * returned `commit()` renames it over the run's file (synchronously: the moment the save takes
   * effect, which the checkpointer makes the moment a consumer is handed the text it covers),
   * then fsyncs the folder, so that the rename itself survives a power loss.
   *
   * @example
   * ```ts
   * const staged = await store.stage(envelope);
   * staged.commit(); // now `load` returns this save
   * ```
   */
  async stage(run: PersistedRun): Promise<StagedSave> {
    const path = this.#path(run.runId);
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    const text = JSON.stringify(run);
    try {
      if (this.#sync) {
        mkdirSync(this.directory, { recursive: true, mode: DIRECTORY_MODE });
        // The mode covers the save from its first byte (the rename keeps it): it may hold
        // failure messages, prompts, response ids, which are nobody else's business.
        const fd = openSync(temporary, "w", FILE_MODE);
        try {
          writeSync(fd, text);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } else {
        await mkdir(this.directory, { recursive: true, mode: DIRECTORY_MODE });
        const file = await open(temporary, "w", FILE_MODE);
        try {
          await file.writeFile(text);
          await file.sync();
        } finally {
          await file.close();
        }
      }
    } catch (err) {
      rmSync(temporary, { force: true });
      throw err;
    }
    // The save being replaced, held open until after the commit: a rename that drops a file's
    // last link frees its blocks inside the rename (0.1-1.5 ms on ext4 under load, measured,
    // and up to 25 ms), while a kill -9 that arrives during a rename lets it finish, then kills
    // the process before it prints. Held open, the rename only moves a name (about 10 µs) and
    // the blocks are freed at the close, after the consumer was handed its text.
    const previous = await this.#holdPrevious(path);
    let done = false;
    return {
      commit: () => {
        if (done) return undefined;
        done = true;
        try {
          renameSync(temporary, path);
        } catch (err) {
          rmSync(temporary, { force: true });
          void previous().catch(() => {});
          throw err;
        }
        // After the caller's synchronous step (the consumer's delivery): the close frees the
        // old save, the folder's fsync takes milliseconds, and a kill during either loses
        // nothing (the new save is in effect).
        return Promise.resolve().then(async () => {
          await previous();
          await this.#syncDirectory();
        });
      },
      abort: () => {
        if (done) return;
        done = true;
        rmSync(temporary, { force: true });
        void previous().catch(() => {});
      },
    };
  }

  /** Opens the run's current file, if any; the returned function closes it. */
  async #holdPrevious(path: string): Promise<() => Promise<void>> {
    // Windows cannot rename over an open file.
    if (process.platform === "win32") return async () => {};
    try {
      if (this.#sync) {
        const fd = openSync(path, "r");
        return async () => closeSync(fd);
      }
      const file = await open(path, "r");
      return () => file.close();
    } catch {
      // No save yet (or unreadable): nothing to hold, the rename frees nothing.
      return async () => {};
    }
  }

  /**
   * fsyncs the folder: a rename is in the folder's entry, which a power loss can lose even
   * after the file's own fsync. Windows cannot open a folder for this; there it is skipped.
   */
  async #syncDirectory(): Promise<void> {
    if (process.platform === "win32") return;
    if (this.#sync) {
      const fd = openSync(this.directory, "r");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return;
    }
    const directory = await open(this.directory, "r");
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }

  async load(runId: string): Promise<PersistedRun | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(runId), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new InvalidSnapshotError("corrupt", `the saved run '${runId}' is not valid JSON`);
    }
    // The file's name is the run's key: a copy under another name is not that run.
    return readEnvelope(data, runId);
  }

  /** Readable runs only; {@link FileRunStore.entries} lists the unreadable ones too. */
  async list(): Promise<RunSummary[]> {
    const entries = await this.entries();
    return entries.flatMap((entry) => (entry.run ? [summarize(entry.run)] : []));
  }

  async entries(): Promise<RunStoreEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const runIds = names
      .filter((name) => name.endsWith(SUFFIX))
      .map((name) => name.slice(0, -SUFFIX.length));
    return loadAll(runIds, (runId) => this.load(runId));
  }

  async delete(runId: string): Promise<boolean> {
    const path = this.#path(runId);
    try {
      await rm(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }
}
