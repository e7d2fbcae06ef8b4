/**
 * The child process of a fault schedule: starts a run against the emulator with durable
 * delivery (a delta is printed only once a save covers it) in a FileRunStore, appending every
 * save to `saves.jsonl` too. Prints `run <id>`, then one JSON line per delta (each batch in one
 * write), until killed.
 */
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import { FileRunStore, type PersistedRun, type RunOptions, startRun } from "../../src/index.js";

const config = JSON.parse(process.argv[2] ?? "{}") as {
  url: string;
  directory: string;
  stream: boolean;
  input: string;
  options: Partial<RunOptions>;
};
// Synchronous saves, as the README advises for a consumer that prints with "after-save".
const files = new FileRunStore(config.directory, { sync: true });
const store = {
  async save(run: PersistedRun) {
    await appendFile(join(config.directory, "saves.jsonl"), `${JSON.stringify(run)}\n`);
    await files.save(run);
  },
  // Staged, as FileRunStore's own saves are: the rename and the print in one synchronous step.
  async stage(run: PersistedRun) {
    await appendFile(join(config.directory, "saves.jsonl"), `${JSON.stringify(run)}\n`);
    return files.stage(run);
  },
  load: (id: string) => files.load(id),
  list: () => files.list(),
  delete: (id: string) => files.delete(id),
};
const run = startRun({
  client: new OpenAI({ baseURL: config.url, apiKey: "sk-child-test" }),
  model: "o3",
  input: config.input,
  stream: config.stream,
  options: config.options,
  store,
  delivery: "after-save",
  checkpoint: { everyEvents: 3, everyMs: 10 },
});
process.stdout.write(`run ${run.id}\n`);
// One write per batch (everything one save covers), as the README advises.
run.onDeltaBatch((deltas) => {
  process.stdout.write(deltas.map((delta) => `${JSON.stringify(delta)}\n`).join(""));
});
await run.result();
process.stdout.write("done\n");
