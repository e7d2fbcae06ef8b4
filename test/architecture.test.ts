/**
 * The house rules of `.dependency-cruiser.cjs` (every import points down a floor, surfaces stand
 * apart, stores never load the machine, no cycles), tested on small fixture trees that break one
 * rule each, so that a rule that stops catching anything fails here and not in a review. And
 * the real `src` keeps them.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CONFIG = join(ROOT, ".dependency-cruiser.cjs");

type Violation = [rule: string, from: string, to: string];

/** Cruises `src` of `baseDir` with the project's config; the violations, sorted. */
async function violations(baseDir: string): Promise<{ found: Violation[]; result: ICruiseResult }> {
  const options = await extractDepcruiseOptions(CONFIG);
  const tsConfigFile = join(baseDir, "tsconfig.json");
  const reported = await cruise(
    ["src"],
    { ...options, baseDir, tsConfig: { fileName: tsConfigFile } },
    {},
    { tsConfig: extractTSConfig(tsConfigFile) },
  );
  if (typeof reported.output === "string") throw new Error("expected a cruise result object");
  const result = reported.output;
  const found = result.summary.violations
    .map((v): Violation => [v.rule.name, v.from, v.to])
    .sort((a, b) => a.join(" ").localeCompare(b.join(" ")));
  return { found, result };
}

/**
 * A tree that uses every import the rules allow: each floor imports the one below it (type-only
 * too), the CLI and the test kit start the emulator, stores implement persistence, persistence
 * reads the machine's pure data, the entry imports everything.
 */
const ALLOWED: Record<string, string[]> = {
  "src/errors.ts": [
    'import { EventEmitter } from "node:events";',
    "export class BatonError extends Error {}",
    "export const bus = new EventEmitter();",
  ],
  "src/continuation-token.ts": [
    'import { BatonError } from "./errors.js";',
    "export const token = (s: string) => { if (!s) throw new BatonError(); return s; };",
  ],
  "src/async-queue.ts": ["export class AsyncQueue {}"],
  "src/input-validation.ts": [
    'import type { BatonError } from "./errors.js";',
    "export type Fail = (e: BatonError) => never;",
  ],
  "src/sse/reader.ts": [
    'import { AsyncQueue } from "../async-queue.js";',
    "export const reader = new AsyncQueue();",
  ],
  "src/emulator/server.ts": [
    'import { reader } from "../sse/reader.js";',
    'import { token } from "../continuation-token.js";',
    "export const server = { reader, token };",
  ],
  "src/services/client.ts": [
    'import { reader } from "../sse/reader.js";',
    "export interface Client { reader: typeof reader }",
  ],
  "src/machines/run-state.ts": ['export const RUN_STATES = ["idle", "done"] as const;'],
  "src/machines/run-types.ts": [
    'import type { Client } from "../services/client.js";',
    "export interface RunContext { client: Client }",
  ],
  "src/machines/run-options.ts": [
    'import type { RunContext } from "./run-types.js";',
    "export const check = (c: RunContext) => c;",
  ],
  "src/machines/run-actors.ts": [
    'import type { Client } from "../services/client.js";',
    "export const actors = (c: Client) => c;",
  ],
  "src/machines/run-machine.ts": [
    'import { actors } from "./run-actors.js";',
    'import { RUN_STATES } from "./run-state.js";',
    "export const machine = { actors, RUN_STATES };",
  ],
  "src/persistence/envelope.ts": [
    'import { RUN_STATES } from "../machines/run-state.js";',
    'import type { RunContext } from "../machines/run-types.js";',
    'import { check } from "../machines/run-options.js";',
    "export const envelope = (c: RunContext) => [RUN_STATES, check(c)];",
  ],
  "src/stores/memory-run-store.ts": [
    'import { envelope } from "../persistence/envelope.js";',
    "export const store = { envelope };",
  ],
  "src/run/host.ts": [
    'import { machine } from "../machines/run-machine.js";',
    'import { store } from "../stores/memory-run-store.js";',
    "export const host = { machine, store };",
  ],
  "src/orchestrator/pool.ts": [
    'import { host } from "../run/host.js";',
    "export const pool = [host];",
  ],
  "src/cli/main.ts": [
    'import { host } from "../run/host.js";',
    'import { server } from "../emulator/server.js";',
    "export const main = { host, server };",
  ],
  "src/testing/emulator.ts": [
    'import { server } from "../emulator/server.js";',
    "export const testEmulator = server;",
  ],
  "src/agent/agent.ts": [
    'import { pool } from "../orchestrator/pool.js";',
    "export const agent = pool;",
  ],
  "src/index.ts": [
    'export * from "./run/host.js";',
    'export * from "./agent/agent.js";',
    'export * from "./testing/emulator.js";',
    'export * from "./cli/main.js";',
    'export * from "./persistence/envelope.js";',
  ],
};

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Writes the allowed tree plus ['changes'] (a file's new text) into a fresh directory. */
function tree(changes: Record<string, string[]> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "baton-architecture-"));
  roots.push(root);
  writeFileSync(join(root, "tsconfig.json"), readFileSync(join(ROOT, "tsconfig.json")));
  for (const [file, lines] of Object.entries({ ...ALLOWED, ...changes })) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), `${lines.join("\n")}\n`);
  }
  return root;
}

describe("the import rules (.dependency-cruiser.cjs)", () => {
  it("allow every downward import (stores → persistence, the emulator from above)", async () => {
    const { found, result } = await violations(tree());
    expect(found).toEqual([]);
    // Not vacuous: every fixture module was read, its relative `.js` imports resolved to `.ts`.
    expect(result.summary.totalCruised).toBe(Object.keys(ALLOWED).length + 1 /* node:events */);
    expect(
      result.modules
        .find((m) => m.source === "src/cli/main.ts")
        ?.dependencies.map((d) => d.resolved),
    ).toEqual(expect.arrayContaining(["src/run/host.ts", "src/emulator/server.ts"]));
  });

  const cases: { name: string; changes: Record<string, string[]>; expected: Violation[] }[] = [
    {
      name: "ground imports up (into the wire)",
      changes: {
        "src/sse/bad.ts": [
          'import type { Client } from "../services/client.js";',
          "export type C = Client;",
        ],
      },
      expected: [["ground-imports-up", "src/sse/bad.ts", "src/services/client.ts"]],
    },
    {
      name: "ground imports up (a type-only import counts)",
      changes: {
        "src/input-validation.ts": [
          'import type { BatonError } from "./errors.js";',
          'import type { RUN_STATES } from "./machines/run-state.js";',
          "export type Fail = (e: BatonError, s: typeof RUN_STATES) => never;",
        ],
      },
      expected: [["ground-imports-up", "src/input-validation.ts", "src/machines/run-state.ts"]],
    },
    {
      name: "the emulator imports the wire (it is a leaf on ground)",
      changes: {
        "src/emulator/bad.ts": [
          'import type { Client } from "../services/client.js";',
          "export type C = Client;",
        ],
      },
      expected: [["emulator-imports-up", "src/emulator/bad.ts", "src/services/client.ts"]],
    },
    {
      name: "the wire imports the machine",
      changes: {
        "src/services/bad.ts": [
          'import type { RunContext } from "../machines/run-types.js";',
          "export type C = RunContext;",
        ],
      },
      expected: [["wire-imports-up", "src/services/bad.ts", "src/machines/run-types.ts"]],
    },
    {
      name: "the machine imports persistence",
      changes: {
        "src/machines/bad.ts": [
          'import { envelope } from "../persistence/envelope.js";',
          "export const e = envelope;",
        ],
      },
      expected: [["machine-imports-up", "src/machines/bad.ts", "src/persistence/envelope.ts"]],
    },
    {
      name: "a store imports the host",
      changes: {
        "src/stores/bad.ts": ['import { host } from "../run/host.js";', "export const h = host;"],
      },
      expected: [
        ["persistence-imports-up", "src/stores/bad.ts", "src/run/host.ts"],
        ["persistence-loads-the-machine", "src/stores/bad.ts", "src/machines/run-actors.ts"],
        ["persistence-loads-the-machine", "src/stores/bad.ts", "src/machines/run-machine.ts"],
      ],
    },
    {
      name: "the host imports a surface",
      changes: {
        "src/run/bad.ts": ['import { main } from "../cli/main.js";', "export const m = main;"],
      },
      expected: [["host-imports-up", "src/run/bad.ts", "src/cli/main.ts"]],
    },
    {
      name: "the orchestrator imports a surface",
      changes: {
        "src/orchestrator/bad.ts": [
          'import { agent } from "../agent/agent.js";',
          "export const a = agent;",
        ],
      },
      expected: [["orchestrator-imports-up", "src/orchestrator/bad.ts", "src/agent/agent.ts"]],
    },
    {
      name: "a surface imports the package entry",
      changes: {
        "src/agent/bad.ts": ['import { host } from "../index.js";', "export const h = host;"],
      },
      expected: [["surfaces-imports-up", "src/agent/bad.ts", "src/index.ts"]],
    },
    {
      name: "the CLI imports the agent facade (surfaces stand apart)",
      changes: {
        "src/cli/bad.ts": ['import { agent } from "../agent/agent.js";', "export const a = agent;"],
      },
      expected: [["surfaces-import-each-other", "src/cli/bad.ts", "src/agent/agent.ts"]],
    },
    {
      name: "the test kit imports the CLI (surfaces stand apart)",
      changes: {
        "src/testing/bad.ts": [
          'import type { main } from "../cli/main.js";',
          "export type M = typeof main;",
        ],
      },
      expected: [["surfaces-import-each-other", "src/testing/bad.ts", "src/cli/main.ts"]],
    },
    {
      name: "persistence imports a store",
      changes: {
        "src/persistence/bad.ts": [
          'import { store } from "../stores/memory-run-store.js";',
          "export const s = store;",
        ],
      },
      expected: [
        ["persistence-imports-stores", "src/persistence/bad.ts", "src/stores/memory-run-store.ts"],
      ],
    },
    {
      name: "persistence imports the machine (type-only)",
      changes: {
        "src/persistence/bad.ts": [
          'import type { machine } from "../machines/run-machine.js";',
          "export type M = typeof machine;",
        ],
      },
      expected: [
        [
          "persistence-imports-machine-code",
          "src/persistence/bad.ts",
          "src/machines/run-machine.ts",
        ],
        ["persistence-loads-the-machine", "src/persistence/bad.ts", "src/machines/run-actors.ts"],
        ["persistence-loads-the-machine", "src/persistence/bad.ts", "src/machines/run-machine.ts"],
      ],
    },
    {
      name: "persistence reaches the actors through the machine's pure types",
      changes: {
        "src/machines/run-types.ts": [
          'import type { Client } from "../services/client.js";',
          'import type { actors } from "./run-actors.js";',
          "export interface RunContext { client: Client; actors: typeof actors }",
        ],
      },
      expected: [
        [
          "persistence-loads-the-machine",
          "src/persistence/envelope.ts",
          "src/machines/run-actors.ts",
        ],
        [
          "persistence-loads-the-machine",
          "src/stores/memory-run-store.ts",
          "src/machines/run-actors.ts",
        ],
      ],
    },
    {
      name: "two modules of one floor import each other",
      changes: {
        "src/run/a.ts": ['import type { B } from "./b.js";', "export interface A { b?: B }"],
        "src/run/b.ts": ['import type { A } from "./a.js";', "export interface B { a?: A }"],
      },
      // A cycle is reported once, at the module the cruise met first.
      expected: [["no-circular", "src/run/a.ts", "src/run/b.ts"]],
    },
    {
      name: "a folder on no floor",
      changes: {
        "src/util/x.ts": [
          'import { BatonError } from "../errors.js";',
          "export const x = BatonError;",
        ],
        "src/run/uses-util.ts": ['import { x } from "../util/x.js";', "export const y = x;"],
      },
      expected: [
        ["src-imports-off-the-floors", "src/run/uses-util.ts", "src/util/x.ts"],
        ["src-off-the-floors-imports", "src/util/x.ts", "src/errors.ts"],
      ],
    },
    {
      name: "an import that does not resolve",
      changes: { "src/run/bad.ts": ['export { gone } from "./missing.js";'] },
      expected: [["src-imports-unresolvable", "src/run/bad.ts", "./missing.js"]],
    },
  ];

  for (const { name, changes, expected } of cases) {
    it(`report: ${name}`, async () => {
      const { found } = await violations(tree(changes));
      expect(found).toEqual(expected);
    });
  }
});

describe("the real src", () => {
  it("keeps the house rules (npm run lint runs the same check)", async () => {
    const { found, result } = await violations(ROOT);
    expect(found).toEqual([]);
    // Every module of src was cruised: the rules cannot pass because a file went unseen.
    const sources = (readdirSync(join(ROOT, "src"), { recursive: true }) as string[])
      .filter((file) => file.endsWith(".ts"))
      .map((file) => `src/${file.split("\\").join("/")}`)
      .sort();
    const cruised = result.modules
      .map((m) => m.source)
      .filter((source) => source.startsWith("src/"))
      .sort();
    expect(cruised).toEqual(sources);
  });

  it("is checked by npm run lint", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.lint).toContain("depcruise src --config .dependency-cruiser.cjs");
  });
});
