/**
 * baton's errors: a few named classes, each with a `code` a program can switch on, in the
 * spirit of the `openai` SDK's own error hierarchy.
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
