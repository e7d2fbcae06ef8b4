/**
 * `baton run --output FILE` and `baton resume --output FILE` under `kill -9` at random moments,
 * with tokens every 1-2 ms: whatever the moment, the file ends up holding the final text exactly
 * (no character lost, none written twice) and the response was created once.
 *
 * A bounded number of scenarios by default; `SOAK_RUNS=N` runs N (each kills 1-3 processes).
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  baton,
  emulatorFor,
  RESPONSE_ID,
  RUN_ID,
  type runBaton,
  storedText,
  tempDir,
} from "./cli-harness.js";

const SCENARIOS = process.env.SOAK_RUNS ? Math.max(1, Number(process.env.SOAK_RUNS)) : 3;

let emulator: Emulator;
beforeAll(async () => {
  emulator = await emulatorFor({ tokenDelayMs: 1, outputTokens: 1_200 });
});
afterAll(async () => {
  await emulator?.close();
});

/** Kills that fell while the file was neither empty nor complete (for the report). */
const tally = { kills: 0, midText: 0, scenarios: 0 };

it(
  "SIGKILL at random moments, then resume --output: the file == the final text, one create",
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.constantFrom(1, 2),
        fc.array(fc.integer({ min: 0, max: 900 }), { minLength: 1, maxLength: 3 }),
        async (stream, tokenDelayMs, killDelays) => {
          const dir = await tempDir();
          const file = join(dir, "answer.txt");
          const common = ["--store", join(dir, "runs"), "--base-url", emulator.url];
          const creates = emulator.countCreates();
          emulator.faults.add({ on: ["create", "create-stream"], script: { tokenDelayMs } });
          const mode = stream ? ["--stream"] : ["--poll-interval", "5"];
          let child = baton(["run", ...mode, "--output", file, ...common, "a long answer"]);
          const runId = (await child.stderrMatches(RUN_ID))[0];
          await child.stderrMatches(RESPONSE_ID);
          const responseId = child.stderr.match(RESPONSE_ID)?.[0] as string;
          let finished: Awaited<ReturnType<typeof runBaton>> | undefined;
          for (const delay of killDelays) {
            await sleep(delay);
            child.child.kill("SIGKILL");
            const out = await child.finished;
            if (out.signal !== "SIGKILL") {
              // It ended before the kill: that is the end of this scenario.
              finished = out;
              break;
            }
            tally.kills++;
            const size = await stat(file).then((s) => s.size);
            const final = emulator.getResponse(responseId)?.status === "completed";
            if (size > 0 && !(final && size >= storedText(emulator, responseId).length)) {
              tally.midText++;
            }
            child = baton(["resume", runId, "--output", file, ...common]);
            // Kill the resumed process too once it is under way (it says which run it follows).
            await child.stderrMatches(/resuming|following/).catch(() => undefined);
          }
          finished ??= await child.finished;
          expect(finished.stderr).not.toMatch(/^\s+at /m);
          expect(finished.code).toBe(0);
          // The final text is on the server once completed.
          expect(emulator.getResponse(responseId)?.status).toBe("completed");
          const text = await readFile(file, "utf8");
          expect(text).toBe(storedText(emulator, responseId));
          expect(emulator.countCreates() - creates).toBe(1);
          tally.scenarios++;
        },
      ),
      { numRuns: SCENARIOS, endOnFailure: true },
    );
    // Figures for the report (the test asserts nothing on timing).
    console.log(
      `--output kill test: ${tally.scenarios} scenarios, ${tally.kills} SIGKILLs, ${tally.midText} mid-text`,
    );
  },
  SCENARIOS * 60_000,
);
