/**
 * Every TypeScript snippet of the README runs as it is, against the emulator, with `baton`
 * resolved to this checkout's sources.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const run = promisify(execFile);

async function snippets(): Promise<string[]> {
  const readme = await readFile(join(root, "README.md"), "utf8");
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

function localImports(code: string): string {
  return code
    .replaceAll('from "baton/emulator"', `from "${join(root, "src/emulator/index.ts")}"`)
    .replaceAll('from "baton/testing"', `from "${join(root, "src/testing/index.ts")}"`)
    .replaceAll('from "baton"', `from "${join(root, "src/index.ts")}"`);
}

describe("README snippets", async () => {
  const blocks = await snippets();
  it("has snippets to run", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });
  blocks.forEach((code, index) => {
    it(`snippet ${index + 1} runs`, async () => {
      // Inside the checkout, so that `openai` and `xstate` resolve from node_modules.
      const cache = join(root, "node_modules", ".cache");
      await mkdir(cache, { recursive: true });
      const dir = await mkdtemp(join(cache, "readme-"));
      const file = join(dir, `snippet-${index + 1}.mts`);
      await writeFile(file, localImports(code));
      // A generous bound: on a busy machine tsx alone takes seconds to start; a failure says
      // why (its stderr, or the signal that ended it), not just "Command failed".
      const { stdout } = await run(process.execPath, ["--import", "tsx", file], {
        cwd: dir,
        timeout: 90_000,
        env: { ...process.env, OPENAI_API_KEY: "" },
      })
        .catch((err: { stderr?: string; signal?: string; killed?: boolean }) => {
          const why = err.killed ? `killed (${err.signal}) after 90 s` : (err.stderr ?? "");
          throw new Error(`snippet ${index + 1} failed: ${why.slice(-2_000)}`);
        })
        .finally(() => rm(dir, { recursive: true, force: true }));
      if (code.includes("// true true")) expect(stdout.trim().split("\n").at(-1)).toBe("true true");
      else expect(stdout.length).toBeGreaterThan(0);
    }, 120_000);
  });
});
