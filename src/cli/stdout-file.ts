/**
 * stdout as a regular file (`baton run … > out.txt` or `>> out.txt`): the file's own bytes say
 * what was printed, as `--output`'s do (output-file.ts), so a resume to the same file appends
 * exactly the rest, whatever moment a `kill -9` fell on.
 *
 * `baton run` notes the file's identity (device and inode) and the byte offset where its answer
 * starts (the file's size then: 0 after `>`, the earlier content's length after `>>`).
 * `baton resume` to a stdout with the same identity reads the bytes from that offset on: they
 * are what was printed. Trusted: that nothing but baton appended to the file since (what is
 * cheap to check is: the size is not below the offset, the bytes are UTF-8, and the text lines
 * up with the answer where the answer is known: the final text of a finished run, a retrieve, and
 * the text delivered again before the resume's own part). Anything else (another file, a pipe, a
 * terminal, a file cut below the offset, a system without `/proc/self/fd`) reads as unknown, and
 * the resume goes by the saved cursor, as before.
 *
 * Linux only (`/proc/self/fdinfo/1` tells whether stdout appends, `/proc/self/fd/1` reopens the
 * file to read it); elsewhere stdout keeps the saved cursor.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync } from "node:fs";
import { decodeAnswer } from "./output-file.js";

/** Where an answer printed to a regular file starts: `<run-id>.cli.json`'s `stdout`. */
export interface StdoutNote {
  /** Device and inode of the file (decimal strings: an inode can exceed 2^53). */
  dev: string;
  ino: string;
  /** Byte offset of the answer's first byte. */
  start: number;
}

const O_APPEND = 0o2000;

/** stdout's identity, size and whether the next write lands at its end; undefined if not a file. */
function inspectStdout(): { dev: string; ino: string; size: number; append: boolean } | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    const stat = fstatSync(1, { bigint: true });
    if (!stat.isFile()) return undefined;
    const info = readFileSync("/proc/self/fdinfo/1", "latin1");
    const pos = /^pos:\s*(\d+)/m.exec(info)?.[1];
    const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
    if (pos === undefined || flags === undefined) return undefined;
    const size = Number(stat.size);
    const append = (Number.parseInt(flags, 8) & O_APPEND) !== 0;
    // `1<>file` writes over what is there: its size is not where the answer goes.
    if (!append && Number(pos) !== size) return undefined;
    return { dev: String(stat.dev), ino: String(stat.ino), size, append };
  } catch {
    return undefined;
  }
}

/**
 * For `baton run`: the note to keep when stdout is a regular file the answer is appended to.
 *
 * @example
 * ```ts
 * const stdout = stdoutNote(); // { dev: "2049", ino: "1234", start: 0 } after `> out.txt`
 * ```
 */
export function stdoutNote(): StdoutNote | undefined {
  const now = inspectStdout();
  return now && { dev: now.dev, ino: now.ino, start: now.size };
}

/**
 * For `baton resume`: the answer's text stdout's file already holds (undefined when stdout is
 * not that file, or its content cannot be read as the answer's beginning). An incomplete last
 * UTF-8 character (a kill in the middle of a write) is cut off the file, to be written whole.
 *
 * @example
 * ```ts
 * const printed = meta.stdout && printedToStdout(meta.stdout); // then print what follows it
 * ```
 */
export function printedToStdout(note: StdoutNote): string | undefined {
  const now = inspectStdout();
  if (!now || now.dev !== note.dev || now.ino !== note.ino || now.size < note.start) {
    return undefined;
  }
  let fd: number;
  try {
    fd = openSync("/proc/self/fd/1", "r");
  } catch {
    return undefined;
  }
  let bytes: Buffer;
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (String(stat.dev) !== note.dev || String(stat.ino) !== note.ino) return undefined;
    bytes = Buffer.alloc(now.size - note.start);
    let done = 0;
    while (done < bytes.length) {
      const read = readSync(fd, bytes, done, bytes.length - done, note.start + done);
      if (read === 0) break;
      done += read;
    }
    bytes = bytes.subarray(0, done);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
  const decoded = decodeAnswer(bytes);
  if (decoded === undefined) return undefined;
  if (decoded.complete < bytes.length) {
    // Without O_APPEND the next write would land past a cut, leaving a hole: not ours to cut.
    if (!now.append) return undefined;
    try {
      ftruncateSync(1, note.start + decoded.complete);
    } catch {
      return undefined;
    }
  }
  return decoded.text;
}
