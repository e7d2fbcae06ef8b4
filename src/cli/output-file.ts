/**
 * The file of `--output FILE`: baton owns it, and what it holds is the truth of what was
 * delivered.
 *
 * Text is written to the file (one synchronous `write`) the moment the run hands it over,
 * before the store's cursor moves past it (the run's deltas reach their listeners before the
 * snapshot that counts them is saved). The saved cursor therefore lags the file and never leads
 * it: on resume, the run is carried on from its saved cursor and the text it delivers again is
 * checked against the file's tail, then only what lies beyond the file's own length is appended.
 * Whatever kills the process and whenever, nothing is lost and nothing is written twice.
 *
 * Lengths: the file holds UTF-8 bytes, the answer is counted in UTF-16 units (as JavaScript
 * strings, and baton's `deliveredChars`, count it). The file is decoded to count; a kill in the
 * middle of a write can leave the first bytes of a multi-byte character at the end, which are
 * dropped on open (they are written again whole). A high surrogate that ends a piece is held
 * back until its pair arrives, so that a character is never written as two halves.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { CliError } from "../errors.js";
import { EXIT } from "./exit-codes.js";

/**
 * The answer's file.
 *
 * @example
 * ```ts
 * const file = OutputFile.open("answer.txt"); // resume: file.text is what it holds
 * file.write(" more text");
 * file.close();
 * ```
 */
export class OutputFile {
  readonly path: string;
  /** What the file held when it was opened (empty for a file created anew). */
  readonly existing: string;
  #fd: number | undefined;
  #chars: number;
  /** A trailing high surrogate, waiting for the low one that completes its character. */
  #held = "";

  private constructor(path: string, fd: number, existing: string) {
    this.path = path;
    this.#fd = fd;
    this.existing = existing;
    this.#chars = existing.length;
  }

  /** Creates (or empties) the file, for a new run. */
  static create(path: string): OutputFile {
    return new OutputFile(path, openOrFail(path, "w"), "");
  }

  /**
   * Opens the file of a run being resumed: reads what it holds (UTF-8; a file that is not
   * fails), drops an incomplete last character, and appends from there. A missing file is
   * created empty.
   */
  static open(path: string): OutputFile {
    const fd = openOrFail(path, "a+");
    try {
      const bytes = readFileSync(fd);
      const decoded = decodeAnswer(bytes);
      if (decoded === undefined) {
        throw new CliError(
          EXIT.failed,
          `${path} is not UTF-8 text: it is not an answer baton wrote (left as it is)`,
        );
      }
      const { text: existing, complete } = decoded;
      if (complete < bytes.length) ftruncateSync(fd, complete);
      return new OutputFile(path, fd, existing);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Characters (UTF-16 units) in the file, text held back included. */
  get chars(): number {
    return this.#chars + this.#held.length;
  }

  /** Appends text (synchronously: it is in the file once this returns). */
  write(text: string): void {
    if (text === "" || this.#fd === undefined) return;
    let out = this.#held + text;
    this.#held = "";
    const last = out.charCodeAt(out.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.#held = out.slice(-1);
      out = out.slice(0, -1);
    }
    if (out === "") return;
    const bytes = Buffer.from(out, "utf8");
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done);
    this.#chars += out.length;
  }

  /** Writes what is held back, flushes to disk and closes. */
  close(): void {
    if (this.#fd === undefined) return;
    const held = this.#held;
    this.#held = "";
    if (held !== "") {
      writeSync(this.#fd, held);
      this.#chars += held.length;
    }
    try {
      if (fstatSync(this.#fd).isFile()) fsyncSync(this.#fd);
    } finally {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
  }
}

function openOrFail(path: string, flags: "w" | "a+"): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CliError(EXIT.failed, `cannot write the answer to ${path} (${reason})`);
  }
}

/**
 * The text of an answer's bytes (UTF-8), an incomplete last character left out: `complete` is
 * the length in bytes of what was decoded. Undefined for bytes that are not UTF-8.
 *
 * @example
 * ```ts
 * decodeAnswer(Buffer.from([0x61, 0xc3])); // { text: "a", complete: 1 }
 * ```
 */
export function decodeAnswer(bytes: Uint8Array): { text: string; complete: number } | undefined {
  const complete = completeLength(bytes);
  try {
    // ignoreBOM: a byte order mark at the start is text like any other, counted and kept.
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(0, complete),
    );
    return { text, complete };
  } catch {
    return undefined;
  }
}

/**
 * The length of the longest prefix of `bytes` that does not end in the middle of a UTF-8
 * character (what a write cut short by a kill can leave). Bytes that are not UTF-8 at all are
 * left for the decoder to refuse.
 */
export function completeLength(bytes: Uint8Array): number {
  let start = bytes.length - 1;
  let continuation = 0;
  while (start >= 0 && continuation < 3 && ((bytes[start] as number) & 0xc0) === 0x80) {
    start--;
    continuation++;
  }
  if (start < 0) return bytes.length;
  const lead = bytes[start] as number;
  const size = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return size > 1 && bytes.length - start < size ? start : bytes.length;
}
