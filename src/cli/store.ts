/**
 * The CLI's store: a directory (`--store DIR`, else `BATON_STORE`, else `.baton/runs`), opened
 * as a {@link RunStore}. The commands work against the `RunStore` contract; the directory is
 * kept beside it for what the CLI keeps there itself (`<run-id>.cli.json`, run-meta.ts) and for
 * the messages that name it.
 */
import { resolve } from "node:path";
import type { RunStore } from "../persistence/run-store.js";
import { FileRunStore } from "../stores/file-run-store.js";
import { type CliIo, nonEmpty } from "./io.js";

/** A store the CLI opened, and the directory it lives in. */
export interface OpenedStore {
  store: RunStore;
  /** Absolute path of the store's directory. */
  directory: string;
}

/**
 * The store directory: `--store`, else `BATON_STORE`, else `.baton/runs` in the cwd.
 *
 * @example
 * ```ts
 * storeDirectory({ store: "runs" }, io); // "/home/me/project/runs"
 * ```
 */
export function storeDirectory(flags: { store?: string | undefined }, io: CliIo): string {
  const raw = flags.store ?? nonEmpty(io.env.BATON_STORE) ?? ".baton/runs";
  return resolve(io.cwd, raw);
}

/**
 * Opens the store the flags name (nothing is read or created on disk until it is used).
 *
 * @example
 * ```ts
 * const { store, directory } = openStore(values, io);
 * const runs = await store.list();
 * ```
 */
export function openStore(flags: { store?: string | undefined }, io: CliIo): OpenedStore {
  const directory = storeDirectory(flags, io);
  // Synchronous writes, as the CLI has always had them (the staged commit no longer needs them;
  // dropping them is a change of behaviour, left for its own issue).
  return { store: new FileRunStore(directory, { sync: true }), directory };
}
