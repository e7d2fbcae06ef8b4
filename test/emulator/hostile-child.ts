/**
 * The emulator in a child process of its own for the hostile-client probe: started with the
 * options given as JSON in argv[2], prints its base URL as one line, stops on SIGTERM. A crash
 * of the emulator is then the child exiting, which the probe sees.
 */
import { startEmulator } from "../../src/emulator/index.js";
import type { EmulatorOptions } from "../../src/emulator/types.js";

const options = JSON.parse(process.argv[2] ?? "{}") as EmulatorOptions;
const emulator = await startEmulator(options);
process.stdout.write(`${emulator.url}\n`);
process.once("SIGTERM", () => {
  void emulator.close().then(() => process.exit(0));
});
