/**
 * The `--output` file's own rules, on generated text: written in arbitrary pieces (surrogate
 * pairs split between pieces included), cut at any byte as a kill in the middle of a write could
 * cut it, reopened: what it holds is a prefix of the text ending on a whole character, and
 * appending the rest from its length gives the text exactly, in UTF-8.
 */
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { expect, it } from "vitest";
import { completeLength, OutputFile } from "../../src/cli/output-file.js";
import { tempDir } from "./cli-harness.js";

const RUNS = process.env.SOAK_RUNS ? Number(process.env.SOAK_RUNS) : 200;

it("cut at any byte and resumed from its length, the file holds the text exactly", async () => {
  const dir = await tempDir();
  let case_ = 0;
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("a", "é", "€", "😀", "𝄞", "\n", "中"), maxLength: 60 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.nat(),
      (text, cuts, cutAt) => {
        const path = join(dir, `answer-${case_++}.txt`);
        // Pieces split at arbitrary UTF-16 indices: a surrogate pair may fall across two.
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const first = OutputFile.create(path);
        let from = 0;
        for (const point of [...points, text.length]) {
          first.write(text.slice(from, point));
          from = point;
        }
        first.close();
        const bytes = readFileSync(path);
        expect(bytes.toString("utf8")).toBe(text);
        // A kill cuts the file at some byte.
        truncateSync(path, cutAt % (bytes.length + 1));
        const again = OutputFile.open(path);
        expect(text.startsWith(again.existing)).toBe(true);
        expect(again.chars).toBe(again.existing.length);
        again.write(text.slice(again.chars));
        again.close();
        expect(readFileSync(path).toString("utf8")).toBe(text);
      },
    ),
    { numRuns: RUNS },
  );
});

it("a file that is not UTF-8 is refused, and left as it is", async () => {
  const path = join(await tempDir(), "binary.bin");
  writeFileSync(path, Buffer.from([0x61, 0xff, 0xfe, 0x62]));
  expect(() => OutputFile.open(path)).toThrow(/not UTF-8/);
  expect([...readFileSync(path)]).toEqual([0x61, 0xff, 0xfe, 0x62]);
});

it("completeLength drops only an incomplete last character", () => {
  const euro = Buffer.from("€"); // e2 82 ac
  expect(completeLength(Buffer.concat([Buffer.from("a"), euro.subarray(0, 2)]))).toBe(1);
  expect(completeLength(Buffer.concat([Buffer.from("a"), euro]))).toBe(4);
  expect(completeLength(Buffer.from("😀").subarray(0, 3))).toBe(0);
  expect(completeLength(Buffer.from(""))).toBe(0);
});
