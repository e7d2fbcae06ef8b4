/**
 * Deterministic text. A response's text depends only on (input, instructions, seed): the hash of
 * those picks the PRNG state, and the PRNG picks canned words. Each call to `next()` returns one
 * token-like piece (" word", "." …) so that the deltas concatenate to the final text exactly.
 */
import { createPrng, hashString, type Prng } from "./random.js";

const WORDS: readonly string[] = [
  "the a baton stream response server client event token model background request result",
  "queue signal message output input network retry cursor sequence window replay state",
  "machine worker process quietly quickly carefully eventually always never often again",
  "still runs waits resumes returns sends keeps holds passes finishes starts reads writes",
  "counts checks follows reaches carries answers listens long short steady patient careful",
  "simple durable local remote late early small large new old next last first whole partial",
  "final through after before with without under over into from across river bridge mountain",
  "garden lantern harbor meadow compass letter and but so while because until when then as",
  "of to in on",
]
  .join(" ")
  .split(" ");

/** Produces the tokens of one response; see the module comment. */
export interface TextGenerator {
  /** The next token. The first one has no leading space; later words start with one. */
  next(): string;
}

/**
 * Creates the token source for one response.
 *
 * @example
 * ```ts
 * const gen = createTextGenerator("Say hi", null, 1);
 * const text = Array.from({ length: 5 }, () => gen.next()).join(""); // "Steady replay waits…"
 * ```
 */
export function createTextGenerator(
  input: string,
  instructions: string | null,
  seed: number,
): TextGenerator {
  const prng: Prng = createPrng(hashString(`${instructions ?? ""}\u0000${input}`, seed));
  let sentenceLength = 0; // words left in the current sentence; 0 = start a new one
  let first = true;
  let pendingPeriod = false;

  const pick = (): string => WORDS[Math.floor(prng() * WORDS.length)] ?? "the";

  return {
    next(): string {
      if (pendingPeriod) {
        pendingPeriod = false;
        return ".";
      }
      let word = pick();
      if (sentenceLength === 0) {
        sentenceLength = 4 + Math.floor(prng() * 9);
        word = word.charAt(0).toUpperCase() + word.slice(1);
      }
      sentenceLength--;
      if (sentenceLength === 0) pendingPeriod = true;
      const token = first ? word : ` ${word}`;
      first = false;
      return token;
    },
  };
}

/**
 * Flattens a Responses API `input` (a string, or an array of messages / input items) to the
 * plain text the generator hashes. Unknown shapes contribute their JSON, so they still matter.
 */
export function extractInputText(input: unknown): string {
  if (typeof input === "string") return input;
  if (!Array.isArray(input))
    return input === undefined || input === null ? "" : JSON.stringify(input);
  const parts: string[] = [];
  for (const item of input) {
    if (typeof item === "string") {
      parts.push(item);
      continue;
    }
    if (item === null || typeof item !== "object") continue;
    const content = (item as { content?: unknown }).content;
    if (typeof content === "string") parts.push(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        const text = (part as { text?: unknown } | null)?.text;
        if (typeof text === "string") parts.push(text);
      }
    } else parts.push(JSON.stringify(item));
  }
  return parts.join("\n");
}

/** A rough token count (about four characters a token, like the real tokenizers on English). */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}
