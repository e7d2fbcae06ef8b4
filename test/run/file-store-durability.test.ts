/**
 * Issue 13.2 (file part) and 13.15: FileRunStore creates its files 0600 and its folders 0700
 * (a save can hold a prompt or a server's failure message), and fsyncs the folder after the
 * rename (a rename lives in the folder's entry: without it, a power loss can undo a save the
 * file's own fsync made durable). Both the asynchronous and the `{ sync: true }` store, through
 * `save()` and through the staged commit the checkpointer uses.
 */
import fs, { statSync } from "node:fs";
import fsp, { mkdtemp, readdir, readFile } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { FileRunStore, type PersistedRun, startRun } from "../../src/index.js";

const posix = process.platform !== "win32";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/** A real run's save, to write in the tests below. */
async function aSave(): Promise<PersistedRun> {
  emulator = await startEmulator({ tokenDelayMs: 0, outputTokens: 5 });
  const run = startRun({
    client: new OpenAI({ baseURL: emulator.url, apiKey: "sk-modes" }),
    model: "o3",
    input: "a secret prompt",
  });
  await run.result();
  return run.toPersisted();
}

/** Records the paths fsynced while `body` runs (node's own fs, patched for the duration). */
async function fsyncedPaths(body: () => Promise<void>): Promise<string[]> {
  const paths = new Map<number, string>();
  const synced: string[] = [];
  const original = {
    openSync: fs.openSync,
    fsyncSync: fs.fsyncSync,
    open: fsp.open,
  };
  fs.openSync = ((path: fs.PathLike, ...rest: unknown[]) => {
    const fd = (original.openSync as (...args: unknown[]) => number)(path, ...rest);
    paths.set(fd, String(path));
    return fd;
  }) as typeof fs.openSync;
  fs.fsyncSync = ((fd: number) => {
    synced.push(paths.get(fd) ?? `fd ${fd}`);
    original.fsyncSync(fd);
  }) as typeof fs.fsyncSync;
  fsp.open = (async (path: fs.PathLike, ...rest: unknown[]) => {
    const handle = await (original.open as (...args: unknown[]) => Promise<fsp.FileHandle>)(
      path,
      ...rest,
    );
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      synced.push(String(path));
      await sync();
    };
    return handle;
  }) as typeof fsp.open;
  syncBuiltinESMExports();
  try {
    await body();
  } finally {
    Object.assign(fs, { openSync: original.openSync, fsyncSync: original.fsyncSync });
    fsp.open = original.open;
    syncBuiltinESMExports();
  }
  return synced;
}

describe.each([false, true])("FileRunStore, sync: %s", (sync) => {
  it.runIf(posix)("creates folders 0700 and files 0600, replaced saves included", async () => {
    const root = await mkdtemp(join(tmpdir(), "baton-modes-"));
    const directory = join(root, "a", "b", "runs");
    const store = new FileRunStore(directory, { sync });
    const save = await aSave();
    // Whatever the umask lets through (0022 is usual): the modes asked for are owner-only.
    const umask = process.umask();
    await store.save(save);
    await store.save({ ...save, savedAt: save.savedAt + 1 });
    for (const folder of [join(root, "a"), join(root, "a", "b"), directory]) {
      expect(modeOf(folder) & ~0o700, folder).toBe(0);
      expect(modeOf(folder)).toBe(0o700 & ~umask);
    }
    const file = join(directory, `${save.runId}.run.json`);
    expect(modeOf(file)).toBe(0o600 & ~umask);
    // No temporary file left behind, and the save reads back.
    expect(await readdir(directory)).toEqual([`${save.runId}.run.json`]);
    expect(JSON.parse(await readFile(file, "utf8")).savedAt).toBe(save.savedAt + 1);
  });

  it.runIf(posix)("a run saved by the checkpointer (staged commits) is 0600 too", async () => {
    const directory = join(await mkdtemp(join(tmpdir(), "baton-modes-")), "runs");
    emulator = await startEmulator({ tokenDelayMs: 1, outputTokens: 50 });
    const run = startRun({
      client: new OpenAI({ baseURL: emulator.url, apiKey: "sk-modes" }),
      model: "o3",
      input: "x",
      stream: true,
      store: new FileRunStore(directory, { sync }),
      delivery: "after-save",
    });
    await run.result();
    expect(modeOf(directory) & 0o077).toBe(0);
    expect(modeOf(join(directory, `${run.id}.run.json`)) & 0o077).toBe(0);
  });

  it.runIf(posix)("fsyncs the file, then the folder, on every save", async () => {
    const directory = join(await mkdtemp(join(tmpdir(), "baton-fsync-")), "runs");
    const store = new FileRunStore(directory, { sync });
    const save = await aSave();
    const synced = await fsyncedPaths(async () => {
      await store.save(save);
      const staged = await store.stage({ ...save, savedAt: save.savedAt + 1 });
      await staged.commit();
    });
    // Per save: the temporary file, then (after the rename) the folder.
    expect(synced).toHaveLength(4);
    expect(synced[0]).toMatch(/\.tmp$/);
    expect(synced[1]).toBe(directory);
    expect(synced[2]).toMatch(/\.tmp$/);
    expect(synced[3]).toBe(directory);
  });
});

it("an aborted stage leaves the old save and no temporary file", async () => {
  const directory = join(await mkdtemp(join(tmpdir(), "baton-abort-")), "runs");
  const store = new FileRunStore(directory);
  const save = await aSave();
  await store.save(save);
  const staged = await store.stage({ ...save, savedAt: save.savedAt + 1 });
  staged.abort();
  expect(staged.commit()).toBeUndefined();
  expect(await readdir(directory)).toEqual([`${save.runId}.run.json`]);
  expect((await store.load(save.runId))?.savedAt).toBe(save.savedAt);
});

/** Whether this process has a file descriptor open on `path` (Linux: /proc/self/fd). */
function holdsOpen(path: string): boolean {
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === path) return true;
    } catch {}
  }
  return false;
}

describe.each([false, true])("the commit's rename, sync: %s", (sync) => {
  it.runIf(fs.existsSync("/proc/self/fd"))(
    "happens with the replaced save held open (the rename moves a name; the close frees it)",
    async () => {
      // Was: the rename dropped the old file's last link and freed its blocks inside the system
      // call (0.2-1.5 ms, up to 24 ms, measured), the window in which a kill -9 let the save
      // take effect but not the print of its batch.
      const directory = join(await mkdtemp(join(tmpdir(), "baton-hold-")), "runs");
      const store = new FileRunStore(directory, { sync });
      const save = await aSave();
      const path = join(directory, `${save.runId}.run.json`);
      const held: boolean[] = [];
      const original = fs.renameSync;
      fs.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
        held.push(holdsOpen(String(to)));
        original(from, to);
      };
      syncBuiltinESMExports();
      try {
        await store.save(save); // the first: nothing to replace
        await store.save({ ...save, savedAt: save.savedAt + 1 });
        const staged = await store.stage({ ...save, savedAt: save.savedAt + 2 });
        await staged.commit();
      } finally {
        fs.renameSync = original;
        syncBuiltinESMExports();
      }
      expect(held).toEqual([false, true, true]);
      // Closed once the commit settled.
      expect(holdsOpen(path)).toBe(false);
      expect((await store.load(save.runId))?.savedAt).toBe(save.savedAt + 2);
    },
  );
});
