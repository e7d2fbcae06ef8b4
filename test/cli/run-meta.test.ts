/**
 * The CLI's notes beside a run (`<run-id>.cli.json`) are written by more than one process at
 * once (a `baton cancel` and a follower still printing): an update is a locked
 * read-modify-write and `printed` only grows, so no note is lost and a reader's count never goes
 * back (which made `baton resume` print text a follower had printed already).
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { readRunMeta, updateRunMeta } from "../../src/cli/run-meta.js";
import { tempDir } from "./cli-harness.js";

it("concurrent updates keep every field and the largest printed count", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(100_000), { minLength: 2, maxLength: 12 }), async (counts) => {
      const directory = await tempDir();
      const runId = "run_0123456789abcdef01234567";
      await Promise.all([
        ...counts.map((printed) => updateRunMeta(directory, runId, { printed })),
        updateRunMeta(directory, runId, { baseURL: "http://127.0.0.1:4010/v1" }),
      ]);
      const meta = await readRunMeta(directory, runId);
      expect(meta.printed).toBe(Math.max(...counts));
      expect(meta.baseURL).toBe("http://127.0.0.1:4010/v1");
    }),
    { numRuns: 25 },
  );
});
