/**
 * The house rules of `src` (docs/architecture.md, "Floors"), checked by `npm run lint`:
 * every import points DOWN a floor, two floors never import each other, no cycles.
 * Type-only imports count too (`tsPreCompilationDeps`): a type that points up is a design that
 * points up, even if the compiler erases it.
 *
 * Floors, from the bottom (a floor may import its own floor and any floor below it):
 *   ground       src/errors.ts, src/continuation-token.ts, src/async-queue.ts,
 *                src/input-validation.ts, src/sse/**  (only each other + node + npm)
 *   emulator     src/emulator/**  (a leaf: only ground; any floor above may use it, so
 *                src/testing/emulator.ts and src/cli/emulator-command.ts may start it)
 *   wire         src/services/**
 *   machine      src/machines/**
 *   persistence  src/persistence/**, src/stores/**
 *   host         src/run/**
 *   orchestrator src/orchestrator/**  (future)
 *   surfaces     src/cli/**, src/serve/**, src/inspector/**, src/agent/**, src/testing/**
 *                (side by side: a surface never imports another surface)
 *   entry        src/index.ts  (the package entry: may import anything, nothing imports it)
 *
 * Inside persistence: src/persistence never imports src/stores (the contract does not know its
 * stores), and neither ever loads the machine: they import only the machine's pure data and
 * types (run-state.ts, run-types.ts, run-options.ts), and nothing they reach leads to
 * run-machine.ts or run-actors.ts.
 *
 * The test test/architecture.test.ts runs these rules on fixture trees that break each of them.
 */

/** @type {{ name: string, path: string[] }[]} from the bottom up */
const FLOORS = [
  {
    name: "ground",
    path: [
      "^src/errors\\.ts$",
      "^src/continuation-token\\.ts$",
      "^src/async-queue\\.ts$",
      "^src/input-validation\\.ts$",
      "^src/sse/",
    ],
  },
  { name: "emulator", path: ["^src/emulator/"] },
  { name: "wire", path: ["^src/services/"] },
  { name: "machine", path: ["^src/machines/"] },
  { name: "persistence", path: ["^src/persistence/", "^src/stores/"] },
  { name: "host", path: ["^src/run/"] },
  { name: "orchestrator", path: ["^src/orchestrator/"] },
  {
    name: "surfaces",
    path: ["^src/cli/", "^src/serve/", "^src/inspector/", "^src/agent/", "^src/testing/"],
  },
  { name: "entry", path: ["^src/index\\.ts$"] },
];

/** What is on a floor; a module of src elsewhere is caught by the `*-off-the-floors` rules. */
const ON_A_FLOOR = FLOORS.flatMap((floor) => floor.path);

const upwardRules = FLOORS.slice(0, -1).map((floor, index) => ({
  name: `${floor.name}-imports-up`,
  comment: `${floor.name} may import only ${FLOORS.slice(0, index + 1)
    .map((f) => f.name)
    .join(", ")}: ${FLOORS.slice(index + 1)
    .map((f) => f.name)
    .join(", ")} are above it (docs/architecture.md, "Floors").`,
  severity: "error",
  from: { path: floor.path },
  to: { path: FLOORS.slice(index + 1).flatMap((f) => f.path) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upwardRules,
    {
      name: "surfaces-import-each-other",
      comment:
        "Surfaces stand side by side: the CLI, serve, the inspector, the agent facade and the " +
        "test kit share what is below them, never each other.",
      severity: "error",
      from: { path: "^src/(cli|serve|inspector|agent|testing)/" },
      to: { path: "^src/(cli|serve|inspector|agent|testing)/", pathNot: "^src/$1/" },
    },
    {
      name: "persistence-imports-stores",
      comment:
        "The RunStore contract and the envelope do not know their stores (src/stores implements " +
        "src/persistence, not the other way round).",
      severity: "error",
      from: { path: "^src/persistence/" },
      to: { path: "^src/stores/" },
    },
    {
      name: "persistence-imports-machine-code",
      comment:
        "Persistence and stores import only the machine's pure data and types: run-state.ts, " +
        "run-types.ts, run-options.ts.",
      severity: "error",
      from: { path: "^src/(persistence|stores)/" },
      to: {
        path: "^src/machines/",
        pathNot: "^src/machines/(run-state|run-types|run-options)\\.ts$",
      },
    },
    {
      name: "persistence-loads-the-machine",
      comment:
        "A store never loads the machine: nothing persistence or a store reaches, however " +
        "indirectly, leads to run-machine.ts or run-actors.ts.",
      severity: "error",
      from: { path: "^src/(persistence|stores)/" },
      to: { path: "^src/machines/(run-machine|run-actors)\\.ts$", reachable: true },
    },
    {
      name: "no-circular",
      comment: "No cycles in src, type-only ones included.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "src-imports-off-the-floors",
      comment:
        "Every module of src lives on a floor: a new folder is placed in .dependency-cruiser.cjs " +
        "(and docs/architecture.md) before it is imported.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/", pathNot: ON_A_FLOOR },
    },
    {
      name: "src-off-the-floors-imports",
      comment: "A module of src on no floor: place its folder in .dependency-cruiser.cjs first.",
      severity: "error",
      from: { path: "^src/", pathNot: ON_A_FLOOR },
      to: {},
    },
    {
      name: "src-imports-unresolvable",
      comment:
        "An import the cruiser cannot resolve would slip past every rule above: it must resolve.",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ["node_modules"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
