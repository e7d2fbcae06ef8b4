/**
 * Issue 12.1: with `delivery: "after-save"` and a store that stages its saves (both embedded
 * ones), a batch reaches the consumer in the same synchronous step as the commit that covers it:
 * when the consumer runs, the save on disk covers exactly what it has been handed, and nothing
 * queued after the commit (not even a microtask) has run yet. Before, the commit was awaited and
 * the rest of the process ran in between (0.1-0.4 ms per save in the CLI, measured), which is
 * where a `kill -9` lost a batch. The kill itself is in `test/cli/kill-window.test.ts`.
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import {
  canStage,
  FileRunStore,
  MemoryRunStore,
  type PersistedRun,
  type StagedSave,
  startRun,
} from "../../src/index.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

/** Marks each commit, and what ran after it. */
class MarkingStore extends FileRunStore {
  marker: "none" | "committed" | "after the commit" = "none";

  override async save(run: PersistedRun): Promise<void> {
    // Saved through stage() below (an override of save alone would turn staging off).
    const staged = await this.stage(run);
    await staged.commit();
  }

  override async stage(run: PersistedRun): Promise<StagedSave> {
    const staged = await super.stage(run);
    return {
      commit: () => {
        const durable = staged.commit();
        this.marker = "committed";
        queueMicrotask(() => {
          this.marker = "after the commit";
        });
        return durable;
      },
      abort: () => staged.abort(),
    };
  }
}

it.each([1, 2])(
  "at %i ms per token, each batch is handed over in the commit's synchronous step",
  async (tokenDelayMs) => {
    emulator = await startEmulator({ tokenDelayMs, outputTokens: 300 });
    const directory = await mkdtemp(join(tmpdir(), "baton-staged-"));
    const store = new MarkingStore(directory);
    expect(canStage(store)).toBe(true);
    const run = startRun({
      client: new OpenAI({ baseURL: emulator.url, apiKey: "sk-staged" }),
      model: "o3",
      input: "x",
      stream: true,
      store,
      delivery: "after-save",
      checkpoint: { everyEvents: 3, everyMs: 5 },
    });
    let printed = 0;
    let batches = 0;
    const problems: string[] = [];
    run.onDeltaBatch((deltas) => {
      batches++;
      printed += deltas.reduce((n, delta) => n + delta.text.length, 0);
      if (store.marker !== "committed") problems.push(`batch ${batches}: ${store.marker}`);
      // What the file holds right now (a kill here resumes from it) is what was handed over.
      const saved = JSON.parse(readFileSync(join(directory, `${run.id}.run.json`), "utf8"));
      if (saved.snapshot.context.deliveredChars !== printed) {
        problems.push(
          `batch ${batches}: the save covers ${saved.snapshot.context.deliveredChars}, handed ${printed}`,
        );
      }
    });
    const result = await run.result();
    expect(result.outcome).toBe("completed");
    expect(batches).toBeGreaterThan(3);
    expect(problems).toEqual([]);
    expect(printed).toBe(result.text.length);
  },
);

it("a subclass that overrides save() alone is saved through its save()", async () => {
  emulator = await startEmulator({ tokenDelayMs: 0, outputTokens: 20 });
  const seen: string[] = [];
  class Counting extends MemoryRunStore {
    override async save(run: PersistedRun): Promise<void> {
      seen.push(run.state);
      await super.save(run);
    }
  }
  const store = new Counting();
  expect(canStage(store)).toBe(false);
  const run = startRun({
    client: new OpenAI({ baseURL: emulator.url, apiKey: "sk-staged" }),
    model: "o3",
    input: "x",
    stream: true,
    store,
    delivery: "after-save",
  });
  await run.result();
  expect(seen.at(-1)).toBe("done");
  expect(canStage(new MemoryRunStore())).toBe(true);
});
