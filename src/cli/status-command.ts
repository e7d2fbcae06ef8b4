/**
 * `baton status <token|run-id>`: one retrieve of the response, and what the store knows of the
 * run. Prints `key  value` lines on stdout (or JSON with `--json`).
 */
import { parseArgs } from "node:util";
import { responseIdOf } from "../persistence/envelope.js";
import { openAIResponsesClient } from "../services/openai-responses-client.js";
import type { ResponseState } from "../services/responses-client.js";
import { CONNECTION_OPTIONS } from "./args.js";
import { boundedRequest, requestTimeoutMs } from "./bounded-request.js";
import { runCommand } from "./command.js";
import { describeRequestFailure } from "./describe-error.js";
import { EXIT } from "./exit-codes.js";
import { formatAge, formatTable } from "./format.js";
import type { CliIo } from "./io.js";
import { readRunMeta } from "./run-meta.js";
import { resolveTarget, type Target } from "./targets.js";
import { STATUS_USAGE } from "./usage.js";

/** What `baton status` reports (the `--json` shape). */
export interface StatusReport {
  runId: string | null;
  /** The run's state in the store (null for a token no stored run follows). */
  state: string | null;
  mode: string | null;
  outcome: string | null;
  savedAt: number | null;
  /** Characters of the answer printed by baton so far (stored runs). */
  printedChars: number | null;
  responseId: string | null;
  status: string | null;
  /** Characters of output text on the server so far. */
  chars: number | null;
  createdAt: number | null;
  token: string | null;
}

/** The store's side of a target. */
export function storedReport(target: Target): StatusReport {
  if (target.kind === "token") {
    return {
      runId: null,
      state: null,
      mode: target.token.sequenceNumber === undefined ? "poll" : "stream",
      outcome: null,
      savedAt: null,
      printedChars: null,
      responseId: target.token.responseId,
      status: null,
      chars: null,
      createdAt: null,
      token: target.text,
    };
  }
  const persisted = target.persisted;
  const context = persisted.snapshot.context;
  return {
    runId: persisted.runId,
    state: persisted.state,
    mode: context.mode,
    outcome: context.result?.outcome ?? null,
    savedAt: persisted.savedAt,
    printedChars: context.deliveredChars,
    responseId: responseIdOf(persisted),
    status: persisted.status,
    chars: null,
    createdAt: null,
    token: persisted.token,
  };
}

/** Adds the server's side (one retrieve) to a report. */
export function withResponse(report: StatusReport, response: ResponseState): StatusReport {
  return {
    ...report,
    status: response.status,
    chars: response.outputText.length,
    createdAt: response.createdAt === null ? null : response.createdAt * 1000,
  };
}

/** The report as aligned `key  value` lines. */
export function formatReport(report: StatusReport, now = Date.now()): string {
  const rows: string[][] = [];
  if (report.runId !== null) rows.push(["run", report.runId]);
  if (report.state !== null) {
    const saved = report.savedAt !== null ? ` (saved ${formatAge(now - report.savedAt)} ago)` : "";
    const outcome = report.outcome !== null ? `: ${report.outcome}` : "";
    rows.push(["state", `${report.state}${outcome}${saved}`]);
  }
  if (report.mode !== null) rows.push(["mode", report.mode]);
  rows.push(["response", report.responseId ?? "(none yet)"]);
  if (report.status !== null) rows.push(["status", report.status]);
  if (report.chars !== null) rows.push(["chars", String(report.chars)]);
  if (report.printedChars !== null) rows.push(["printed", String(report.printedChars)]);
  if (report.createdAt !== null) rows.push(["age", formatAge(now - report.createdAt)]);
  if (report.token !== null) rows.push(["token", report.token]);
  return formatTable(rows);
}

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
