/**
 * Probes with generated bad input (fast-check), in this process, with listeners on
 * `uncaughtException` and `unhandledRejection` the whole time (issues 13.1, 13.8, 13.12):
 *
 * - envelopes: real saves of real runs against the emulator, in every state, corrupted (bit
 *   flips, cut or edited JSON text, deleted fields, swapped types, out-of-range numbers, other
 *   values) and written as a store file, then `rehydrateRun` by run id from a FileRunStore;
 * - tokens: real tokens with one character changed, added or removed, other prefixes, random
 *   strings, through `decodeContinuationToken` and `rehydrateRun({ token })`;
 * - run ids: generated ids through `startRun` (and `rehydrateRun` by id).
 *
 * Every input is either refused with a typed error (a `BatonError`) or accepted, and an
 * accepted one settles (its `result()` resolves) within a bound; never a crash, never a hang,
 * never an untyped error. A one-character change of a checksummed token never decodes to
 * another response. An id refused by `startRun` creates nothing.
 *
 * Counts: `PROBE_RUNS` envelopes (default 300), 3× as many tokens, a third as many run ids;
 * `SOAK_RUNS` (as `npm run test:soak` sets it) for more. `PROPERTY_SEED` replays a seed.
 */
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  BatonError,
  decodeContinuationToken,
  encodeContinuationToken,
  FileRunStore,
  InvalidRunInputError,
  MAX_SERVER_WAIT_MS,
  type PersistedRun,
  type Run,
  rehydrateRun,
  startRun,
} from "../../src/index.js";
import { captureEnvelopes } from "../support/envelope-samples.js";
import { clientFor, emulatorFor, FAST } from "../support/run-harness.js";

const envelopeRuns = Number(process.env.SOAK_RUNS ?? process.env.PROBE_RUNS ?? 300);
const tokenRuns = envelopeRuns * 3;
const runIdRuns = Math.max(30, Math.round(envelopeRuns / 3));
const seed = Number(process.env.PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Longest an accepted input may take to settle: far above the milliseconds they take. */
const HANG_MS = 20_000;

interface Counts {
  tried: number;
  typed: number;
  accepted: number;
  untyped: number;
  hangs: number;
  /** Accepted, still waiting at the bound for a wait its (valid) options ask for. */
  slow: number;
  errors: Map<string, number>;
}
const newCounts = (): Counts => ({
  tried: 0,
  typed: 0,
  accepted: 0,
  untyped: 0,
  hangs: 0,
  slow: 0,
  errors: new Map(),
});
const counts = { envelopes: newCounts(), tokens: newCounts(), runIds: newCounts() };
const crashes: unknown[] = [];
const onCrash = (err: unknown) => crashes.push(err);

let emulator: Emulator;
let samples: PersistedRun[];
let directory: string;

beforeAll(async () => {
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);
  emulator = await emulatorFor({ tokenDelayMs: 1 });
  samples = await captureEnvelopes(emulator);
  directory = await mkdtemp(join(tmpdir(), "baton-probe-"));
}, 60_000);

afterAll(async () => {
  process.off("uncaughtException", onCrash);
  process.off("unhandledRejection", onCrash);
  await emulator?.close();
  const line = (name: string, c: Counts) =>
    `  ${name}: ${c.tried} tried, ${c.typed} typed errors, ${c.accepted} accepted, ${c.untyped} untyped errors, ${crashes.length} crashes (process-wide), ${c.hangs} hangs, ${c.slow} accepted but waiting as their options ask at the ${HANG_MS / 1000} s bound; by code: ${[
      ...c.errors,
    ]
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${n}`)
      .join(", ")}`;
  console.log(
    [
      `corrupt-input probes (seed ${seed}):`,
      line("envelopes", counts.envelopes),
      line("tokens", counts.tokens),
      line("run ids (startRun, then rehydrateRun by id)", counts.runIds),
    ].join("\n"),
  );
});

/**
 * A run that has not settled in time but waits, as its options allow, for a time still to come
 * (a corrupted `pollIntervalMs` of 16 minutes is a valid one): slow as configured, not hung.
 */
function waitsAsConfigured(run: Run): boolean {
  const { context, status } = run.getSnapshot();
  if (status !== "active" || context.wakeAt === null) return false;
  const longest = Math.max(
    context.options.pollIntervalMs,
    context.options.retry.maxDelayMs,
    MAX_SERVER_WAIT_MS,
  );
  const left = context.wakeAt - Date.now();
  return left > 0 && left <= longest;
}

/** Waits for a run to settle: "settled", "slow" (see above) or "hang" (then stops the run). */
async function settles(run: Run): Promise<"settled" | "slow" | "hang"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), HANG_MS);
  });
  try {
    const outcome = await Promise.race([run.result().then(() => "settled" as const), late]);
    if (outcome === "settled") return outcome;
    const slow = waitsAsConfigured(run);
    run.actor.stop();
    return slow ? "slow" : "hang";
  } finally {
    clearTimeout(timer);
  }
}

/** Classifies what an attempt did; returns false for what must never happen. */
async function attempt(c: Counts, act: () => Promise<Run | undefined>): Promise<boolean> {
  c.tried++;
  let run: Run | undefined;
  try {
    run = await act();
  } catch (err) {
    if (err instanceof BatonError) {
      c.typed++;
      c.errors.set(err.code, (c.errors.get(err.code) ?? 0) + 1);
      if (process.env.PROBE_VERBOSE) console.log("typed:", err.message.slice(0, 160));
      return true;
    }
    c.untyped++;
    console.error("untyped error:", err);
    return false;
  }
  if (!run) {
    c.accepted++;
    return true;
  }
  // A restored idle run waits for its start, as a consumer gives it.
  if (run.state === "idle") run.actor.send({ type: "run.start" });
  try {
    const outcome = await settles(run);
    if (outcome === "hang") {
      c.hangs++;
      return false;
    }
    if (outcome === "slow") c.slow++;
  } catch (err) {
    // result() never rejects for a run that was not detached: an actor error is a bug.
    c.untyped++;
    console.error("run errored:", err);
    return false;
  }
  c.accepted++;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Envelopes

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path into a JSON value (keys and indexes), the root excluded. */
function pathsOf(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return [];
  const entries: [string | number, Json][] = Array.isArray(value)
    ? value.map((item, i) => [i, item])
    : Object.entries(value);
  return entries.flatMap(([key, item]) => [[...prefix, key], ...pathsOf(item, [...prefix, key])]);
}

function parentOf(root: Json, path: (string | number)[]): { parent: Json; key: string | number } {
  let parent = root;
  for (const key of path.slice(0, -1))
    parent = (parent as Record<string | number, Json>)[key] as Json;
  return { parent, key: path.at(-1) as string | number };
}

/** Values out of range, of the wrong type, or plausible but wrong. */
const badValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null,
    -1,
    -5,
    -100,
    1.5,
    0,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 31,
    1e15,
    "",
    "abc",
    "waitIng",
    "bogus",
    true,
    false,
    {},
    [],
    { x: 1 },
    [null],
    "a".repeat(300),
    "../x",
    { xstate$$type: 1, id: "deadline" },
    "done",
    "polling",
    { polling: "bogus" },
    // Values of the right type, meant for another field or another state.
    "poll",
    "stream",
    "completed",
    "in_progress",
    "cancelled",
    "recreate",
    "wait",
    "fail",
    1e6,
    "resp_0000",
  ),
  fc.integer({ min: -1000, max: 1000 }),
  fc.string({ maxLength: 8 }),
);

type Mutation =
  | { kind: "delete"; at: number }
  | { kind: "replace"; at: number; value: Json }
  | { kind: "swap-type"; at: number }
  | { kind: "edit-string"; at: number; pos: number; char: string }
  | { kind: "nudge-number"; at: number; by: number }
  | { kind: "bit-flip"; pos: number; bit: number }
  | { kind: "cut"; pos: number }
  | { kind: "insert-char"; pos: number; char: string }
  | { kind: "delete-char"; pos: number };

const at = fc.nat();
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at }),
  fc.record({ kind: fc.constant("replace" as const), at, value: badValue }),
  fc.record({ kind: fc.constant("swap-type" as const), at }),
  fc.record({
    kind: fc.constant("edit-string" as const),
    at,
    pos: fc.nat(),
    char: fc.string({ minLength: 1, maxLength: 1 }),
  }),
  fc.record({
    kind: fc.constant("nudge-number" as const),
    at,
    by: fc.constantFrom(1, -1, 1e6, -1e6, 0.5, -2),
  }),
  fc.record({
    kind: fc.constant("bit-flip" as const),
    pos: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({ kind: fc.constant("cut" as const), pos: fc.nat() }),
  fc.record({
    kind: fc.constant("insert-char" as const),
    pos: fc.nat(),
    char: fc.constantFrom("{", "}", '"', ",", "0", "a", "\\", " "),
  }),
  fc.record({ kind: fc.constant("delete-char" as const), pos: fc.nat() }),
);

function swapType(value: Json): Json {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return Number.isNaN(Number(value)) ? value.length : Number(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === null) return {};
  if (Array.isArray(value)) return { ...value };
  return Object.values(value);
}

/** Applies mutations to an envelope; returns the file's text. */
function corrupt(envelope: PersistedRun, mutations: readonly Mutation[]): string {
  const root = structuredClone(envelope) as unknown as Json;
  let text: string | undefined;
  for (const m of mutations) {
    if (
      m.kind === "bit-flip" ||
      m.kind === "cut" ||
      m.kind === "insert-char" ||
      m.kind === "delete-char"
    ) {
      const bytes = Buffer.from(text ?? JSON.stringify(root));
      const pos = m.pos % bytes.length;
      if (m.kind === "bit-flip") {
        bytes[pos] = (bytes[pos] as number) ^ (1 << m.bit);
        text = bytes.toString("latin1");
      } else {
        const s = bytes.toString("utf8");
        const i = m.pos % s.length;
        text =
          m.kind === "cut"
            ? s.slice(0, i)
            : m.kind === "insert-char"
              ? s.slice(0, i) + m.char + s.slice(i)
              : s.slice(0, i) + s.slice(i + 1);
      }
      continue;
    }
    if (text !== undefined) continue; // once the text is edited, structural edits stop
    const paths = pathsOf(root);
    const path = paths[m.at % paths.length] as (string | number)[];
    const { parent, key } = parentOf(root, path);
    const target = parent as Record<string | number, Json>;
    const current = target[key] as Json;
    if (m.kind === "delete") {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete target[key];
    } else if (m.kind === "replace") {
      target[key] = structuredClone(m.value);
    } else if (m.kind === "swap-type") {
      target[key] = swapType(current);
    } else if (m.kind === "edit-string" && typeof current === "string" && current.length > 0) {
      const i = m.pos % current.length;
      target[key] = current.slice(0, i) + m.char + current.slice(i + 1);
    } else if (m.kind === "nudge-number" && typeof current === "number") {
      target[key] = m.by === 0.5 || m.by === -2 ? current * m.by : current + m.by;
    } else {
      target[key] = swapType(current);
    }
  }
  return text ?? JSON.stringify(root);
}

describe("corrupt-input probes", () => {
  it(
    `${envelopeRuns} corrupted envelopes: each refused with a typed error or restored and settled`,
    async () => {
      const client = clientFor(emulator);
      const store = new FileRunStore(directory);
      await fc.assert(
        fc.asyncProperty(
          fc.nat(),
          // Mostly one corruption at a time (a flipped bit, one edited field), sometimes more.
          fc.oneof(
            { arbitrary: mutation.map((m) => [m]), weight: 3 },
            { arbitrary: fc.array(mutation, { minLength: 2, maxLength: 4 }), weight: 1 },
          ),
          async (pick, mutations) => {
            const envelope = samples[pick % samples.length] as PersistedRun;
            const runId = envelope.runId;
            await writeFile(join(directory, `${runId}.run.json`), corrupt(envelope, mutations));
            const ok = await attempt(counts.envelopes, () =>
              rehydrateRun({ client, store }, { runId, store }),
            );
            return ok && crashes.length === 0;
          },
        ),
        { seed, numRuns: envelopeRuns },
      );
      // XState's asynchronous rethrows come on a timer: give them the time to show up.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(crashes).toEqual([]);
      expect(counts.envelopes.hangs).toBe(0);
      expect(counts.envelopes.untyped).toBe(0);
      // The probes reach both ways out: some corruptions are refused, some are harmless.
      expect(counts.envelopes.typed).toBeGreaterThan(0);
      expect(counts.envelopes.accepted).toBeGreaterThan(0);
    },
    Math.max(120_000, envelopeRuns * 1_000),
  );

  it(
    `${tokenRuns} corrupted tokens: typed errors, and no typo decodes to another response`,
    async () => {
      const client = clientFor(emulator);
      const tokens = [
        ...new Set(samples.map((run) => run.token).filter((t): t is string => t !== null)),
      ];
      expect(tokens.length).toBeGreaterThan(0);
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.= \n";
      const edited = fc
        .record({
          pick: fc.nat(),
          op: fc.constantFrom("substitute", "insert", "delete"),
          pos: fc.nat(),
          char: fc.constantFrom(...alphabet),
        })
        .map(({ pick, op, pos, char }) => {
          const original = tokens[pick % tokens.length] as string;
          const i = pos % original.length;
          const text =
            op === "substitute"
              ? original.slice(0, i) + char + original.slice(i + 1)
              : op === "insert"
                ? original.slice(0, i) + char + original.slice(i)
                : original.slice(0, i) + original.slice(i + 1);
          return { original, text };
        });
      const other = fc
        .oneof(
          fc.string(),
          fc.constantFrom("bt01.", "bt001.", "BT1.", "bt1..", "bt1.", "bt2.eyJ9", " bt1.e30 "),
          fc.string({ unit: fc.constantFrom(..."ABCxyz019-_") }).map((s) => `bt1.${s}`),
          fc.constant(
            `bt1.${Buffer.from(JSON.stringify({ responseId: "r".repeat(10_000) })).toString("base64url")}`,
          ),
          fc
            .record({
              responseId: fc.string(),
              sequenceNumber: fc.oneof(fc.integer(), fc.double()),
            })
            .map((body) => `bt1.${Buffer.from(JSON.stringify(body)).toString("base64url")}`),
        )
        .map((text) => ({ original: undefined as string | undefined, text }));
      let retargeted = 0;
      await fc.assert(
        fc.asyncProperty(fc.oneof(edited, other), async ({ original, text }) => {
          if (original !== undefined && text !== original) {
            try {
              const decoded = decodeContinuationToken(text);
              const intended = decodeContinuationToken(original);
              // Only a change that leaves what the token says intact may decode (whitespace
              // around it, the unused bits of the last base64 character).
              if (JSON.stringify(decoded) !== JSON.stringify(intended)) retargeted++;
            } catch {
              // refused: counted below
            }
          }
          const ok = await attempt(counts.tokens, () => rehydrateRun({ client }, { token: text }));
          return ok && crashes.length === 0;
        }),
        { seed, numRuns: tokenRuns },
      );
      expect(retargeted).toBe(0);
      expect(crashes).toEqual([]);
      expect(counts.tokens.hangs).toBe(0);
      expect(counts.tokens.untyped).toBe(0);
    },
    Math.max(120_000, tokenRuns * 500),
  );

  it(
    `${runIdRuns} generated run ids: refused before any create, or saved inside the store`,
    async () => {
      const client = clientFor(emulator);
      const runsDir = await mkdtemp(join(tmpdir(), "baton-probe-ids-"));
      const store = new FileRunStore(runsDir);
      const id = fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.constantFrom(
          "../x",
          "a".repeat(300),
          ".hidden",
          "a/b",
          "",
          "..",
          "run\u0000x",
          "run_ok",
        ),
        fc.stringMatching(/^[A-Za-z0-9_.-]{1,140}$/),
      );
      await fc.assert(
        fc.asyncProperty(id, async (runId) => {
          const before = emulator.countCreates();
          let refused = false;
          const ok = await attempt(counts.runIds, async () => {
            try {
              return startRun({ client, model: "o3", input: "x", options: FAST, runId, store });
            } catch (err) {
              refused = err instanceof InvalidRunInputError;
              throw err;
            }
          });
          // Refused: nothing created (and billed). Accepted: found again by its id.
          if (refused && emulator.countCreates() !== before) return false;
          const again = await attempt(counts.runIds, () =>
            rehydrateRun({ client, store }, { runId, store }),
          );
          return ok && again && crashes.length === 0;
        }),
        { seed, numRuns: runIdRuns },
      );
      // Nothing escaped the store's folder.
      for (const name of await readdir(runsDir))
        expect(name).toMatch(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.run\.json$/);
      expect(crashes).toEqual([]);
      expect(counts.runIds.hangs).toBe(0);
      expect(counts.runIds.untyped).toBe(0);
    },
    Math.max(120_000, runIdRuns * 2_000),
  );

  it("a token's checksum: every one-character substitution of a real token is refused", () => {
    const token = encodeContinuationToken({
      responseId: "resp_0123456789abcdef",
      sequenceNumber: 41,
    });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let decodedOther = 0;
    for (let i = 4; i < token.length; i++) {
      for (const char of alphabet) {
        if (char === token[i]) continue;
        const typo = token.slice(0, i) + char + token.slice(i + 1);
        try {
          const decoded = decodeContinuationToken(typo);
          if (decoded.responseId !== "resp_0123456789abcdef" || decoded.sequenceNumber !== 41) {
            decodedOther++;
          }
        } catch (err) {
          expect(err).toBeInstanceOf(BatonError);
        }
      }
    }
    expect(decodedOther).toBe(0);
  });
});
