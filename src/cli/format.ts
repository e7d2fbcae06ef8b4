/** Durations and tables as the CLI prints them (status, runs, the progress line). */
import { sanitize } from "./sanitize.js";

/**
 * A duration, short: `3s`, `2m05s`, `1h02m`, `3d04h`.
 *
 * @example
 * ```ts
 * formatAge(125_000); // "2m05s"
 * ```
 */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
}

/**
 * An elapsed time: tenths of a second under a minute, else as {@link formatAge}.
 *
 * @example
 * ```ts
 * formatElapsed(1_234); // "1.2s"
 * ```
 */
export function formatElapsed(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : formatAge(ms);
}

/**
 * Left-aligned columns, two spaces apart; every cell sanitised (it may come from a file).
 *
 * @example
 * ```ts
 * formatTable([["run", "run_1"], ["state", "done"]]); // "run    run_1\nstate  done"
 * ```
 */
export function formatTable(table: readonly (readonly string[])[]): string {
  const rows = table.map((row) => row.map((cell) => sanitize(cell)));
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
