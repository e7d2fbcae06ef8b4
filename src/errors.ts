/**
 * baton's errors, all of them: one hierarchy under {@link BatonError}, each class with a `code`
 * a program can switch on, in the spirit of the `openai` SDK's own (`OpenAIError` and its
 * subclasses in one module). Ground floor: any floor throws from here, and this imports
 * nothing of baton.
 *
 * | class | code | thrown by |
 * | --- | --- | --- |
 * | `InvalidContinuationTokenError` | `token_malformed`, `token_foreign`, … | decoding a token |
 * | `InvalidSnapshotError` | `snapshot_corrupt`, `snapshot_foreign`, … | reading a saved run |
 * | `InvalidRunInputError` | `invalid_input` | `startRun` before any request |
 * | `RunNotFoundError` | `run_not_found` | a run id no store holds |
 * | `ProtocolError` | `protocol` | the client port, for a reply that is not the Responses API |
 * | `ClientFailureError` | `client_<kind>` | the client port, for a classified failure |
 * | `InvalidSessionError` | `session_malformed`, … | the agent facade's sessions |
 * | `AgentInputError`, `AgentRunError` | `agent_…`, `agent_run_…` | the agent facade |
 * | `CliError` | `cli_error` | the CLI (with the exit code it ends with) |
 * | `ApiError`, `BodyRefusedError` | `api_<type>`, `body_too_large`, … | the emulator's handlers |
 * | `RunInvariantError`, `TestStepError` | `run_invariants`, `test_step` | the test kit |
 *
 * `BatonError` itself carries codes of its own too: `run_detached`, `store_missing`,
 * `invalid_cursor`.
 */

/** Base class of every error baton throws on purpose. */
export class BatonError extends Error {
  override readonly name: string = "BatonError";
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A continuation token that cannot be decoded: malformed, foreign or from a newer baton. */
export class InvalidContinuationTokenError extends BatonError {
  override readonly name = "InvalidContinuationTokenError";
  constructor(
    readonly reason: "malformed" | "foreign" | "unsupported-version",
    message: string,
  ) {
    super(`token_${reason.replace("-", "_")}`, message);
  }
}

/**
 * A persisted run that cannot be read: corrupt, not a baton run, or from another version.
 * `field` names the first field found wrong (`snapshot.context.sequenceNumber`), when one is.
 */
export class InvalidSnapshotError extends BatonError {
  override readonly name = "InvalidSnapshotError";
  constructor(
    readonly reason: "corrupt" | "foreign" | "unsupported-version",
    message: string,
    readonly field?: string,
  ) {
    super(`snapshot_${reason.replace("-", "_")}`, message);
  }
}

/**
 * An argument baton refuses before doing anything with it (a run id of `../x`, a create
 * request without a model, an option out of range): nothing was sent to the server.
 */
export class InvalidRunInputError extends BatonError {
  override readonly name = "InvalidRunInputError";
  constructor(
    /** The argument's path, e.g. `runId` or `options.retry.jitter`. */
    readonly field: string,
    message: string,
  ) {
    super("invalid_input", message);
  }
}

/** No run with this id in the store. */
export class RunNotFoundError extends BatonError {
  override readonly name = "RunNotFoundError";
  constructor(readonly runId: string) {
    super("run_not_found", `no run '${runId}' in the store`);
  }
}

/** What kind of failure a client call met. */
export type ClientFailureKind =
  /** 429: nothing was done; wait `retryAfterMs` and try again. */
  | "rate-limited"
  /** 5xx: the server failed; it may or may not have acted on the request. */
  | "server"
  /** No connection could be made: the request never reached the server. */
  | "unreachable"
  /** The connection broke after the request may have been sent. */
  | "connection"
  /**
   * No answer within the request's own time limit (`RunOptions.requestTimeoutMs`,
   * `createTimeoutMs`): the server may be reachable, and may have acted on the request.
   */
  | "timeout"
  /** 404: the response does not exist, or has expired (about 10 minutes after creation). */
  | "not-found"
  /** 400 "more than 5 minutes old": the stream can no longer be replayed; poll instead. */
  | "replay-expired"
  /** 400: the response was not created with background and stream; poll instead. */
  | "not-streamable"
  /** 400 "Cannot cancel a completed response.". */
  | "already-finished"
  /** 401 / 403: the key is missing, wrong or not allowed. */
  | "unauthorized"
  /** Any other 4xx: the request itself is wrong; retrying will not help. */
  | "rejected"
  /** The server answered something that is not the Responses API (garbage, wrong shape). */
  | "protocol";

/**
 * A classified client failure: plain data, persisted with the run. Holds no secrets: its message
 * comes from the server or the SDK and is redacted by `classifyClientError`.
 */
export interface ClientFailure {
  kind: ClientFailureKind;
  message: string;
  status?: number;
  code?: string;
  requestId?: string;
  /** From `retry-after-ms` or `retry-after`, when the server sent a sensible one (≤ `MAX_SERVER_WAIT_MS`). */
  retryAfterMs?: number;
  /** From `x-should-retry`, when the server sent one: its word wins, as in the SDK. */
  shouldRetry?: boolean;
}

/**
 * Thrown by the client port when a reply does not have the shape of the Responses API.
 *
 * @example
 * ```ts
 * throw new ProtocolError("the stream did not start with response.created");
 * ```
 */
export class ProtocolError extends BatonError {
  override readonly name: string = "ProtocolError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("protocol", message, options);
  }
}

/**
 * What the `openai` client port throws: a failure already classified and redacted, so that
 * nothing downstream (the machine, the CLI, a user's `catch`) sees the SDK's raw error, whose
 * message, headers and body may carry a key a server echoed. `code` is `client_<kind>`.
 *
 * @example
 * ```ts
 * try { await port.retrieve(id, signal) }
 * catch (err) { if (err instanceof ClientFailureError && err.failure.kind === "not-found") ... }
 * ```
 */
export class ClientFailureError extends BatonError {
  override readonly name = "ClientFailureError";
  /** The HTTP status, when there was one (read by code that tells API errors by `status`). */
  readonly status: number | undefined;
  constructor(readonly failure: ClientFailure) {
    super(`client_${failure.kind.replaceAll("-", "_")}`, failure.message);
    this.status = failure.status;
  }
}

/** A session that cannot be read: not JSON, not a baton session, or from another version. */
export class InvalidSessionError extends BatonError {
  override readonly name = "InvalidSessionError";
  constructor(
    readonly reason: "malformed" | "foreign" | "unsupported-version",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`session_${reason.replace("-", "_")}`, message, options);
  }
}

/** An `agent.run` call that makes no sense: messages with a token, or nothing to run. */
export class AgentInputError extends BatonError {
  override readonly name = "AgentInputError";
  constructor(
    readonly reason: "messages-with-continuation-token" | "no-input",
    message: string,
  ) {
    super(`agent_${reason.replaceAll("-", "_")}`, message);
  }
}

/** What an {@link AgentRunError} reads of the result of a run that gave up (a `RunResult`). */
export interface GaveUpResult {
  reason?: string;
  failure?: ClientFailure;
}

/**
 * A run that ended without the service's verdict (baton gave up; see `result.reason`). The
 * agent facade throws it with the run's whole `RunResult` (`AgentRunError<RunResult>`).
 */
export class AgentRunError<Result extends GaveUpResult = GaveUpResult> extends BatonError {
  override readonly name = "AgentRunError";
  constructor(readonly result: Result) {
    super(
      `agent_run_${(result.reason ?? "gave-up").replaceAll("-", "_")}`,
      `the run gave up (${result.reason ?? "unknown reason"})${
        result.failure ? `: ${result.failure.message}` : ""
      }`,
      result.failure ? { cause: result.failure } : undefined,
    );
  }
}

/** An error meant for the user of the CLI: one line, and the exit code it ends the command with. */
export class CliError extends BatonError {
  override readonly name = "CliError";
  constructor(
    readonly exitCode: number,
    message: string,
    code = "cli_error",
  ) {
    super(code, message);
  }
}

/** The body of every non-2xx JSON reply of the emulator (the Responses API's error envelope). */
export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * An API error the emulator's HTTP layer sends as a JSON error envelope. `code` is baton's
 * (`api_<type>`); the API's own `code` field of the envelope is `apiCode`.
 */
export class ApiError extends BatonError {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly apiCode: string | null = null,
    /** Extra reply headers, e.g. `retry-after`. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`api_${type}`, message);
  }

  /** The envelope for this error. */
  body(): ApiErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.apiCode },
    };
  }
}

/** Why the emulator refused a request body while it came in. */
export class BodyRefusedError extends BatonError {
  override readonly name = "BodyRefusedError";
  constructor(
    readonly reason: "too-large" | "overloaded",
    /** Bytes announced (`content-length`) or received so far when it was refused. */
    readonly bytes: number,
  ) {
    super(`body_${reason.replace("-", "_")}`, `request body refused (${reason}) at ${bytes} bytes`);
  }
}

/** Runs that broke baton's invariants (the test kit's `assertRunInvariants`). */
export class RunInvariantError extends BatonError {
  override readonly name = "RunInvariantError";
  constructor(readonly violations: readonly string[]) {
    super(
      "run_invariants",
      `run invariants violated:\n${violations.map((v) => `  - ${v}`).join("\n")}`,
    );
  }
}

/** A step of a model-based test path that could not be taken (the test kit's path runner). */
export class TestStepError extends BatonError {
  override readonly name = "TestStepError";
  constructor(message: string) {
    super("test_step", message);
  }
}
