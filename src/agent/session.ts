/**
 * An agent session: the conversation an {@link Agent} carries from one run to the next.
 *
 * Like agent-framework's sessions over the Responses API, the history lives on the server: the
 * session only remembers the id of the last completed response, and the next run passes it as
 * `previous_response_id`. A session is plain data, so it serialises to JSON (with a format name
 * and a version) and comes back with {@link AgentSession.fromJSON} in another process.
 */
import { randomBytes } from "node:crypto";
import { InvalidSessionError } from "../errors.js";

export const AGENT_SESSION_FORMAT = "baton.agent-session";
export const AGENT_SESSION_VERSION = 1;

/** A session as JSON. */
export interface AgentSessionJSON {
  format: typeof AGENT_SESSION_FORMAT;
  version: number;
  sessionId: string;
  /** Name of the agent that created the session (informative only). */
  agentName: string | null;
  /** The last completed response of the conversation: the next run's `previous_response_id`. */
  lastResponseId: string | null;
}

export { InvalidSessionError } from "../errors.js";

/** What a new session starts from (all optional). */
export interface AgentSessionInit {
  sessionId?: string;
  agentName?: string | null;
  lastResponseId?: string | null;
}

/**
 * The conversation state of an agent: `agent.createSession()` makes one; pass it to each
 * `agent.run(...)` of the same conversation.
 *
 * @example
 * ```ts
 * const session = agent.createSession();
 * await agent.run("My name is Ada.", { session });
 * const saved = JSON.stringify(session); // or session.toJSON()
 * const again = AgentSession.fromJSON(saved);
 * await agent.run("What is my name?", { session: again });
 * ```
 */
export class AgentSession {
  readonly sessionId: string;
  readonly agentName: string | null;
  #lastResponseId: string | null;

  constructor(init: AgentSessionInit = {}) {
    this.sessionId = init.sessionId ?? `session_${randomBytes(12).toString("hex")}`;
    this.agentName = init.agentName ?? null;
    this.#lastResponseId = init.lastResponseId ?? null;
  }

  /** The last completed response: the next run's `previous_response_id` (null: none yet). */
  get lastResponseId(): string | null {
    return this.#lastResponseId;
  }

  /**
   * Records a completed response as the new end of the conversation. The agent calls this when
   * a run of this session completes; call it yourself only to graft a response onto a session.
   */
  recordCompleted(responseId: string): void {
    if (typeof responseId !== "string" || responseId === "") {
      throw new TypeError("recordCompleted needs a response id");
    }
    this.#lastResponseId = responseId;
  }

  /** The session as plain JSON data (`JSON.stringify(session)` uses it too). */
  toJSON(): AgentSessionJSON {
    return {
      format: AGENT_SESSION_FORMAT,
      version: AGENT_SESSION_VERSION,
      sessionId: this.sessionId,
      agentName: this.agentName,
      lastResponseId: this.#lastResponseId,
    };
  }

  /**
   * Reads a session from its JSON text or from the parsed object; throws
   * {@link InvalidSessionError} saying what is wrong.
   */
  static fromJSON(json: string | unknown): AgentSession {
    let data: unknown = json;
    if (typeof json === "string") {
      try {
        data = JSON.parse(json);
      } catch (err) {
        throw new InvalidSessionError("malformed", "the agent session is not valid JSON", {
          cause: err,
        });
      }
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new InvalidSessionError("malformed", "the agent session is not a JSON object");
    }
    const record = data as Record<string, unknown>;
    if (record.format !== AGENT_SESSION_FORMAT) {
      throw new InvalidSessionError(
        "foreign",
        `not a baton agent session (expected format '${AGENT_SESSION_FORMAT}')`,
      );
    }
    if (record.version !== AGENT_SESSION_VERSION) {
      throw new InvalidSessionError(
        "unsupported-version",
        `agent session version ${String(record.version)} is not supported (this baton reads version ${AGENT_SESSION_VERSION})`,
      );
    }
    const { sessionId, agentName, lastResponseId } = record;
    if (typeof sessionId !== "string" || sessionId === "") {
      throw new InvalidSessionError("malformed", "the agent session has no sessionId");
    }
    if (agentName !== null && agentName !== undefined && typeof agentName !== "string") {
      throw new InvalidSessionError("malformed", "the agent session's agentName is not a string");
    }
    if (
      lastResponseId !== null &&
      lastResponseId !== undefined &&
      (typeof lastResponseId !== "string" || lastResponseId === "")
    ) {
      throw new InvalidSessionError(
        "malformed",
        "the agent session's lastResponseId is not a response id",
      );
    }
    return new AgentSession({
      sessionId,
      agentName: agentName ?? null,
      lastResponseId: lastResponseId ?? null,
    });
  }
}
