/**
 * The progress of a followed run, on stderr: a live line on a terminal, plain lines otherwise.
 */
import { type RunStateName, subState, topState } from "../machines/run-state.js";
import type { Run } from "../run/index.js";
import { formatAge, formatElapsed } from "./format.js";
import { type CliIo, say } from "./io.js";
import { redact, sanitize } from "./sanitize.js";

/**
 * Progress of a run on stderr. On a terminal: one line redrawn in place (state, status, polls,
 * characters, elapsed). Otherwise: a plain line per notable change once the response exists
 * (status, interruption, resumption, fallback to polling); nothing per delta.
 *
 * When stdout is the same terminal, the live line is drawn only until the answer starts (it
 * would otherwise be drawn over the answer's text).
 *
 * @example
 * ```ts
 * const progress = new Progress(io, connection.secrets);
 * progress.attach(run);
 * // … progress.beforeText() before each write of answer text, progress.addChars(n) after …
 * progress.stop();
 * ```
 */
export class Progress {
  readonly #io: CliIo;
  readonly #live: boolean;
  readonly #sharedScreen: boolean;
  readonly #secrets: readonly string[];
  readonly #startedAt = Date.now();
  #run: Run | undefined;
  #state: RunStateName = "idle";
  #status: string | null = null;
  #polls = 0;
  #chars = 0;
  #retry: string | null = null;
  #drawn = false;
  #drawnText = "";
  #drawnAt = 0;
  #suspended = false;
  #timer: NodeJS.Timeout | undefined;
  #lastPlain: string | undefined;
  /** Plain lines wait until the run has been announced (its id and token come first). */
  #ready = false;
  #shownStatus: string | null = null;
  #unsubscribe: (() => void) | undefined;

  constructor(
    io: CliIo,
    secrets: readonly string[] = [],
    options: { answerOnStdout?: boolean } = {},
  ) {
    this.#io = io;
    this.#live = io.stderr.isTTY === true;
    // With --output the answer goes to a file: the live line may stay on screen throughout.
    this.#sharedScreen = this.#live && io.stdout.isTTY === true && options.answerOnStdout !== false;
    this.#secrets = secrets;
  }

  /** Characters of answer printed so far. */
  get chars(): number {
    return this.#chars;
  }

  attach(run: Run): void {
    this.#run = run;
    let previous: unknown;
    // A failure in the restored snapshot is an earlier process's: not shown as this one's retry.
    const restoredFailure = run.getSnapshot().context.lastFailure;
    const onSnapshot = () => {
      const snapshot = run.getSnapshot();
      const context = snapshot.context;
      const state = topState(snapshot);
      // A poll is counted as it starts (the run enters `polling.fetching`).
      const fetching = subState(snapshot.value, "polling") === "fetching";
      const wasFetching = subState(previous, "polling") === "fetching";
      if (fetching && !wasFetching) this.#polls++;
      previous = snapshot.value;
      const retrying =
        context.lastFailure !== null &&
        context.lastFailure !== restoredFailure &&
        (context.attempts > 0 || state === "interrupted") &&
        state !== "done";
      this.#retry = retrying
        ? `retry ${Math.max(context.attempts, context.resumeAttempts)} (${context.lastFailure?.kind})`
        : null;
      const stateChanged = state !== this.#state;
      const statusChanged = context.status !== this.#shownStatus;
      this.#state = state;
      this.#status = context.status;
      if (!this.#live && this.#ready && state !== "done") {
        if (stateChanged && state === "interrupted") {
          this.#plain(
            `stream interrupted (${context.interruption ?? "unknown"}${context.lastFailure ? `: ${context.lastFailure.message}` : ""}); resuming`,
          );
        } else if (statusChanged && context.status !== null) {
          this.#shownStatus = context.status;
          this.#plain(`status ${context.status}`);
        } else if (this.#retry && context.attempts === 1 && state === "polling") {
          this.#plain(`poll failed (${context.lastFailure?.message ?? "?"}); retrying`);
        }
      }
      this.#draw(false);
    };
    const subscription = run.subscribe({ next: onSnapshot, error: () => {} });
    const segments = run.on("segment", (segment) => {
      if (this.#live || !this.#ready) return;
      if (segment.kind === "continuation") {
        this.#plain(`stream resumed after event ${segment.startingAfter}`);
      } else if (segment.kind === "replay") {
        this.#plain("stream reopened from the start (already printed events are skipped)");
      } else if (segment.kind === "poll-fallback") {
        this.#plain("the stream cannot be resumed; polling for the rest");
      }
    });
    this.#unsubscribe = () => {
      subscription.unsubscribe();
      segments.unsubscribe();
    };
    onSnapshot();
    if (this.#live) {
      this.#timer = setInterval(() => this.#draw(true), 200);
      this.#timer.unref();
    }
  }

  /** The run was announced: plain progress lines may follow (from the status it had then). */
  markReady(): void {
    this.#ready = true;
    this.#shownStatus = this.#status;
  }

  /** The response's status as last seen. */
  get status(): string | null {
    return this.#status;
  }

  /** Called before answer text goes to stdout. */
  beforeText(): void {
    if (this.#sharedScreen && !this.#suspended) {
      this.#clear();
      this.#suspended = true;
    }
  }

  addChars(count: number): void {
    this.#chars += count;
  }

  /** A permanent line (`baton: …`) above the live line. */
  line(message: string): void {
    this.#clear();
    say(this.#io, message, this.#secrets);
    this.#draw(true);
  }

  /** Stops drawing and clears the live line. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#clear();
    this.#suspended = true;
  }

  /** How long since the progress started, as shown. */
  elapsed(): string {
    return formatElapsed(Date.now() - this.#startedAt);
  }

  #plain(message: string): void {
    if (message === this.#lastPlain) return;
    this.#lastPlain = message;
    say(this.#io, message, this.#secrets);
  }

  /** Redraws the live line if it changed; between timer ticks, at most every 80 ms. */
  #draw(force: boolean): void {
    if (!this.#live || this.#suspended || this.#run === undefined) return;
    const now = Date.now();
    if (!force && now - this.#drawnAt < 80) return;
    const parts: string[] = [this.#state];
    if (this.#status) parts.push(this.#status);
    if (this.#polls > 0) parts.push(`${this.#polls} poll${this.#polls === 1 ? "" : "s"}`);
    parts.push(`${this.#chars} chars`);
    parts.push(formatAge(now - this.#startedAt));
    if (this.#retry) parts.push(this.#retry);
    let text = redact(sanitize(`baton: ${parts.join(" · ")}`), this.#secrets);
    const columns = this.#io.stderr.columns;
    if (columns && text.length > columns - 1) text = text.slice(0, Math.max(0, columns - 1));
    if (this.#drawn && text === this.#drawnText) return;
    this.#io.stderr.write(`\r\x1b[2K${text}`);
    this.#drawn = true;
    this.#drawnText = text;
    this.#drawnAt = now;
  }

  #clear(): void {
    if (this.#drawn) {
      this.#io.stderr.write("\r\x1b[2K");
      this.#drawn = false;
    }
  }
}
