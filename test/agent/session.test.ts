/**
 * Agent sessions as JSON: round trip, and typed errors for anything that is not a session.
 */
import { describe, expect, it } from "vitest";
import {
  AGENT_SESSION_FORMAT,
  AGENT_SESSION_VERSION,
  AgentSession,
  InvalidSessionError,
} from "../../src/agent/index.js";
import { BatonError } from "../../src/index.js";

describe("AgentSession JSON", () => {
  it("round-trips through JSON text and through the parsed object", () => {
    const session = new AgentSession({ agentName: "researcher" });
    session.recordCompleted("resp_abc");
    const json = session.toJSON();
    expect(json).toEqual({
      format: AGENT_SESSION_FORMAT,
      version: AGENT_SESSION_VERSION,
      sessionId: session.sessionId,
      agentName: "researcher",
      lastResponseId: "resp_abc",
    });
    expect(session.sessionId).toMatch(/^session_[0-9a-f]{24}$/);

    const fromText = AgentSession.fromJSON(JSON.stringify(session));
    expect(fromText).toBeInstanceOf(AgentSession);
    expect(fromText.toJSON()).toEqual(json);

    const fromObject = AgentSession.fromJSON(JSON.parse(JSON.stringify({ saved: session })).saved);
    expect(fromObject.lastResponseId).toBe("resp_abc");
    expect(fromObject.sessionId).toBe(session.sessionId);
  });

  it("a new session has no response yet and survives JSON as such", () => {
    const session = new AgentSession();
    expect(session.lastResponseId).toBeNull();
    const again = AgentSession.fromJSON(JSON.stringify(session));
    expect(again.lastResponseId).toBeNull();
    expect(again.agentName).toBeNull();
  });

  it.each([
    ["not JSON", "{oops", "malformed"],
    ["an array", "[]", "malformed"],
    ["null", "null", "malformed"],
    ["a number", 42, "malformed"],
    ["another format", JSON.stringify({ format: "baton.run", version: 1 }), "foreign"],
    ["no format", JSON.stringify({ sessionId: "s", lastResponseId: null }), "foreign"],
    [
      "a newer version",
      JSON.stringify({ format: AGENT_SESSION_FORMAT, version: 2, sessionId: "s" }),
      "unsupported-version",
    ],
    [
      "no session id",
      JSON.stringify({ format: AGENT_SESSION_FORMAT, version: 1, lastResponseId: null }),
      "malformed",
    ],
    [
      "a bad response id",
      JSON.stringify({
        format: AGENT_SESSION_FORMAT,
        version: 1,
        sessionId: "s",
        lastResponseId: 7,
      }),
      "malformed",
    ],
  ])("rejects %s with InvalidSessionError", (_name, input, reason) => {
    let caught: unknown;
    try {
      AgentSession.fromJSON(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidSessionError);
    expect(caught).toBeInstanceOf(BatonError);
    expect(caught).toMatchObject({ reason, code: `session_${reason.replace("-", "_")}` });
  });
});
