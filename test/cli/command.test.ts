/**
 * Issue 14: the one opening and error tail of the run commands (`runCommand`, command.ts) and
 * the CLI's opened store (store.ts), without a process: `--help`, parse failures, a second
 * `<token|run-id>`, an error thrown by a command's body (one line, its exit code, the store's
 * directory in it, the key redacted), cleanups run whatever happens.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { describe, expect, it } from "vitest";
import { CONNECTION_OPTIONS } from "../../src/cli/args.js";
import { runCommand } from "../../src/cli/command.js";
import { homeOf } from "../../src/cli/connect.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { openStore, storeDirectory } from "../../src/cli/store.js";
import { RunNotFoundError } from "../../src/errors.js";

const KEY = "sk-test-0123456789abcdefghijklmnop";

function io(env: NodeJS.ProcessEnv = {}) {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    overrides: {
      stdout: { write: (text: string) => (out.stdout += text) },
      stderr: { write: (text: string) => (out.stderr += text) },
      env,
      cwd: "/work/project",
    },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: { ...CONNECTION_OPTIONS },
    allowPositionals: true,
    strict: true,
  });
}

const spec = { name: "probe", usage: "Usage: baton probe <token|run-id>", parse, oneTarget: true };

describe("runCommand", () => {
  it("--help prints the usage on stdout and never runs the body", async () => {
    const { out, overrides } = io();
    let ran = false;
    const code = await runCommand(["--help"], overrides, spec, async () => {
      ran = true;
      return EXIT.failed;
    });
    expect(code).toBe(EXIT.ok);
    expect(out.stdout).toBe("Usage: baton probe <token|run-id>\n");
    expect(ran).toBe(false);
  });

  it("a parse failure or a second target is a usage error naming the command", async () => {
    const unknown = io();
    expect(await runCommand(["--nope"], unknown.overrides, spec, async () => EXIT.ok)).toBe(
      EXIT.usage,
    );
    expect(unknown.out.stderr).toBe("baton: unknown option --nope (see 'baton probe --help')\n");
    const two = io();
    expect(await runCommand(["a", "b"], two.overrides, spec, async () => EXIT.ok)).toBe(EXIT.usage);
    expect(two.out.stderr).toBe(
      "baton: probe takes one <token|run-id> (see 'baton probe --help')\n",
    );
  });

  it("an error of the body: one line with the store's directory, its exit code, cleanups run", async () => {
    const { out, overrides } = io();
    const cleaned: string[] = [];
    const code = await runCommand(["--store", "runs", "run_x"], overrides, spec, async (s) => {
      s.defer(() => cleaned.push("first"));
      s.defer(() => cleaned.push("second"));
      expect(s.positionals).toEqual(["run_x"]);
      s.store();
      throw new RunNotFoundError("run_x");
    });
    expect(code).toBe(EXIT.usage);
    expect(out.stderr).toBe(
      "baton: no run 'run_x' in /work/project/runs (see 'baton runs'; or pass a bt1. token)\n",
    );
    expect(cleaned).toEqual(["first", "second"]);
  });

  it("fail() prints a described failure with the key redacted and gives its code", async () => {
    const { out, overrides } = io({ OPENAI_API_KEY: KEY });
    const code = await runCommand(["x"], overrides, spec, async (s) =>
      s.fail({ code: EXIT.unreachable, message: `refused ${KEY}` }),
    );
    expect(code).toBe(EXIT.unreachable);
    expect(out.stderr).not.toContain(KEY);
    expect(out.stderr).toMatch(/^baton: refused /);
  });
});

describe("the CLI's store", () => {
  it("is a directory: --store, else BATON_STORE, else .baton/runs, from the cwd", () => {
    const { overrides: full } = io({ BATON_STORE: "/elsewhere" });
    expect(storeDirectory({ store: "mine" }, full)).toBe("/work/project/mine");
    expect(storeDirectory({}, full)).toBe("/elsewhere");
    expect(storeDirectory({}, { ...full, env: { BATON_STORE: " " } })).toBe(
      join("/work/project", ".baton/runs"),
    );
    const opened = openStore({ store: "mine" }, full);
    expect(opened.directory).toBe("/work/project/mine");
    expect(typeof opened.store.save).toBe("function");
  });

  it("notes a run's home server, but never the embedded emulator's or a URL with credentials", () => {
    const connection = {
      client: undefined as never,
      baseURL: "http://127.0.0.1:4010/v1",
      embedded: false,
      secrets: [],
      close: async () => {},
    };
    expect(homeOf(connection)).toEqual({ baseURL: "http://127.0.0.1:4010/v1" });
    expect(homeOf({ ...connection, embedded: true })).toEqual({});
    expect(homeOf({ ...connection, baseURL: "https://u:p@host/v1" })).toEqual({});
  });
});
