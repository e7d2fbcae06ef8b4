/**
 * Text from outside (server messages, response ids, run ids, saved files) never reaches the
 * terminal with control characters in it: `sanitize` on generated strings, and real `baton`
 * processes fed hostile server messages and tokens.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, expect, it } from "vitest";
import { sanitize } from "../../src/cli/sanitize.js";
import type { Emulator } from "../../src/emulator/index.js";
import { emulatorFor, runBaton, tempDir } from "./cli-harness.js";

const RUNS = process.env.SOAK_RUNS ? Number(process.env.SOAK_RUNS) : 500;
const PROCESSES = process.env.SOAK_RUNS ? 12 : 4;

/** Control characters a terminal acts on (tab and newline aside), and bidi overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the test
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

/** Strings made to hurt a terminal: escape sequences and control characters among text. */
const hostile = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.constantFrom(
        "\x1b[2J",
        "\x1b]0;owned\x07",
        "\x1b]52;c;aGk=\x1b\\",
        "\x1bP1$r\x1b\\",
        "\x9b31m",
        "\x1b[",
        "\x1b",
        "\r",
        "\b",
        "\x07",
        "\u202e",
        "\x7f",
      ),
      fc.integer({ min: 0, max: 0x9f }).map((code) => String.fromCharCode(code)),
    ),
    { minLength: 1, maxLength: 12 },
  )
  .map((parts) => parts.join(""));

it("sanitize leaves no control character, keeps plain text, and is idempotent", () => {
  fc.assert(
    fc.property(hostile, (text) => {
      const clean = sanitize(text);
      expect(clean).not.toMatch(CONTROL);
      expect(clean).not.toContain("\n");
      expect(sanitize(clean)).toBe(clean);
      expect(sanitize(text, { keepNewlines: true })).not.toMatch(CONTROL);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), (text) => {
      const printable = text.replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu, "");
      expect(sanitize(printable)).toBe(printable);
    }),
    { numRuns: RUNS },
  );
});

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

it("hostile server messages, response ids, run ids and saved runs reach stderr/stdout clean", async () => {
  emulator = await emulatorFor();
  const url = emulator.url;
  const samples = fc.sample(hostile, { numRuns: PROCESSES, seed: 12 });
  const store = await tempDir();
  const runs: Promise<Awaited<ReturnType<typeof runBaton>>>[] = [];
  for (const [i, text] of samples.entries()) {
    // A server whose error message carries the string (a refused create prints it).
    emulator.faults.add({ on: "create", status: { code: 400, message: `bad ${text} request` } });
    runs.push(runBaton(["run", "--store", store, "--base-url", url, `prompt ${i}`]));
    // A token whose response id carries it (status and resume print the id).
    const token = `bt1.${Buffer.from(JSON.stringify({ responseId: `resp_${text}` })).toString("base64url")}`;
    runs.push(runBaton(["status", "--store", store, "--base-url", url, token]));
    runs.push(runBaton(["resume", "--store", store, "--base-url", url, token]));
    // A run id given on the command line.
    runs.push(runBaton(["resume", "--store", store, `run_${text}`]));
  }
  // A saved run whose fields carry it (the listing prints them).
  const hostileRun = {
    format: "baton.run",
    formatVersion: 1,
    machineVersion: 1,
    runId: "run_000000000000000000000001",
    savedAt: Date.now(),
    state: "polling",
    responseId: `resp_${samples[0]}`,
    status: `in_progress${samples[1]}`,
    token: null,
    snapshot: {
      status: "active",
      value: { polling: "waiting" },
      context: { runId: "run_000000000000000000000001", mode: "poll" },
      children: {},
    },
  };
  await writeFile(join(store, "run_000000000000000000000001.run.json"), JSON.stringify(hostileRun));
  runs.push(runBaton(["runs", "--store", store]));
  for (const out of await Promise.all(runs)) {
    expect(out.stderr).not.toMatch(/^\s+at /m);
    expect(out.stderr).not.toMatch(CONTROL);
    expect(out.stdout).not.toMatch(CONTROL);
  }
}, 120_000);
