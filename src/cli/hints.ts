/** The `baton resume …` / `baton cancel …` hints, with the flags a later command needs too. */

/**
 * The flags to repeat in hints: those given on the command line that a resume needs too.
 *
 * @example
 * ```ts
 * hintFlagsOf({ store: "my runs" }); // " --store 'my runs'"
 * ```
 */
export function hintFlagsOf(values: {
  store?: string | undefined;
  "base-url"?: string | undefined;
}): string {
  let flags = "";
  if (values.store !== undefined) flags += ` --store ${shellQuote(values.store)}`;
  if (values["base-url"] !== undefined) flags += ` --base-url ${shellQuote(values["base-url"])}`;
  return flags;
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}
