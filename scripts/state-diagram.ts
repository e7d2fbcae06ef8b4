/**
 * Writes the run machine's Mermaid state diagram, generated from the machine, into README.md
 * between `<!-- state-diagram:start -->` and `<!-- state-diagram:end -->` (nothing else changes).
 *
 *   npm run diagram              # update the README
 *   npm run diagram -- --check   # exit 1 when the README's diagram is stale
 *   npm run diagram -- --readme path/to/README.md
 *
 * Without the markers it prints the diagram and exits 1.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  DIAGRAM_END,
  DIAGRAM_START,
  readDiagramRegion,
  runMachineDiagramSection,
  writeDiagramRegion,
} from "../src/machines/state-diagram.js";

const { values } = parseArgs({
  options: {
    check: { type: "boolean", default: false },
    readme: { type: "string", default: fileURLToPath(new URL("../README.md", import.meta.url)) },
  },
});
const path = values.readme;
const section = runMachineDiagramSection();
const readme = readFileSync(path, "utf8");
const current = readDiagramRegion(readme);

if (current === null) {
  process.stdout.write(section);
  process.stderr.write(
    `${path} has no ${DIAGRAM_START} ... ${DIAGRAM_END} markers: add them where the diagram goes (the diagram is printed above)\n`,
  );
  process.exit(1);
}
if (current === section) {
  process.stdout.write(`${path}: the state diagram is up to date\n`);
} else if (values.check) {
  process.stderr.write(`${path}: the state diagram is stale; run \`npm run diagram\`\n`);
  process.exit(1);
} else {
  writeFileSync(path, writeDiagramRegion(readme, section) as string);
  process.stdout.write(`${path}: state diagram updated\n`);
}
