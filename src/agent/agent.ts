/**
 * An `Agent` facade for people coming from microsoft/agent-framework: `new Agent({...})`,
 * `agent.createSession()`, `agent.run(messages, { session, stream, background,
 * continuationToken })`, with agent-framework's continuation-token patterns (poll a background
 * response with its token; resume an interrupted stream from the last token).
 *
 * Every call goes through baton's run machine (`startRun` / `rehydrateRun`); the facade never
 * talks to the SDK itself. Tokens are baton's (`bt1.`, the .NET shape: response id plus, for a
 * stream, the last sequence number), so a resumed stream continues server-side with
 * `starting_after`: no replay, no repeated text, no second create.
 */
import { waitFor } from "xstate";
import { AsyncQueue } from "../async-queue.js";
import {
  type ContinuationToken,
  decodeContinuationToken,
  encodeContinuationToken,
} from "../continuation-token.js";
import { AgentInputError, AgentRunError } from "../errors.js";
import type { RunOptions, RunResult } from "../machines/run-types.js";
import { attachRun, type ClientLike, type Run, rehydrateRun, startRun } from "../run/index.js";
import {
  type InputMessage,
  isTerminalStatus,
  type ResponseStatus,
  type ResponseUsage,
} from "../services/responses-client.js";
import { AgentSession } from "./session.js";

/** The model an agent uses when none is given (the seed's). */
export const DEFAULT_AGENT_MODEL = "o3";

/** How to build an agent. */
export interface AgentOptions {
  name: string;
  instructions?: string;
  /** An `openai` client instance, or any implementation of baton's client port. */
  client: ClientLike;
  /** Default {@link DEFAULT_AGENT_MODEL}. */
  model?: string;
  maxOutputTokens?: number;
  /** Run machine options for every run of this agent (poll interval, retries, watchdogs). */
  runOptions?: Partial<RunOptions>;
}

/** A message of a conversation turn. */
export type AgentMessage = InputMessage;

/** What `agent.run` accepts as messages: a user string, a message, or a list of them. */
export type AgentInput = string | AgentMessage | ReadonlyArray<string | AgentMessage>;

/** Options of one `agent.run` call. */
export interface AgentRunOptions {
  /** The conversation: chained through `previous_response_id`. */
  session?: AgentSession;
  /** Return an async iterable of updates instead of a promise of the response. */
  stream?: boolean;
  /**
   * Non-streaming only: return right after the create call, with a continuation token to poll
   * with (false: wait for the final response). Streams always run in background mode.
   */
  background?: boolean;
  /**
   * Carry on an existing response instead of starting one (no messages allowed). Non-streaming:
   * exactly one retrieve, then return. Streaming: resume after the token's sequence number.
   */
  continuationToken?: string | null;
  /** Run machine options for this call, over the agent's. */
  runOptions?: Partial<RunOptions>;
}

/** The answer of a non-streaming run (or of one poll). */
export interface AgentResponse {
  /** The output text so far (all of it once the response is terminal). */
  text: string;
  /** Set while the response is queued or in progress; null once it is terminal. */
  continuationToken: string | null;
  status: ResponseStatus;
  responseId: string;
  /** Known once the response is terminal. */
  usage: ResponseUsage | null;
  /** The service's error, for `failed`. */
  error: { code: string; message: string } | null;
  incompleteReason: string | null;
}

/** One update of a streaming run. */
export interface AgentResponseUpdate {
  /** Output text of this update ("" for status updates and the final one). */
  text: string;
  /** The last stream event the update covers (null when it has no event of its own). */
  sequenceNumber: number | null;
  /**
   * The token to resume from: always the last non-null one, so resuming from the token of the
   * last update read never repeats text; null only on the final update.
   */
  continuationToken: string | null;
  responseId: string;
  /** The response's status as of this update. */
  status: ResponseStatus | null;
  /** The last update of the stream (terminal status, usage, no token). */
  final: boolean;
  /** Final update only. */
  usage: ResponseUsage | null;
  /** Final update only: the service's error, for `failed`. */
  error: { code: string; message: string } | null;
}

export { AgentInputError, AgentRunError } from "../errors.js";

/** What a call resolved to, after validation. */
type Plan =
  | { kind: "new"; input: string | ReadonlyArray<InputMessage> }
  | { kind: "continue"; token: string; decoded: ContinuationToken };

/**
 * An agent over baton's run machine, shaped like agent-framework's `Agent`.
 *
 * @example
 * ```ts
 * import OpenAI from "openai";
 * const agent = new Agent({ name: "researcher", instructions: "Be concise.", client: new OpenAI() });
 * const session = agent.createSession();
 * let response = await agent.run("Explain relativity.", { session, background: true });
 * while (response.continuationToken) {
 *   await sleep(2000);
 *   response = await agent.run(undefined, { session, continuationToken: response.continuationToken });
 * }
 * console.log(response.text);
 * ```
 */
export class Agent {
  readonly name: string;
  readonly instructions: string | undefined;
  readonly model: string;
  readonly #client: ClientLike;
  readonly #maxOutputTokens: number | undefined;
  readonly #runOptions: Partial<RunOptions> | undefined;

  constructor(options: AgentOptions) {
    if (!options || typeof options.name !== "string" || options.name === "") {
      throw new TypeError("an Agent needs a name");
    }
    if (!options.client) throw new TypeError("an Agent needs a client");
    this.name = options.name;
    this.instructions = options.instructions;
    this.model = options.model ?? DEFAULT_AGENT_MODEL;
    this.#client = options.client;
    this.#maxOutputTokens = options.maxOutputTokens;
    this.#runOptions = options.runOptions;
  }

  /** A new, empty conversation. */
  createSession(): AgentSession {
    return new AgentSession({ agentName: this.name });
  }

  /**
   * Runs the agent.
   *
   * - `stream: true`: an async iterable of {@link AgentResponseUpdate}; breaking out of the
   *   loop disconnects (the response keeps going; resume from the last update's token).
   * - otherwise a promise of {@link AgentResponse}: the final one, or with `background: true`
   *   the one right after the create (token set), or with a `continuationToken` the result of
   *   exactly one retrieve (token null once terminal).
   *
   * Throws {@link AgentInputError} for messages together with a token (as .NET does) or for
   * neither, and `InvalidContinuationTokenError` for a token baton cannot read.
   */
  run(
    messages: AgentInput | null | undefined,
    options: AgentRunOptions & { stream: true },
  ): AsyncGenerator<AgentResponseUpdate, void, undefined>;
  run(
    messages?: AgentInput | null,
    options?: AgentRunOptions & { stream?: false },
  ): Promise<AgentResponse>;
  run(
    messages?: AgentInput | null,
    options?: AgentRunOptions,
  ): Promise<AgentResponse> | AsyncGenerator<AgentResponseUpdate, void, undefined>;
  run(
    messages?: AgentInput | null,
    options: AgentRunOptions = {},
  ): Promise<AgentResponse> | AsyncGenerator<AgentResponseUpdate, void, undefined> {
    const plan = planOf(messages, options.continuationToken);
    if (options.stream) return this.#stream(plan, options);
    if (plan.kind === "continue") return this.#pollOnce(plan.decoded.responseId, options);
    return options.background
      ? this.#startBackground(plan, options)
      : this.#runToEnd(plan, options);
  }

  #options(options: AgentRunOptions): Partial<RunOptions> | undefined {
    if (!this.#runOptions && !options.runOptions) return undefined;
    return { ...this.#runOptions, ...options.runOptions };
  }

  #start(plan: Extract<Plan, { kind: "new" }>, options: AgentRunOptions, stream: boolean): Run {
    const runOptions = this.#options(options);
    const previous = options.session?.lastResponseId ?? undefined;
    return startRun(
      { client: this.#client },
      {
        model: this.model,
        input: plan.input,
        stream,
        ...(this.instructions !== undefined ? { instructions: this.instructions } : {}),
        ...(this.#maxOutputTokens !== undefined ? { maxOutputTokens: this.#maxOutputTokens } : {}),
        ...(previous !== undefined ? { previousResponseId: previous } : {}),
      },
      runOptions ? { options: runOptions } : {},
    );
  }

  /** Not background: follow the response (by polling) to its end. */
  async #runToEnd(
    plan: Extract<Plan, { kind: "new" }>,
    options: AgentRunOptions,
  ): Promise<AgentResponse> {
    const run = this.#start(plan, options, false);
    return finalResponse(await run.result(), options.session);
  }

  /** Background: return as soon as the create call has answered, with a token to poll with. */
  async #startBackground(
    plan: Extract<Plan, { kind: "new" }>,
    options: AgentRunOptions,
  ): Promise<AgentResponse> {
    const run = this.#start(plan, options, false);
    const snapshot = await waitFor(
      run.actor,
      (s) => s.status !== "active" || !(s.matches("idle") || s.matches("started")),
    );
    if (snapshot.status !== "active") return finalResponse(await run.result(), options.session);
    const token = run.token;
    const { responseId, status } = snapshot.context;
    // Stop following it here: the next agent.run with the token polls once.
    await run.detach();
    if (token === null || responseId === null) throw new Error("a created run has no token");
    return {
      text: "",
      continuationToken: token,
      status: status ?? "queued",
      responseId,
      usage: null,
      error: null,
      incompleteReason: null,
    };
  }

  /**
   * One poll: a run rehydrated from the token (poll mode) makes exactly one successful
   * retrieve, then is stopped. A transient failure is retried by the machine's policy first;
   * a terminal response finishes the run and the token becomes null.
   */
  async #pollOnce(responseId: string, options: AgentRunOptions): Promise<AgentResponse> {
    const runOptions = this.#options(options);
    const run = await rehydrateRun(
      { client: this.#client },
      {
        token: encodeContinuationToken({ responseId }),
        ...(runOptions ? { options: runOptions } : {}),
      },
    );
    let text = "";
    const deltas = run.on("delta", (delta) => {
      text += delta.text;
    });
    try {
      const snapshot = await waitFor(
        run.actor,
        (s) =>
          s.status !== "active" ||
          // Back to waiting after a successful retrieve (a failed one leaves attempts > 0).
          (s.matches({ polling: "waiting" }) &&
            s.context.status !== null &&
            s.context.attempts === 0),
      );
      if (snapshot.status !== "active") return finalResponse(await run.result(), options.session);
      const token = run.token;
      const status = snapshot.context.status;
      await run.detach();
      if (token === null || status === null) throw new Error("a polled run has no token");
      return {
        text,
        continuationToken: token,
        status,
        responseId,
        usage: null,
        error: null,
        incompleteReason: null,
      };
    } finally {
      deltas.unsubscribe();
    }
  }

  async *#stream(
    plan: Plan,
    options: AgentRunOptions,
  ): AsyncGenerator<AgentResponseUpdate, void, undefined> {
    const run =
      plan.kind === "new"
        ? this.#start(plan, options, true)
        : plan.decoded.sequenceNumber === undefined
          ? this.#replay(plan.decoded.responseId, options)
          : await rehydrateRun(
              { client: this.#client },
              {
                token: plan.token,
                ...(this.#options(options) ? { options: this.#options(options) } : {}),
              },
            );
    const session = options.session;
    let lastSequence =
      plan.kind === "continue" ? (plan.decoded.sequenceNumber ?? -1) : Number.NEGATIVE_INFINITY;
    let lastToken: string | null = plan.kind === "continue" ? plan.token : null;
    const responseId = () =>
      run.responseId ?? (plan.kind === "continue" ? plan.decoded.responseId : "");
    /** The cursor, when it moved past what updates reported so far (never a repeat). */
    const freshSequence = (): number | null => {
      const sequence = run.getSnapshot().context.sequenceNumber;
      if (sequence === null || sequence <= lastSequence) return null;
      lastSequence = sequence;
      lastToken = encodeContinuationToken({ responseId: responseId(), sequenceNumber: sequence });
      return sequence;
    };

    const queue = new AsyncQueue<AgentResponseUpdate>();
    const push = (
      update: Omit<AgentResponseUpdate, "responseId" | "final" | "usage" | "error">,
    ) => {
      queue.push({ ...update, responseId: responseId(), final: false, usage: null, error: null });
    };
    const subscriptions = [
      run.on("delta", (delta) => {
        let sequenceNumber: number | null = null;
        if (delta.sequenceNumber !== undefined && delta.sequenceNumber > lastSequence) {
          sequenceNumber = delta.sequenceNumber;
          lastSequence = sequenceNumber;
          lastToken = encodeContinuationToken({ responseId: responseId(), sequenceNumber });
        }
        push({
          text: delta.text,
          sequenceNumber,
          continuationToken: lastToken,
          status: run.getSnapshot().context.status,
        });
      }),
      run.on("status", (event) => {
        // The terminal status comes with the final update.
        if (isTerminalStatus(event.status)) return;
        const sequenceNumber = freshSequence();
        lastToken ??= run.token;
        push({ text: "", sequenceNumber, continuationToken: lastToken, status: event.status });
      }),
    ];
    let outcome: { result: RunResult } | { error: unknown } | undefined;
    run.result().then(
      (result) => {
        outcome = { result };
        queue.end();
      },
      (error: unknown) => {
        outcome = { error };
        queue.end();
      },
    );

    try {
      yield* queue;
      if (!outcome) throw new Error("the update queue ended before the run");
      if ("error" in outcome) throw outcome.error;
      const result = outcome.result;
      if (result.outcome === "gave-up") throw new AgentRunError<RunResult>(result);
      if (result.outcome === "completed" && result.responseId) {
        session?.recordCompleted(result.responseId);
      }
      yield {
        text: "",
        sequenceNumber: freshSequence(),
        continuationToken: null,
        responseId: result.responseId ?? responseId(),
        status: result.outcome,
        final: true,
        usage: result.usage,
        error: result.error,
      };
    } finally {
      for (const subscription of subscriptions) subscription.unsubscribe();
      if (run.getSnapshot().status === "active") {
        // The consumer stopped reading: disconnect, never cancel. The response goes on.
        run.disconnect();
        await run.detach();
      }
    }
  }

  /** A stream from a poll token (no sequence number): replay the stream from its start. */
  #replay(responseId: string, options: AgentRunOptions): Run {
    const runOptions = this.#options(options);
    return attachRun(
      { client: this.#client },
      { responseId, mode: "stream", ...(runOptions ? { options: runOptions } : {}) },
    );
  }
}

function planOf(messages: AgentInput | null | undefined, token: string | null | undefined): Plan {
  const input = normaliseMessages(messages);
  if (token !== undefined && token !== null) {
    if (input !== null) {
      throw new AgentInputError(
        "messages-with-continuation-token",
        "messages cannot be supplied together with a continuationToken: a token carries on an existing response; pass undefined (or []) as messages",
      );
    }
    return { kind: "continue", token, decoded: decodeContinuationToken(token) };
  }
  if (input === null) {
    throw new AgentInputError(
      "no-input",
      "nothing to run: pass messages, or a continuationToken to carry on a response",
    );
  }
  return { kind: "new", input };
}

/** Messages as a create call's `input`; null when there are none. */
function normaliseMessages(
  messages: AgentInput | null | undefined,
): string | ReadonlyArray<InputMessage> | null {
  if (messages === undefined || messages === null) return null;
  if (typeof messages === "string") return messages;
  const list: ReadonlyArray<string | AgentMessage> = isMessageList(messages)
    ? messages
    : [messages];
  if (list.length === 0) return null;
  return list.map((message) => {
    if (typeof message === "string") return { role: "user", content: message };
    if (
      typeof message !== "object" ||
      message === null ||
      typeof message.role !== "string" ||
      typeof message.content !== "string"
    ) {
      throw new TypeError("a message is a string or { role, content: string }");
    }
    return { role: message.role, content: message.content };
  });
}

function isMessageList(
  messages: AgentMessage | ReadonlyArray<string | AgentMessage>,
): messages is ReadonlyArray<string | AgentMessage> {
  return Array.isArray(messages);
}

function finalResponse(result: RunResult, session: AgentSession | undefined): AgentResponse {
  if (result.outcome === "gave-up") throw new AgentRunError<RunResult>(result);
  if (result.outcome === "completed" && result.responseId) {
    session?.recordCompleted(result.responseId);
  }
  return {
    text: result.text,
    continuationToken: null,
    status: result.outcome,
    responseId: result.responseId ?? "",
    usage: result.usage,
    error: result.error,
    incompleteReason: result.incompleteReason,
  };
}
