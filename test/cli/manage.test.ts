/**
 * `baton status`, `baton cancel` and `baton runs` on a run detached by Ctrl-C and still going
 * on in the emulator.
 */
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  baton,
  emulatorFor,
  lines,
  RESPONSE_ID,
  RUN_ID,
  runBaton,
  storedText,
  TOKEN,
  tempDir,
} from "./cli-harness.js";

let emulator: Emulator;
afterEach(async () => {
  await emulator?.close();
});

it("status, runs and cancel of a detached run; cancel is idempotent", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 25, outputTokens: 2_000 });
  const store = await tempDir();
  const env = { OPENAI_BASE_URL: emulator.url, BATON_STORE: store };
  const first = baton(["run", "--stream", "a very long answer"], { env });
  const runId = (await first.stderrMatches(RUN_ID))[0];
  const token = (await first.stderrMatches(/token (bt1\.[A-Za-z0-9_-]+)/))[1] as string;
  await first.stdoutAtLeast(40);
  first.child.kill("SIGINT");
  const detached = await first.finished;
  expect(detached.code).toBe(130);
  const responseId = detached.stderr.match(RESPONSE_ID)?.[0] as string;

  // status by run id, status by token (as JSON, from a store that does not know it), runs.
  const [status, json, listed, byResponseId] = await Promise.all([
    runBaton(["status", runId], { env }),
    runBaton(["status", "--json", token], {
      env: { OPENAI_BASE_URL: emulator.url, BATON_STORE: await tempDir() },
    }),
    runBaton(["runs"], { env }),
    runBaton(["status", responseId], { env }),
  ]);
  expect(byResponseId.code).toBe(0);
  expect(byResponseId.stdout).toMatch(new RegExp(`^run\\s+${runId}$`, "m"));
  expect(status.code).toBe(0);
  expect(status.stderr).toBe("");
  expect(status.stdout).toMatch(new RegExp(`^run\\s+${runId}$`, "m"));
  expect(status.stdout).toMatch(/^state\s+streaming \(saved \d+s ago\)$/m);
  expect(status.stdout).toMatch(new RegExp(`^response\\s+${responseId}$`, "m"));
  expect(status.stdout).toMatch(/^status\s+in_progress$/m);
  expect(status.stdout).toMatch(/^chars\s+\d+$/m);
  expect(status.stdout).toMatch(/^age\s+\d+s$/m);
  expect(status.stdout).toMatch(/^token\s+bt1\./m);

  expect(json.code).toBe(0);
  const report = JSON.parse(json.stdout);
  expect(report).toMatchObject({ runId: null, responseId, status: "in_progress", mode: "stream" });
  expect(report.chars).toBeGreaterThan(0);

  expect(listed.code).toBe(0);
  const [header, row] = lines(listed.stdout);
  expect(header?.split(/\s+/)).toEqual(["RUN", "ID", "STATE", "STATUS", "MODE", "AGE", "RESPONSE"]);
  expect(row?.split(/\s+/)).toEqual([
    runId,
    "streaming",
    "in_progress",
    "stream",
    expect.stringMatching(/^\d+s$/),
    responseId,
  ]);

  // cancel: the emulator's response is cancelled; the stored run is finished too.
  const cancelled = await runBaton(["cancel", runId], { env });
  expect(cancelled.code).toBe(0);
  expect(cancelled.stdout).toMatch(/^status\s+cancelled$/m);
  expect(emulator.getResponse(responseId)?.status).toBe("cancelled");
  const after = await runBaton(["runs", "--json"], { env });
  expect(JSON.parse(after.stdout)).toMatchObject([{ runId, state: "done", status: "cancelled" }]);

  // Idempotent: again by run id and by token. A resume of the cancelled run prints what was
  // made between the detach and the cancel (never printed), then exits 4.
  const [again, byToken, resumed] = await Promise.all([
    runBaton(["cancel", runId], { env }),
    runBaton(["cancel", token], { env }),
    runBaton(["resume", runId], { env }),
  ]);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/^status\s+cancelled$/m);
  expect(byToken.code).toBe(0);
  expect(byToken.stdout).toMatch(/^status\s+cancelled$/m);
  expect(resumed.code).toBe(4);
  expect(detached.stdout + resumed.stdout).toBe(storedText(emulator, responseId));
  expect(lines(resumed.stderr)).toHaveLength(1);
  expect(emulator.countCreates()).toBe(1);
}, 120_000);

it("a run cancelled from elsewhere ends with exit code 4", async () => {
  emulator = await emulatorFor({ tokenDelayMs: 25, outputTokens: 2_000 });
  const store = await tempDir();
  const env = { OPENAI_BASE_URL: emulator.url, BATON_STORE: store };
  const first = baton(["run", "--poll-interval", "50", "poll a long answer"], { env });
  const token = (await first.stderrMatches(TOKEN))[0];
  await first.stdoutAtLeast(20);
  const cancel = await runBaton(["cancel", token], {
    env: { OPENAI_BASE_URL: emulator.url, BATON_STORE: await tempDir() },
  });
  expect(cancel.code).toBe(0);
  const out = await first.finished;
  expect(out.code).toBe(4);
  expect(out.stderr).toMatch(/cancelled/);
}, 120_000);

it("runs on an empty store says so on stderr, exit 0", async () => {
  const out = await runBaton(["runs", "--store", await tempDir()]);
  expect(out.code).toBe(0);
  expect(out.stdout).toBe("");
  expect(out.stderr).toMatch(/^baton: no runs in /);
});
