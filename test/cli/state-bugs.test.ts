/**
 * The CLI's state bugs of issue 12 item 4, each against real `baton` processes and the emulator:
 * the run's server is saved and used by default (another server's 404 is no verdict), a finished
 * run prints what its reader has not seen, a 4xx create or an unknown token leaves nothing
 * behind, SIGTERM during a create that never answers ends at once, and the small ones.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  baton,
  closedPort,
  emulatorFor,
  lines,
  RESPONSE_ID,
  RUN_ID,
  runBaton,
  storedText,
  tempDir,
} from "./cli-harness.js";

const emulators: Emulator[] = [];
async function emulator(options: Parameters<typeof emulatorFor>[0] = {}): Promise<Emulator> {
  const started = await emulatorFor(options);
  emulators.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.close()));
});

async function storedRuns(store: string): Promise<unknown[]> {
  const out = await runBaton(["runs", "--json", "--store", store]);
  return out.stdout.trim() === "" ? [] : (JSON.parse(out.stdout) as unknown[]);
}

/** Starts `baton run --stream` and kills it with SIGKILL once it printed `chars` characters. */
async function killedMidText(home: Emulator, store: string, chars: number, poll = false) {
  const mode = poll ? ["--poll-interval", "30"] : ["--stream"];
  const first = baton(["run", ...mode, "--store", store, "--base-url", home.url, "long"]);
  const runId = (await first.stderrMatches(RUN_ID))[0];
  await first.stdoutAtLeast(chars);
  first.child.kill("SIGKILL");
  const killed = await first.finished;
  const responseId = killed.stderr.match(RESPONSE_ID)?.[0] as string;
  return { runId, responseId, printed: killed.stdout };
}

it("the run's server is saved: another server's 404 is no verdict, and resume goes home by default", async () => {
  const home = await emulator({ tokenDelayMs: 10, outputTokens: 300 });
  const other = await emulator();
  const store = await tempDir();
  const { runId, responseId, printed } = await killedMidText(home, store, 100);

  const wrong = await runBaton(["resume", runId, "--store", store, "--base-url", other.url]);
  expect(wrong.code).toBe(1);
  expect(wrong.stdout).toBe("");
  expect(wrong.stderr).toContain(`created on ${home.url}`);
  // The store still has the run as it was: not finished, resumable.
  expect(await storedRuns(store)).toMatchObject([
    { runId, state: expect.not.stringMatching(/^done$/) },
  ]);

  // No --base-url, no OPENAI_BASE_URL: status and resume ask the server the run was created on.
  const status = await runBaton(["status", runId, "--store", store]);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^status\s+(in_progress|completed)$/m);
  const resumed = await runBaton(["resume", runId, "--store", store]);
  expect(resumed.code).toBe(0);
  expect(printed + resumed.stdout).toBe(storedText(home, responseId));
  expect(home.countCreates()).toBe(1);
}, 60_000);

it("kill, cancel from another process, resume: the text made in between is printed, once", async () => {
  const home = await emulator({ tokenDelayMs: 10, outputTokens: 2_000 });
  const store = await tempDir();
  const common = ["--store", store, "--base-url", home.url];
  const { runId, responseId, printed } = await killedMidText(home, store, 60);
  const cancelled = await runBaton(["cancel", runId, ...common]);
  expect(cancelled.code).toBe(0);
  // The report says where the run is now: finished, cancelled (not the state it was saved in).
  expect(cancelled.stdout).toMatch(/^state\s+done: cancelled/m);
  expect(cancelled.stdout).toMatch(/^status\s+cancelled$/m);
  const finalText = storedText(home, responseId);
  expect(finalText.length).toBeGreaterThan(printed.length);

  const resumed = await runBaton(["resume", runId, ...common]);
  expect(resumed.code).toBe(4);
  expect(printed + resumed.stdout).toBe(finalText);
  // Once: a second resume has nothing left to print.
  const again = await runBaton(["resume", runId, ...common]);
  expect(again.code).toBe(4);
  expect(again.stdout).toBe("");
}, 60_000);

it("cancel while a follower prints: the report says done, the follower prints all, a resume nothing", async () => {
  const home = await emulator({ tokenDelayMs: 10, outputTokens: 2_000 });
  const store = await tempDir();
  const common = ["--store", store, "--base-url", home.url];
  const follower = baton(["run", "--poll-interval", "30", ...common, "long"]);
  const runId = (await follower.stderrMatches(RUN_ID))[0];
  await follower.stdoutAtLeast(40);
  const cancelled = await runBaton(["cancel", runId, ...common]);
  expect(cancelled.code).toBe(0);
  expect(cancelled.stdout).toMatch(/^state\s+done: cancelled/m);
  expect(cancelled.stdout).toMatch(/^status\s+cancelled$/m);
  const followed = await follower.finished;
  expect(followed.code).toBe(4);
  const responseId = followed.stderr.match(RESPONSE_ID)?.[0] as string;
  expect(followed.stdout).toBe(storedText(home, responseId));
  const resumed = await runBaton(["resume", runId, ...common]);
  expect(resumed.code).toBe(4);
  expect(resumed.stdout).toBe("");
}, 60_000);

it("a resumed answer's summary counts the whole answer, not this process's part", async () => {
  const home = await emulator({ tokenDelayMs: 10, outputTokens: 300 });
  const store = await tempDir();
  const { runId, responseId } = await killedMidText(home, store, 100);
  const resumed = await runBaton(["resume", runId, "--store", store, "--base-url", home.url]);
  expect(resumed.code).toBe(0);
  const total = storedText(home, responseId).length;
  expect(resumed.stderr).toContain(`completed: ${total} chars`);
}, 60_000);

it("a 4xx on create says what is wrong and leaves no run; so does an unknown token", async () => {
  const server = await emulator();
  const store = await tempDir();
  const withoutV1 = server.url.replace(/\/v1$/, "");
  const [noV1, unknownToken] = await Promise.all([
    runBaton(["run", "--stream", "--store", store, "--base-url", withoutV1, "hello"]),
    runBaton([
      "resume",
      `bt1.${Buffer.from(JSON.stringify({ responseId: "resp_0123abcd", sequenceNumber: 3 })).toString("base64url")}`,
      "--store",
      store,
      "--base-url",
      server.url,
    ]),
  ]);
  expect(noV1.code).toBe(1);
  expect(lines(noV1.stderr)).toHaveLength(1);
  expect(noV1.stderr).toContain(`POST ${withoutV1}/responses answered 404`);
  expect(noV1.stderr).toMatch(/nothing was created/);
  expect(noV1.stderr).toMatch(/\/v1/);
  expect(noV1.stderr).not.toMatch(/may or may not exist|pay twice/);
  expect(unknownToken.code).toBe(1);
  expect(unknownToken.stderr).toMatch(/does not know response resp_0123abcd/);
  expect(await storedRuns(store)).toEqual([]);
  expect(await readdir(store).catch(() => [])).toEqual([]);
}, 60_000);

it("a run saved as given up on a create refused with a 4xx says nothing was created", async () => {
  const server = await emulator();
  const store = await tempDir();
  const done = await runBaton(["run", "--store", store, "--base-url", server.url, "hello"]);
  expect(done.code).toBe(0);
  const runId = done.stderr.match(RUN_ID)?.[0] as string;
  // As an older baton left such a run: done, gave up, the create answered 404.
  const path = join(store, `${runId}.run.json`);
  const saved = JSON.parse(await readFile(path, "utf8"));
  saved.snapshot.context.result = {
    ...saved.snapshot.context.result,
    outcome: "gave-up",
    reason: "create-unknown",
    failure: { kind: "not-found", status: 404, message: "Not found" },
  };
  await writeFile(path, JSON.stringify(saved));
  const out = await runBaton(["resume", runId, "--store", store]);
  expect(out.code).toBe(1);
  expect(out.stderr).toMatch(/refused the create call \(404\).*nothing was created/);
  expect(out.stderr).not.toMatch(/may or may not exist|pay twice/);
}, 60_000);

it("SIGTERM during a create that never answers: exits at once, says there is nothing to resume", async () => {
  const server = await emulator({
    faults: [{ on: ["create", "create-stream"], stall: { afterEvents: 0 } }],
  });
  const store = await tempDir();
  const child = baton(["run", "--store", store, "--base-url", server.url, "hello"]);
  // Once the create has reached the server (it will never answer).
  while (!server.requests.some((request) => request.kind === "create")) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.child.kill("SIGTERM");
  // The old behaviour waited 30 s for the create: the bound here is generous but well under it.
  const out = await Promise.race([
    child.finished,
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 12_000)),
  ]);
  if (out === null) child.child.kill("SIGKILL");
  expect(out).not.toBeNull();
  expect(out?.code).toBe(143);
  expect(out?.stderr).toMatch(/create call had not answered/);
  expect(out?.stderr).toMatch(/nothing to resume/);
  expect(out?.stderr).not.toMatch(/baton resume/);
  expect(await storedRuns(store)).toEqual([]);
}, 60_000);

it("a failed resume leaves no stale error: the next resume against a server that answers goes on", async () => {
  const home = await emulator({ tokenDelayMs: 10, outputTokens: 300 });
  const store = await tempDir();
  // Polled: a poll's failures are counted in the saved run (`attempts`, `lastFailure`).
  const { runId, responseId, printed } = await killedMidText(home, store, 100, true);
  const closed = `http://127.0.0.1:${await closedPort()}/v1`;
  const failed = await runBaton(["resume", runId, "--store", store, "--base-url", closed]);
  expect(failed.code).toBe(3);
  expect(failed.stderr).toMatch(/cannot reach/);
  const resumed = await runBaton(["resume", runId, "--store", store, "--base-url", home.url]);
  expect(resumed.stderr).not.toMatch(/cannot reach/);
  expect(resumed.code).toBe(0);
  expect(printed + resumed.stdout).toBe(storedText(home, responseId));
}, 60_000);

it("--help: each option block's descriptions start in one column", async () => {
  for (const command of ["run", "resume", "status", "cancel", "runs"]) {
    const out = await runBaton([command, "--help"]);
    expect(out.code).toBe(0);
    const block = out.stdout.split("Options:\n")[1]?.split("\n\n")[0] ?? "";
    const columns = new Set(
      lines(block)
        .filter((line) => line.startsWith("  -"))
        .map((line) => /^ {2}\S.*?\s{2,}(?=\S)/.exec(line)?.[0].length),
    );
    expect({ command, columns: [...columns] }).toEqual({
      command,
      columns: [expect.any(Number)],
    });
  }
}, 60_000);

it("an unknown or incomplete flag: baton's own message, quotes balanced", async () => {
  const [unknown, missing] = await Promise.all([
    runBaton(["run", "--bogus", "x"]),
    runBaton(["resume", "--store"]),
  ]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toBe("baton: unknown option --bogus (see 'baton run --help')\n");
  expect(missing.code).toBe(2);
  expect(missing.stderr).toBe("baton: option --store needs a value (see 'baton resume --help')\n");
});

it("on a terminal, the answer ends with a newline", async () => {
  const store = await tempDir();
  const home = await emulator({ tokenDelayMs: 1, outputTokens: 40 });
  // `script` gives the process a terminal; both stdout and stderr go to it.
  const out = await runScript([
    process.execPath,
    "--import",
    "tsx",
    join(import.meta.dirname, "../../src/cli/main.ts"),
    "run",
    "--store",
    store,
    "--base-url",
    home.url,
    "hello",
  ]);
  // What each line shows: the text after its last "clear line" (the live progress line is
  // drawn, then cleared before the answer starts).
  const text = lines(out.replace(/\r/g, ""))
    .map((line) => line.split("\x1b[2K").at(-1) ?? "")
    .filter((line) => line !== "");
  const completed = text.findIndex((line) => line.startsWith("baton: completed"));
  expect(completed).toBeGreaterThan(0);
  // The line before the summary is the answer's last line, alone (not glued to the summary).
  expect(text[completed - 1]?.startsWith("baton:")).toBe(false);
}, 60_000);

async function runScript(argv: readonly string[]): Promise<string> {
  const { spawn } = await import("node:child_process");
  const quoted = argv.map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qec", quoted, "/dev/null"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith("OPENAI_")),
    ),
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
  });
  await new Promise((resolve) => child.on("close", resolve));
  return out;
}
