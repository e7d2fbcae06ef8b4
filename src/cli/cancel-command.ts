/**
 * `baton cancel <token|run-id>`: cancels the response on the server (idempotent: a response
 * that already finished stays as it is) and prints its final status. A run in the store is
 * then brought to its end there too, so that `baton runs` shows it finished.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CliError } from "../errors.js";
import { loadRun, rehydrateRun } from "../run/index.js";
import { classifyClientError } from "../services/client-failure.js";
import { openAIResponsesClient } from "../services/openai-responses-client.js";
import {
  isTerminalStatus,
  type ResponseState,
  type ResponsesClient,
} from "../services/responses-client.js";
import { CONNECTION_OPTIONS } from "./args.js";
import { boundedRequest, requestTimeoutMs } from "./bounded-request.js";
import { runCommand } from "./command.js";
import { describeRequestFailure } from "./describe-error.js";
import { EXIT } from "./exit-codes.js";
import { type CliIo, say } from "./io.js";
import { readRunMeta, updateRunMeta } from "./run-meta.js";
import { settled } from "./run-waits.js";
import { formatReport, storedReport, withResponse } from "./status-report.js";
import { resolveTarget, type Target } from "./targets.js";
import { CANCEL_USAGE } from "./usage.js";

/** How long to wait for a cancel to land (the service may answer before it is final). */
const CONFIRM_TIMEOUT_MS = 15_000;

/**
 * Runs `baton cancel`; resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runCancelCommand(["run_0123456789abcdef01234567"]);
 * ```
 */
export function runCancelCommand(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const spec = { name: "cancel", usage: CANCEL_USAGE, parse, oneTarget: true };
  return runCommand(argv, overrides, spec, async (session) => {
    const { io } = session;
    const opened = session.store();
    const { store, directory } = opened;
    const target = await resolveTarget(session.positionals[0], opened, "cancel");
    const report = storedReport(target);
    const responseId = report.responseId;
    if (responseId === null) {
      throw new CliError(
        EXIT.failed,
        `${report.runId} has no response (its create never answered): nothing to cancel`,
      );
    }
    const meta =
      target.kind === "stored" ? await readRunMeta(directory, target.persisted.runId) : {};
    const connection = await session.connect(meta.baseURL);
    const port = openAIResponsesClient(connection.client);
    let response: ResponseState;
    try {
      response = await cancelAndConfirm(port, responseId, requestTimeoutMs(io.env));
    } catch (err) {
      return session.fail(describeRequestFailure(err, connection.baseURL));
    }
    // Bring the stored run to its end as well (it sees the cancelled response and saves it).
    let after: Target = target;
    // As saved now: a follower elsewhere may have moved it on (or finished it) meanwhile.
    const current =
      target.kind === "stored"
        ? ((await loadRun(store, target.persisted.runId).catch(() => undefined)) ??
          target.persisted)
        : undefined;
    if (target.kind === "stored" && current) after = { kind: "stored", persisted: current };
    if (target.kind === "stored" && current && current.state !== "done") {
      const delivered = current.snapshot.context.deliveredChars;
      if (delivered !== null) {
        // Ending the run here counts the whole answer as delivered, though nobody printed the
        // end of it: note what its reader has seen, so that `baton resume` prints the rest.
        await updateRunMeta(directory, target.persisted.runId, { printed: delivered });
      }
      const run = await rehydrateRun({ client: connection.client, store }, { persisted: current });
      run.actor.send({ type: "run.cancel" });
      const ended = await Promise.race([
        settled(run).then((status) => status === "done"),
        sleep(CONFIRM_TIMEOUT_MS, undefined, { ref: false }).then(() => false),
      ]);
      // The report says where this process left the run (a follower elsewhere may save its
      // own state in between: reading the store back could show that instead).
      if (ended) await run.flush();
      const persisted = ended ? run.toPersisted() : await run.detach();
      after = { kind: "stored", persisted };
    }
    const final = withResponse(storedReport(after), response);
    io.stdout.write(`${formatReport({ ...final, token: null })}\n`);
    if (!isTerminalStatus(response.status)) {
      say(
        io,
        `cancel requested, but the response is still ${response.status}; check with: baton status ${report.runId ?? report.token}`,
      );
      return EXIT.failed;
    }
    if (response.status !== "cancelled") {
      say(io, `the response had already finished (${response.status}) before the cancel`);
    }
    return EXIT.ok;
  });
}

/** Cancels (a finished response answers 400 "cannot cancel"), then reads until it is final. */
async function cancelAndConfirm(
  port: ResponsesClient,
  responseId: string,
  timeoutMs: number,
): Promise<ResponseState> {
  let response: ResponseState | undefined;
  try {
    response = await boundedRequest(
      "cancel",
      (signal) => port.cancel(responseId, signal),
      timeoutMs,
    );
  } catch (err) {
    if (classifyClientError(err).kind !== "already-finished") throw err;
  }
  const deadline = Date.now() + CONFIRM_TIMEOUT_MS;
  while (response === undefined || !isTerminalStatus(response.status)) {
    if (response !== undefined && Date.now() > deadline) return response;
    if (response !== undefined) await sleep(250);
    response = (
      await boundedRequest("retrieve", (signal) => port.retrieve(responseId, signal), timeoutMs)
    ).response;
  }
  return response;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: { ...CONNECTION_OPTIONS },
    allowPositionals: true,
    strict: true,
  });
}
