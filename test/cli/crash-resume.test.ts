/**
 * A `baton run` killed hard (SIGKILL) or detached (Ctrl-C) is carried on by `baton resume`:
 * what both processes printed equals the final text exactly, and nothing was created twice.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  baton,
  emulatorFor,
  RESPONSE_ID,
  RUN_ID,
  runBaton,
  SECRET_KEY,
  storedText,
  tempDir,
} from "./cli-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

it("survives SIGKILL mid-stream: run's stdout + resume's stdout == the final text, one create", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 300 });
  const store = await tempDir();
  const common = ["--store", store, "--base-url", emulator.url];
  const first = baton(["run", "--stream", ...common, "a long answer"]);
  const runId = (await first.stderrMatches(RUN_ID))[0];
  await first.stdoutAtLeast(200);
  first.child.kill("SIGKILL");
  const killed = await first.finished;
  expect(killed.signal).toBe("SIGKILL");
  const responseId = killed.stderr.match(RESPONSE_ID)?.[0] as string;
  expect(emulator.getResponse(responseId)?.status).not.toBe("completed");

  const second = await runBaton(["resume", runId, ...common]);
  expect(second.code).toBe(0);
  const finalText = storedText(emulator, responseId);
  expect(killed.stdout.length).toBeGreaterThanOrEqual(200);
  expect(second.stdout.length).toBeGreaterThan(0);
  expect(killed.stdout + second.stdout).toBe(finalText);
  expect(emulator.countCreates()).toBe(1);
}, 40_000);

it("Ctrl-C detaches: exit 130, a resume hint, the response goes on; resume finishes it", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 300, apiKey: SECRET_KEY });
  const store = await tempDir();
  const env = { OPENAI_API_KEY: SECRET_KEY, OPENAI_BASE_URL: emulator.url };
  const first = baton(["run", "--stream", "--store", store, "a long answer"], { env });
  const runId = (await first.stderrMatches(RUN_ID))[0];
  await first.stdoutAtLeast(100);
  first.child.kill("SIGINT");
  const detached = await first.finished;
  expect(detached.code).toBe(130);
  expect(detached.stderr).toContain(`baton resume ${runId}`);
  expect(detached.stderr).toContain(`baton cancel ${runId}`);
  expect(detached.stderr).not.toMatch(/^\s+at /m);
  const responseId = detached.stderr.match(RESPONSE_ID)?.[0] as string;
  expect(["queued", "in_progress"]).toContain(emulator.getResponse(responseId)?.status);
  expect(emulator.requests.some((request) => request.kind === "cancel")).toBe(false);

  const second = await runBaton(["resume", runId, "--store", store], { env });
  expect(second.code).toBe(0);
  expect(detached.stdout + second.stdout).toBe(storedText(emulator, responseId));
  expect(emulator.getResponse(responseId)?.status).toBe("completed");
  expect(emulator.countCreates()).toBe(1);
  expect(detached.stderr + second.stderr).not.toContain(SECRET_KEY);
}, 40_000);

it("resumes a detached poll run from its token (the stored run it belongs to)", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 200 });
  const store = await tempDir();
  const common = ["--store", store, "--base-url", emulator.url];
  const first = baton(["run", "--poll-interval", "50", ...common, "poll me"]);
  const token = (await first.stderrMatches(/token (bt1\.[A-Za-z0-9_-]+)/))[1] as string;
  await first.stdoutAtLeast(50);
  first.child.kill("SIGINT");
  const detached = await first.finished;
  expect(detached.code).toBe(130);
  const responseId = detached.stderr.match(RESPONSE_ID)?.[0] as string;

  const second = await runBaton(["resume", token, ...common]);
  expect(second.code).toBe(0);
  expect(detached.stdout + second.stdout).toBe(storedText(emulator, responseId));
  expect(emulator.countCreates()).toBe(1);
}, 40_000);

it("resumes from a stream token alone, in a store that does not know the run", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 200 });
  const first = baton([
    "run",
    "--stream",
    "--store",
    await tempDir(),
    "--base-url",
    emulator.url,
    "x",
  ]);
  const token = (await first.stderrMatches(/token (bt1\.[A-Za-z0-9_-]+)/))[1] as string;
  await first.stdoutAtLeast(30);
  first.child.kill("SIGINT");
  const detached = await first.finished;
  expect(detached.code).toBe(130);
  const responseId = detached.stderr.match(RESPONSE_ID)?.[0] as string;

  // The token was printed before any text: resuming from it alone prints the whole answer.
  const elsewhere = await tempDir();
  const second = await runBaton([
    "resume",
    token,
    "--store",
    elsewhere,
    "--base-url",
    emulator.url,
  ]);
  expect(second.code).toBe(0);
  expect(second.stderr).toMatch(/from the token as run run_/);
  expect(second.stdout).toBe(storedText(emulator, responseId));
  expect(emulator.countCreates()).toBe(1);
}, 40_000);

it("follows again a run that gave up locally, printing only what was not printed", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 10, outputTokens: 200 });
  const store = await tempDir();
  const common = ["--store", store, "--base-url", emulator.url];
  const first = baton(["run", "--poll-interval", "30", ...common, "x"]);
  const runId = (await first.stderrMatches(RUN_ID))[0];
  await first.stdoutAtLeast(40);
  first.child.kill("SIGINT");
  const detached = await first.finished;
  expect(detached.code).toBe(130);
  const responseId = detached.stderr.match(RESPONSE_ID)?.[0] as string;

  // As if this process had given up (server unreachable for too long): a finished, gave-up save.
  const path = join(store, `${runId}.run.json`);
  const saved = JSON.parse(await readFile(path, "utf8"));
  saved.state = "done";
  saved.token = null;
  saved.snapshot.status = "done";
  saved.snapshot.value = "done";
  saved.snapshot.context.result = {
    outcome: "gave-up",
    runId,
    responseId,
    text: "",
    usage: null,
    error: null,
    incompleteReason: null,
    reason: "retries-exhausted",
    failure: { kind: "unreachable", message: "connect ECONNREFUSED" },
  };
  await writeFile(path, JSON.stringify(saved));

  const second = await runBaton(["resume", runId, ...common]);
  expect(second.code).toBe(0);
  expect(second.stderr).toMatch(/it had given up/);
  expect(detached.stdout + second.stdout).toBe(storedText(emulator, responseId));
  expect(emulator.countCreates()).toBe(1);
}, 40_000);
