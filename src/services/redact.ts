/**
 * Removes secrets from text that came from a server or an SDK before baton keeps it: failure
 * messages, a failed response's `error.message`, a stream's `error` event. A server may echo the
 * request's `Authorization` header in an error body (`Incorrect API key: Bearer sk-...`), and
 * whatever baton keeps reaches the run's context, its snapshots, the store, inspection events
 * and the CLI's stderr. Redacting where the text enters (the client port and the failure
 * classifier) covers all of them at once.
 */

/** What a removed secret is replaced with. */
export const REDACTED = "***";

/**
 * Secrets shorter than this are not searched for: a one-letter "key" (a test double's `"x"`)
 * would turn every message into asterisks, and is no secret anyway.
 */
const MIN_SECRET_LENGTH = 6;

/** Anything shaped like a credential, whoever's it is. */
const CREDENTIAL_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // `Authorization: Bearer <token>` / `Basic <token>`, as echoed headers or in prose.
  [/\b(Bearer|Basic)(\s+)[^\s"'`,;)\]}]+/gi, `$1$2${REDACTED}`],
  // OpenAI-style keys: sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...
  [/\bsk-[A-Za-z0-9_-]{6,}/g, `sk-${REDACTED}`],
  // `api-key: ...`, `api_key=...`, `"apiKey": "..."`, `x-api-key: ...`, `authorization=...`
  [
    /\b((?:x-)?api[-_]?key|authorization|access[-_]?token)(["']?\s*[:=]\s*["']?)(?!\*\*\*)[^\s"'`,;&)\]}]+/gi,
    `$1$2${REDACTED}`,
  ],
  // JSON Web Tokens (Azure AD bearer tokens): three base64url parts, the first two `eyJ...`.
  [/\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, REDACTED],
];

/**
 * Returns `text` with each of `secrets` (the client's own key, read from the client) and
 * anything shaped like an API key or a bearer token replaced by `***`.
 *
 * @example
 * ```ts
 * redactSecrets("401 Incorrect key: Bearer sk-abc123456789", ["sk-abc123456789"]);
 * // "401 Incorrect key: Bearer ***"
 * ```
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_SECRET_LENGTH && out.includes(secret)) {
      out = out.split(secret).join(REDACTED);
    }
  }
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** The most of one server-given text baton keeps: a 10 MB error body must not ride in every save. */
export const MAX_KEPT_TEXT = 2_000;

/**
 * Server-given text as baton keeps it: redacted (first, so a cut cannot leave half a key),
 * then cut to `max` characters.
 *
 * @example
 * ```ts
 * keptText("x".repeat(5000), []).length; // 2001 (2000 and "…")
 * ```
 */
export function keptText(text: string, secrets: readonly string[], max = MAX_KEPT_TEXT): string {
  const redacted = redactSecrets(text, secrets);
  return redacted.length > max ? `${redacted.slice(0, max)}…` : redacted;
}

/**
 * The key an `openai` client instance holds, when it holds one as a string (`apiKey`; an Azure
 * client's too). Read at the time of each failure: a key given as a function is refreshed.
 */
export function clientSecrets(client: unknown): string[] {
  if (typeof client !== "object" || client === null) return [];
  const key = (client as { apiKey?: unknown }).apiKey;
  return typeof key === "string" && key.length >= MIN_SECRET_LENGTH ? [key] : [];
}
