/**
 * The Agent facade against the emulator, with the real openai SDK over HTTP: agent-framework's
 * two background patterns (poll with a token; resume an interrupted stream from the last token),
 * session chaining through previous_response_id, and input validation.
 */
import { describe, expect, it } from "vitest";
import { AgentInputError, type AgentResponseUpdate, AgentRunError } from "../../src/agent/index.js";
import { decodeContinuationToken, InvalidContinuationTokenError } from "../../src/index.js";
import { agentOn, countRequests, emulator, sleep, storedText } from "./helpers.js";

describe("non-streaming polling with a continuation token", () => {
  it("returns after the create, then each call makes one retrieve, until the token is null", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const session = agent.createSession();

    let response = await agent.run("Briefly explain the theory of relativity.", {
      session,
      background: true,
    });
    expect(response.continuationToken).not.toBeNull();
    expect(["queued", "in_progress"]).toContain(response.status);
    expect(response.responseId).toMatch(/^resp_/);
    expect(decodeContinuationToken(response.continuationToken as string)).toEqual({
      responseId: response.responseId,
    });
    // Right after the create: no poll yet, and no completed response in the session.
    expect(countRequests(emu, "retrieve")).toBe(0);
    expect(session.lastResponseId).toBeNull();
    const responseId = response.responseId;

    let polls = 0;
    const statuses: string[] = [];
    while (response.continuationToken !== null) {
      polls++;
      await sleep(25);
      const before = countRequests(emu, "retrieve");
      response = await agent.run(undefined, {
        session,
        continuationToken: response.continuationToken,
      });
      // Honest polling: exactly one HTTP retrieve per call.
      expect(countRequests(emu, "retrieve") - before).toBe(1);
      statuses.push(response.status);
      expect(response.responseId).toBe(responseId);
      if (polls > 200) throw new Error("never finished");
    }

    expect(polls).toBeGreaterThanOrEqual(2);
    expect(statuses.slice(0, -1).every((s) => s === "queued" || s === "in_progress")).toBe(true);
    expect(response.status).toBe("completed");
    expect(response.continuationToken).toBeNull();
    expect(response.text.length).toBeGreaterThan(0);
    expect(response.text).toBe(storedText(emu, responseId));
    expect(response.usage?.outputTokens).toBe(20);
    expect(session.lastResponseId).toBe(responseId);
    expect(emu.countCreates()).toBe(1);
    // The stopped runs left nothing behind: no cancel, no stream.
    expect(countRequests(emu, "cancel")).toBe(0);
    expect(countRequests(emu, "retrieve-stream")).toBe(0);
  });

  it("a poll of an in-progress response returns the text so far", async () => {
    const emu = await emulator({ tokenDelayMs: 20, outputTokens: 60, queuedMs: 0 });
    const agent = agentOn(emu);
    const started = await agent.run("Say something long.", { background: true });
    await sleep(250);
    const polled = await agent.run([], { continuationToken: started.continuationToken });
    expect(polled.status).toBe("in_progress");
    expect(polled.continuationToken).not.toBeNull();
    expect(polled.text.length).toBeGreaterThan(0);
    // Wait for the end, then the partial text must be a prefix of the final one.
    let last = polled;
    while (last.continuationToken) {
      await sleep(50);
      last = await agent.run(undefined, { continuationToken: last.continuationToken });
    }
    expect(last.text).toBe(storedText(emu, started.responseId));
    expect(last.text.startsWith(polled.text)).toBe(true);
    expect(last.text.length).toBeGreaterThan(polled.text.length);
  });

  it("without background, run waits for the final response", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const response = await agent.run("Hello there.");
    expect(response.status).toBe("completed");
    expect(response.continuationToken).toBeNull();
    expect(response.text).toBe(storedText(emu, response.responseId));
  });
});

describe("streaming with interruption and resumption", () => {
  it("resumes after the last token: the final text exactly, no repeated sequence number, one create", async () => {
    const emu = await emulator({ tokenDelayMs: 10, outputTokens: 20 });
    const agent = agentOn(emu);
    const session = agent.createSession();

    const first: AgentResponseUpdate[] = [];
    let lastToken: string | null = null;
    let chunks = 0;
    for await (const update of agent.run("Briefly list three benefits of exercise.", {
      session,
      stream: true,
      background: true,
    })) {
      first.push(update);
      // The seed's pattern, kept honest: every update before the final one has a token.
      expect(update.continuationToken).not.toBeNull();
      lastToken = update.continuationToken;
      if (update.text) chunks++;
      if (chunks >= 3) break;
    }
    expect(chunks).toBe(3);
    expect(lastToken).not.toBeNull();
    const responseId = first[0]?.responseId as string;
    expect(responseId).toMatch(/^resp_/);
    // The interruption fell on a delta: the token is that delta's sequence number.
    const lastFirst = first.at(-1) as AgentResponseUpdate;
    expect(lastFirst.text).not.toBe("");
    expect(decodeContinuationToken(lastToken as string)).toEqual({
      responseId,
      sequenceNumber: lastFirst.sequenceNumber,
    });
    // Breaking out disconnected; it did not cancel.
    expect(countRequests(emu, "cancel")).toBe(0);
    expect(session.lastResponseId).toBeNull();

    const resumed: AgentResponseUpdate[] = [];
    for await (const update of agent.run(undefined, {
      session,
      stream: true,
      continuationToken: lastToken,
    })) {
      resumed.push(update);
    }

    const final = resumed.at(-1) as AgentResponseUpdate;
    expect(final.final).toBe(true);
    expect(final.status).toBe("completed");
    expect(final.continuationToken).toBeNull();
    expect(final.usage?.outputTokens).toBe(20);
    expect(resumed.slice(0, -1).every((u) => u.continuationToken !== null && !u.final)).toBe(true);

    const text = [...first, ...resumed].map((u) => u.text).join("");
    expect(text).toBe(storedText(emu, responseId));
    expect(resumed.map((u) => u.text).join("").length).toBeGreaterThan(0);

    const sequences = [...first, ...resumed]
      .map((u) => u.sequenceNumber)
      .filter((n): n is number => n !== null);
    expect(new Set(sequences).size).toBe(sequences.length);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));

    // Resumed server-side after the token's sequence number; never created twice.
    const resumes = emu.requests.filter((r) => r.kind === "retrieve-stream");
    expect(resumes.map((r) => r.query.starting_after)).toEqual([String(lastFirst.sequenceNumber)]);
    expect(emu.countCreates()).toBe(1);
    expect(session.lastResponseId).toBe(responseId);
  });

  it("an interruption before any text still leaves a token to resume from", async () => {
    const emu = await emulator({ queuedMs: 100 });
    const agent = agentOn(emu);
    let token: string | null = null;
    for await (const update of agent.run("Hi.", { stream: true })) {
      expect(update.text).toBe("");
      token = update.continuationToken;
      break;
    }
    expect(token).not.toBeNull();
    const resumed: AgentResponseUpdate[] = [];
    for await (const update of agent.run(null, { stream: true, continuationToken: token })) {
      resumed.push(update);
    }
    const responseId = decodeContinuationToken(token as string).responseId;
    expect(resumed.map((u) => u.text).join("")).toBe(storedText(emu, responseId));
    expect(emu.countCreates()).toBe(1);
  });

  it("streams a background (poll) token from the start", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const started = await agent.run("Tell me a story.", { background: true });
    const updates: AgentResponseUpdate[] = [];
    for await (const update of agent.run(undefined, {
      stream: true,
      continuationToken: started.continuationToken,
    })) {
      updates.push(update);
    }
    expect(updates.map((u) => u.text).join("")).toBe(storedText(emu, started.responseId));
    expect(updates.at(-1)?.continuationToken).toBeNull();
    expect(emu.countCreates()).toBe(1);
  });

  it("a run that gives up throws AgentRunError from the stream", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const token = "bt1.eyJyZXNwb25zZUlkIjoicmVzcF9taXNzaW5nIiwic2VxdWVuY2VOdW1iZXIiOjN9";
    const iterate = async () => {
      for await (const _ of agent.run(undefined, { stream: true, continuationToken: token })) {
        // nothing
      }
    };
    await expect(iterate()).rejects.toBeInstanceOf(AgentRunError);
    await expect(agent.run(undefined, { continuationToken: token })).rejects.toMatchObject({
      name: "AgentRunError",
      code: "agent_run_not_found",
    });
  });
});

describe("sessions", () => {
  it("chain previous_response_id from the last completed response, across JSON", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const session = agent.createSession();

    const first = await agent.run("My name is Ada.", { session });
    expect(emu.getResponse(first.responseId)?.previous_response_id).toBeNull();
    expect(session.lastResponseId).toBe(first.responseId);

    const second = await agent.run("What is my name?", { session });
    expect(emu.getResponse(second.responseId)?.previous_response_id).toBe(first.responseId);

    // Streaming chains too.
    let thirdId = "";
    for await (const update of agent.run([{ role: "user", content: "Again?" }], {
      session,
      stream: true,
    })) {
      thirdId = update.responseId;
    }
    expect(emu.getResponse(thirdId)?.previous_response_id).toBe(second.responseId);
    expect(session.lastResponseId).toBe(thirdId);

    // A session saved as JSON and read back carries on the same conversation.
    const { AgentSession } = await import("../../src/agent/index.js");
    const restored = AgentSession.fromJSON(JSON.stringify(session));
    const fourth = await agent.run("And now?", { session: restored });
    expect(emu.getResponse(fourth.responseId)?.previous_response_id).toBe(thirdId);

    // A run without a session chains nothing.
    const alone = await agent.run("Alone.");
    expect(emu.getResponse(alone.responseId)?.previous_response_id).toBeNull();
  });

  it("a background run enters the session only once a poll sees it completed", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const session = agent.createSession();
    const first = await agent.run("One.", { session });
    let response = await agent.run("Two.", { session, background: true });
    expect(emu.getResponse(response.responseId)?.previous_response_id).toBe(first.responseId);
    expect(session.lastResponseId).toBe(first.responseId);
    while (response.continuationToken) {
      await sleep(20);
      response = await agent.run(undefined, {
        session,
        continuationToken: response.continuationToken,
      });
    }
    expect(session.lastResponseId).toBe(response.responseId);
  });
});

describe("input validation", () => {
  it("messages together with a continuation token throw AgentInputError, before any request", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    const started = await agent.run("Hi.", { background: true });
    const token = started.continuationToken;
    const requests = emu.requests.length;

    expect(() => agent.run("more", { continuationToken: token })).toThrow(AgentInputError);
    expect(() => agent.run([{ role: "user", content: "x" }], { continuationToken: token })).toThrow(
      /together with a continuationToken/,
    );
    try {
      agent.run("more", { stream: true, continuationToken: token });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AgentInputError);
      expect(err).toMatchObject({
        reason: "messages-with-continuation-token",
        code: "agent_messages_with_continuation_token",
      });
    }
    expect(emu.requests.length).toBe(requests);
  });

  it("no messages and no token, or a foreign token, throw typed errors", async () => {
    const emu = await emulator();
    const agent = agentOn(emu);
    expect(() => agent.run(undefined)).toThrow(AgentInputError);
    expect(() => agent.run([], { stream: true })).toThrow(/nothing to run/);
    expect(() => agent.run(undefined, { continuationToken: '{"response_id":"resp_1"}' })).toThrow(
      InvalidContinuationTokenError,
    );
    expect(emu.requests.length).toBe(0);
  });
});
