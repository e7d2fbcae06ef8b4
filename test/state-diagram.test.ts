/**
 * The README's state diagram is generated from the run machine and must not go stale; the
 * generator itself draws nested states, guards, invokes and `always` correctly.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { and, createMachine, fromPromise, setup } from "xstate";
import { runMachine } from "../src/machines/run-machine.js";
import {
  DIAGRAM_END,
  DIAGRAM_START,
  machineMermaid,
  readDiagramRegion,
  runMachineDiagramSection,
  runMachineMermaid,
  writeDiagramRegion,
} from "../src/machines/state-diagram.js";

const exec = promisify(execFile);

function runScript(...args: string[]) {
  return exec(process.execPath, ["--import", "tsx", "scripts/state-diagram.ts", ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
}

describe("the README's run machine diagram", () => {
  it("is the one generated from the machine (run `npm run diagram` when this fails)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const region = readDiagramRegion(readme);
    expect(region, "README.md has no state-diagram markers").not.toBeNull();
    expect(region).toBe(runMachineDiagramSection());
  });

  it("draws every state of the machine, top-level and nested", () => {
    const diagram = runMachineMermaid();
    expect(diagram.startsWith("stateDiagram-v2\n")).toBe(true);
    const topLevel = Object.keys(runMachine.root.states);
    expect(topLevel).toEqual(
      expect.arrayContaining(["idle", "started", "polling", "streaming", "done"]),
    );
    for (const state of topLevel) {
      expect(diagram).toMatch(new RegExp(`(^|\\s)${state}( -->|:|\\s|$)`, "m"));
    }
    for (const [parent, node] of Object.entries(runMachine.root.states)) {
      for (const child of Object.keys(node.states)) {
        expect(diagram).toContain(`state "${child}" as ${parent}_${child}`);
      }
    }
    expect(diagram).toContain("[*] --> idle");
    expect(diagram).toContain("done --> [*]");
    expect(diagram).toContain("idle --> started: run.start [isStreamMode] to creatingStream");
  });
});

describe("machineMermaid", () => {
  it("draws composites, guards, invokes, always, root transitions and self-transitions", () => {
    const machine = setup({
      actors: { fetch: fromPromise(async () => 1), wait: fromPromise(async () => undefined) },
      guards: { ok: () => true, ready: () => true },
    }).createMachine({
      id: "toy",
      initial: "idle",
      invoke: { id: "deadline", src: "wait", onDone: ".done" },
      states: {
        idle: { on: { go: [{ guard: and(["ok", "ready"]), target: "work.second" }, "work"] } },
        work: {
          initial: "first",
          on: { reset: { target: "work", reenter: true }, note: { actions: () => {} } },
          states: {
            first: {
              invoke: { id: "fetch", src: "fetch", onDone: "second", onError: "#toy.done" },
            },
            second: { always: { guard: "ok", target: "#toy.done" } },
          },
        },
        done: { type: "final" },
      },
    });
    expect(machineMermaid(machine)).toBe(
      [
        "stateDiagram-v2",
        '  state "any state" as any_state',
        "  state work {",
        '    state "first" as work_first',
        '    state "second" as work_second',
        "    [*] --> work_first",
        "    work_first --> work_second: fetch done",
        "  }",
        "  [*] --> idle",
        "  any_state --> done: deadline done",
        "  idle --> work: go [ok & ready] to second / go",
        "  work --> done: fetch error / always [ok]",
        "  done --> [*]",
        "  %% self-transition: work --> work: reset",
        "",
      ].join("\n"),
    );
  });

  it("a flat machine needs no pseudo-state", () => {
    const machine = createMachine({
      initial: "a",
      states: { a: { on: { next: "b" } }, b: { type: "final" } },
    });
    expect(machineMermaid(machine)).toBe(
      "stateDiagram-v2\n  [*] --> a\n  a --> b: next\n  b --> [*]\n",
    );
  });
});

describe("scripts/state-diagram.ts", () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-diagram-"));

  it("writes only the region between the markers, then --check passes", async () => {
    const path = join(dir, "fresh.md");
    writeFileSync(path, `# Title\n\nbefore\n\n${DIAGRAM_START}\nold\n${DIAGRAM_END}\n\nafter\n`);
    expect((await runScript("--check", "--readme", path)).code).toBe(1);
    const write = await runScript("--readme", path);
    expect(write.code).toBe(0);
    const text = readFileSync(path, "utf8");
    expect(text).toBe(
      `# Title\n\nbefore\n\n${DIAGRAM_START}\n${runMachineDiagramSection()}${DIAGRAM_END}\n\nafter\n`,
    );
    expect(writeDiagramRegion(text, runMachineDiagramSection())).toBe(text);
    const check = await runScript("--check", "--readme", path);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/up to date/);
  });

  it("--check fails on a stale diagram without touching the file", async () => {
    const path = join(dir, "stale.md");
    const stale = `${DIAGRAM_START}\n${runMachineDiagramSection().replace("idle", "sleeping")}${DIAGRAM_END}\n`;
    writeFileSync(path, stale);
    const check = await runScript("--check", "--readme", path);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/stale/);
    expect(readFileSync(path, "utf8")).toBe(stale);
  });

  it("without markers it prints the diagram and exits 1", async () => {
    const path = join(dir, "none.md");
    writeFileSync(path, "# No markers here\n");
    const result = await runScript("--readme", path);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("stateDiagram-v2");
    expect(result.stderr).toMatch(/no <!-- state-diagram:start -->/);
    expect(readFileSync(path, "utf8")).toBe("# No markers here\n");
  });
});
