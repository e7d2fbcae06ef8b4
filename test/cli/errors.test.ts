/**
 * Errors: one `baton: …` line on stderr, the documented exit code, no stack trace, never the key.
 */
import { afterEach, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  closedPort,
  emulatorFor,
  type Finished,
  lines,
  runBaton,
  SECRET_KEY,
  tempDir,
} from "./cli-harness.js";

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

function expectOneLine(out: Finished, code: number, pattern: RegExp) {
  expect({ code: out.code, stderr: out.stderr }).toMatchObject({ code });
  expect(lines(out.stderr)).toHaveLength(1);
  expect(out.stderr).toMatch(/^baton: /);
  expect(out.stderr).toMatch(pattern);
  expect(out.stderr).not.toMatch(/^\s+at /m);
  expect(out.stdout).toBe("");
  expect(out.stdout + out.stderr).not.toContain(SECRET_KEY);
}

it("bad tokens and unknown runs: exit 2, one line", async () => {
  const store = await tempDir();
  const env = { OPENAI_API_KEY: SECRET_KEY, BATON_STORE: store };
  const [garbage, hello, unknown, foreign, statusHello, cancelGarbage] = await Promise.all([
    runBaton(["resume", "bt1.garbage"], { env }),
    runBaton(["resume", "hello"], { env }),
    runBaton(["resume", "run_000000000000000000000000"], { env }),
    runBaton(["status", "bt9.eyJ9"], { env }),
    runBaton(["status", "hello"], { env }),
    runBaton(["cancel", "bt1.garbage"], { env }),
  ]);
  expectOneLine(garbage, 2, /bad continuation token/);
  expectOneLine(hello, 2, /no run 'hello'/);
  expectOneLine(unknown, 2, /no run 'run_000000000000000000000000'/);
  expectOneLine(foreign, 2, /version 9 is not supported/);
  expectOneLine(statusHello, 2, /no run 'hello'/);
  expectOneLine(cancelGarbage, 2, /bad continuation token/);
}, 30_000);

it("usage errors: exit 2", async () => {
  const [noPrompt, badFlag, noArg] = await Promise.all([
    runBaton(["run", "--emulator"]),
    runBaton(["run", "--bogus", "x"]),
    runBaton(["resume"]),
  ]);
  expectOneLine(noPrompt, 2, /no prompt/);
  expectOneLine(badFlag, 2, /--bogus/);
  expectOneLine(noArg, 2, /missing <token\|run-id>/);
}, 30_000);

it("a missing key, a refused key, an unreachable server: exit 3, one line, never the key", async () => {
  emulator = await emulatorFor({ apiKey: "sk-the-right-one-0000000000" });
  const port = await closedPort();
  const store = await tempDir();
  const token = `bt1.${Buffer.from(JSON.stringify({ responseId: "resp_123" })).toString("base64url")}`;
  const closed = `http://127.0.0.1:${port}/v1`;
  const [
    missing,
    refused,
    unreachableRun,
    unreachableStream,
    unreachableStatus,
    unreachableCancel,
  ] = await Promise.all([
    runBaton(["run", "--store", store, "hello"]),
    runBaton(["run", "--store", store, "--base-url", emulator.url, "hello"], {
      env: { OPENAI_API_KEY: SECRET_KEY },
    }),
    runBaton(["run", "--store", store, "--base-url", closed, "hello"], {
      env: { OPENAI_API_KEY: SECRET_KEY },
    }),
    runBaton(["run", "--stream", "--store", store, "hello"], {
      env: { OPENAI_API_KEY: SECRET_KEY, OPENAI_BASE_URL: closed },
    }),
    runBaton(["status", "--store", store, "--base-url", closed, token], {
      env: { OPENAI_API_KEY: SECRET_KEY },
    }),
    runBaton(["cancel", "--store", store, "--base-url", closed, token], {
      env: { OPENAI_API_KEY: SECRET_KEY },
    }),
  ]);
  expectOneLine(missing, 3, /OPENAI_API_KEY is not set/);
  expectOneLine(refused, 3, /refused the API key/);
  expectOneLine(unreachableRun, 3, new RegExp(`cannot reach ${closed}`));
  expectOneLine(unreachableStream, 3, /cannot reach/);
  expectOneLine(unreachableStatus, 3, /cannot reach/);
  expectOneLine(unreachableCancel, 3, /cannot reach/);
  // Nothing was created: no run is left behind in the store.
  const runs = await runBaton(["runs", "--json", "--store", store]);
  expect(
    JSON.parse(runs.stdout).filter((run: { status: string }) => run.status !== "gave-up"),
  ).toEqual([]);
}, 30_000);

it("a response the server does not know: exit 1, one line", async () => {
  emulator = await emulatorFor();
  const token = `bt1.${Buffer.from(JSON.stringify({ responseId: "resp_nope" })).toString("base64url")}`;
  const out = await runBaton([
    "status",
    "--store",
    await tempDir(),
    "--base-url",
    emulator.url,
    token,
  ]);
  expectOneLine(out, 1, /not on the server/);
});

it("--help prints the commands and exit codes", async () => {
  const out = await runBaton(["--help"]);
  expect(out.code).toBe(0);
  for (const word of ["run", "resume", "status", "cancel", "runs", "emulator", "130"]) {
    expect(out.stdout).toContain(word);
  }
  const run = await runBaton(["run", "--help"]);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain("--stream");
});
