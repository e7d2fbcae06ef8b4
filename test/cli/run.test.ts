/**
 * `baton run` as a real process against the emulator: only the answer on stdout (exactly the
 * response's output_text), run id and token on stderr, the key nowhere, one create.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  emulatorFor,
  RESPONSE_ID,
  RUN_ID,
  runBaton,
  SECRET_KEY,
  storedText,
  TOKEN,
  tempDir,
} from "./cli-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

it("polls by default: the answer alone on stdout, token and run id on stderr, default store in the cwd", async () => {
  emulator = await emulatorFor({ apiKey: SECRET_KEY });
  const cwd = await tempDir();
  const out = await runBaton(
    ["run", "--poll-interval", "20", "--base-url", emulator.url, "Explain relativity."],
    { cwd, env: { OPENAI_API_KEY: SECRET_KEY } },
  );
  expect(out.stderr).not.toMatch(/^\s+at /m);
  expect(out.code).toBe(0);
  const runId = out.stderr.match(RUN_ID)?.[0];
  const responseId = out.stderr.match(RESPONSE_ID)?.[0] as string;
  expect(runId).toBeDefined();
  expect(out.stderr).toMatch(TOKEN);
  expect(out.stderr).toContain("poll");
  expect(out.stdout).toBe(storedText(emulator, responseId));
  expect(out.stdout.length).toBeGreaterThan(50);
  expect(emulator.countCreates()).toBe(1);

  // The default store is .baton/runs in the cwd; it holds the run, finished, and never the key.
  // Beside it, the CLI's notes of the run (its server, never the key; what its reader has seen).
  const files = (await readdir(join(cwd, ".baton/runs"))).sort();
  expect(files).toEqual([`${runId}.cli.json`, `${runId}.run.json`]);
  const saved = await readFile(join(cwd, ".baton/runs", `${runId}.run.json`), "utf8");
  const notes = await readFile(join(cwd, ".baton/runs", `${runId}.cli.json`), "utf8");
  expect(JSON.parse(saved).state).toBe("done");
  expect(JSON.parse(notes)).toEqual({ baseURL: emulator.url, printed: out.stdout.length });
  expect(saved + notes + out.stdout + out.stderr).not.toContain(SECRET_KEY);
});

it("streams with --stream (store from BATON_STORE, model from OPENAI_MODEL)", async () => {
  emulator = await emulatorFor({ outputTokens: 60 });
  const store = await tempDir();
  const out = await runBaton(["run", "--stream", "Tell me a story."], {
    env: { OPENAI_BASE_URL: emulator.url, BATON_STORE: store, OPENAI_MODEL: "o4-mini" },
  });
  expect(out.code).toBe(0);
  const responseId = out.stderr.match(RESPONSE_ID)?.[0] as string;
  expect(out.stderr).toContain("stream");
  expect(out.stderr).toMatch(TOKEN);
  expect(out.stdout).toBe(storedText(emulator, responseId));
  expect(emulator.getResponse(responseId)?.model).toBe("o4-mini");
  expect(emulator.countCreates()).toBe(1);
  const runId = out.stderr.match(RUN_ID)?.[0];
  expect((await readdir(store)).sort()).toEqual([`${runId}.cli.json`, `${runId}.run.json`]);
});

it("--emulator runs against an emulator in the process, with no key", async () => {
  const store = await tempDir();
  const out = await runBaton(["run", "--emulator", "--stream", "--store", store, "hello"]);
  expect(out.code).toBe(0);
  expect(out.stdout.length).toBeGreaterThan(20);
  expect(out.stderr).toMatch(/completed/);
});
