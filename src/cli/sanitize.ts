/**
 * Text on its way to the terminal: secrets redacted, escape sequences and control characters
 * removed, messages collapsed to one line. Everything the CLI prints from outside (a server's
 * message, a response id, a saved file) passes through here.
 */
import { redactSecrets } from "../services/redact.js";

/**
 * Removes secrets (the key, and anything that looks like an OpenAI key) from a message.
 *
 * @example
 * ```ts
 * redact("GET https://user:hunter2@host/v1"); // "GET https://user:***@host/v1"
 * ```
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  // The library's redaction (the key, anything key- or bearer-shaped), then what only the CLI
  // prints: a password in a URL (`https://user:pass@host/v1`) is a secret too.
  return redactSecrets(text, secrets).replace(/(\/\/[^/@\s:]*):[^/@\s]+@/g, "$1:***@");
}

/**
 * Collapses a message to one line.
 *
 * @example
 * ```ts
 * oneLine("cannot reach\n  the server"); // "cannot reach the server"
 * ```
 */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * Makes text from outside (a server's message, a response id, a run id, a saved file) safe to
 * print on a terminal: terminal escape sequences (CSI, OSC, DCS, …) are removed whole, then
 * every other control character (C0 but tab and newline, DEL, C1) and the bidirectional
 * overrides that reorder what a terminal shows. One function, applied on the way out by
 * `say` (io.ts), `formatTable` (format.ts) and the progress line.
 *
 * @example
 * ```ts
 * sanitize("resp_\x1b]0;pwned\x07x\x1b[2J"); // "resp_x"
 * ```
 */
export function sanitize(text: string, options: { keepNewlines?: boolean } = {}): string {
  const cleaned = text.replace(CSI, "").replace(STRING_SEQUENCE, "").replace(OTHER_ESCAPE, "");
  return cleaned.replace(options.keepNewlines ? CONTROL_BUT_NEWLINE : CONTROL, "");
}

// Matching control characters is the point of these (biome's rule is about mistyped ones).
/** CSI (ESC [ or C1 0x9b): parameters, intermediates, one final byte. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const CSI = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?/g;
/** OSC, DCS, SOS, PM, APC (ESC ] P X ^ _, or their C1 forms): up to BEL or ST, or the end. */
const STRING_SEQUENCE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: see above
  /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?/g;
/** Any other escape: ESC, intermediates, one final byte. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const OTHER_ESCAPE = /\x1b[ -/]*[0-~]?/g;
/** C0 but tab, DEL, C1, bidirectional overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: see above
const CONTROL_BUT_NEWLINE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
