/**
 * What `baton status` and `baton cancel` print about a run: the store's side (state, mode,
 * outcome, what was printed) and the server's (status, characters, age), as aligned lines.
 */
import { responseIdOf } from "../persistence/envelope.js";
import type { ResponseState } from "../services/responses-client.js";
import { formatAge, formatTable } from "./format.js";
import type { Target } from "./targets.js";

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

/**
 * The store's side of a target.
 *
 * @example
 * ```ts
 * storedReport(await resolveTarget(arg, opened, "status")).responseId; // "resp_…" or null
 * ```
 */
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

/**
 * Adds the server's side (one retrieve) to a report.
 *
 * @example
 * ```ts
 * withResponse(report, (await port.retrieve(responseId)).response).status; // "in_progress"
 * ```
 */
export function withResponse(report: StatusReport, response: ResponseState): StatusReport {
  return {
    ...report,
    status: response.status,
    chars: response.outputText.length,
    createdAt: response.createdAt === null ? null : response.createdAt * 1000,
  };
}

/**
 * The report as aligned `key  value` lines.
 *
 * @example
 * ```ts
 * io.stdout.write(`${formatReport(report)}\n`); // "run       run_…\nstate     polling …"
 * ```
 */
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
