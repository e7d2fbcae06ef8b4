/**
 * `baton status <token|run-id>`: one retrieve of the response, and what the store knows of the
 * run. Prints `key  value` lines on stdout (or JSON with `--json`).
 */
import { parseArgs } from "node:util";
import { openAIResponsesClient } from "../services/openai-responses-client.js";
import type { ResponseState } from "../services/responses-client.js";
import { CONNECTION_OPTIONS } from "./args.js";
import { boundedRequest, requestTimeoutMs } from "./bounded-request.js";
import { runCommand } from "./command.js";
import { describeRequestFailure } from "./describe-error.js";
import { EXIT } from "./exit-codes.js";
import type { CliIo } from "./io.js";
import { readRunMeta } from "./run-meta.js";
import { formatReport, storedReport, withResponse } from "./status-report.js";
import { resolveTarget } from "./targets.js";
import { STATUS_USAGE } from "./usage.js";

/**
 * Runs `baton status`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runStatusCommand(["run_0123456789abcdef01234567"]);
 * ```
 */
export function runStatusCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const spec = { name: "status", usage: STATUS_USAGE, parse, oneTarget: true };
  return runCommand(argv, overrides, spec, async (session) => {
    const { io, values } = session;
    const opened = session.store();
    const target = await resolveTarget(session.positionals[0], opened, "status");
    let report = storedReport(target);
    if (report.responseId !== null) {
      // The server the run was created on, unless --base-url says otherwise.
      const meta =
        target.kind === "stored" ? await readRunMeta(opened.directory, target.persisted.runId) : {};
      const connection = await session.connect(meta.baseURL);
      let response: ResponseState;
      try {
        const port = openAIResponsesClient(connection.client);
        const responseId = report.responseId;
        ({ response } = await boundedRequest(
          "retrieve",
          (signal) => port.retrieve(responseId, signal),
          requestTimeoutMs(io.env),
        ));
      } catch (err) {
        return session.fail(describeRequestFailure(err, connection.baseURL));
      }
      report = withResponse(report, response);
    }
    io.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`,
    );
    return EXIT.ok;
  });
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: { ...CONNECTION_OPTIONS, json: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
}
