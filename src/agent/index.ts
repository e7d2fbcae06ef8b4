/** The agent-framework-style facade over baton's run machine. */
export {
  Agent,
  type AgentInput,
  AgentInputError,
  type AgentMessage,
  type AgentOptions,
  type AgentResponse,
  type AgentResponseUpdate,
  AgentRunError,
  type AgentRunOptions,
  DEFAULT_AGENT_MODEL,
} from "./agent.js";
export {
  AGENT_SESSION_FORMAT,
  AGENT_SESSION_VERSION,
  AgentSession,
  type AgentSessionInit,
  type AgentSessionJSON,
  InvalidSessionError,
} from "./session.js";
