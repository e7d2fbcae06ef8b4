/**
 * Issue 14: one error hierarchy. Every error baton throws on purpose is a `BatonError` with a
 * string `code`, and every error class is declared in `src/errors.ts` (as openai-node's errors
 * are in one module), so a newcomer finds them in one place and a program can switch on `code`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as errors from "../../src/errors.js";
import * as baton from "../../src/index.js";

const SRC = join(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** One instance of each error class, as its thrower makes it. */
const samples: Record<string, () => errors.BatonError> = {
  BatonError: () => new errors.BatonError("run_detached", "detached"),
  InvalidContinuationTokenError: () => new errors.InvalidContinuationTokenError("malformed", "m"),
  InvalidSnapshotError: () => new errors.InvalidSnapshotError("unsupported-version", "m", "f"),
  InvalidRunInputError: () => new errors.InvalidRunInputError("runId", "m"),
  RunNotFoundError: () => new errors.RunNotFoundError("run_1"),
  ProtocolError: () => new errors.ProtocolError("m"),
  ClientFailureError: () => new errors.ClientFailureError({ kind: "not-found", message: "m" }),
  InvalidSessionError: () => new errors.InvalidSessionError("foreign", "m"),
  AgentInputError: () => new errors.AgentInputError("no-input", "m"),
  AgentRunError: () => new errors.AgentRunError({ reason: "create-unknown" }),
  CliError: () => new errors.CliError(2, "m"),
  ApiError: () => new errors.ApiError(404, "m", "invalid_request_error"),
  BodyRefusedError: () => new errors.BodyRefusedError("too-large", 10),
  RunInvariantError: () => new errors.RunInvariantError(["x"]),
  TestStepError: () => new errors.TestStepError("m"),
};

describe("one error hierarchy", () => {
  it("every error class of src is declared in src/errors.ts", () => {
    const elsewhere: string[] = [];
    for (const file of sourceFiles(SRC)) {
      if (file.endsWith(`${join("src", "errors.ts")}`)) continue;
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/class\s+(\w+)(?:<[^>]*>)?\s+extends\s+(\w+)/g)) {
        if (/Error$/.test(match[2] as string) || /Error$/.test(match[1] as string)) {
          elsewhere.push(`${file.slice(SRC.length + 1)}: ${match[1]} extends ${match[2]}`);
        }
      }
    }
    expect(elsewhere).toEqual([]);
  });

  it("every class of src/errors.ts is a BatonError with a snake_case code and its own name", () => {
    const classes = Object.entries(errors).filter(
      ([, value]) => typeof value === "function" && value.prototype instanceof Error,
    );
    expect(classes.map(([name]) => name).sort()).toEqual(Object.keys(samples).sort());
    for (const [name, make] of Object.entries(samples)) {
      const error = make();
      expect(error, name).toBeInstanceOf(errors.BatonError);
      expect(error, name).toBeInstanceOf(Error);
      expect(error.code, name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(error.name, name).toBe(name);
      expect(error.message.length, name).toBeGreaterThan(0);
    }
  });

  it("the package entry exports the hierarchy users catch", () => {
    const entry: Record<string, unknown> = { ...baton };
    const declared: Record<string, unknown> = { ...errors };
    for (const name of [
      "BatonError",
      "InvalidContinuationTokenError",
      "InvalidSnapshotError",
      "InvalidRunInputError",
      "RunNotFoundError",
      "ProtocolError",
      "ClientFailureError",
      "InvalidSessionError",
      "AgentInputError",
      "AgentRunError",
    ]) {
      expect(entry[name], name).toBeDefined();
      expect(entry[name], name).toBe(declared[name]);
    }
  });
});
