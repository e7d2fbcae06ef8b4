/** The benchmark's report: the JSON written to bench/results and its Markdown table. */

/** One line of the summary table. */
export interface Figure {
  name: string;
  unit: string;
  baseline: number;
  baton: number;
  /** How `ratio` reads, e.g. "baton / raw". */
  ratioOf: string;
  ratio: number;
  /** Human-readable goal, when the issue sets one. */
  goal?: string;
  /** The value the goal is about, when it is not `ratio` (e.g. KiB added per run). */
  goalValue?: number;
  met?: boolean;
  note?: string;
}

export interface Report {
  date: string;
  mode: "full" | "quick";
  command: string;
  durationS: number;
  machine: {
    cpu: string;
    cores: number;
    node: string;
    os: string;
    memoryGiB: number;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  config: Record<string, unknown>;
  figures: Figure[];
  goals: { name: string; goal: string; value: number; met: boolean }[];
  details: Record<string, unknown>;
}

function format(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : 3;
  const text = value.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  });
  return unit ? `${text} ${unit}` : text;
}

/** The Markdown summary: machine, then one table row per figure. */
export function toMarkdown(report: Report): string {
  const m = report.machine;
  const lines = [
    `# baton overhead benchmark (${report.mode})`,
    "",
    `- Date: ${report.date}`,
    `- Command: \`${report.command}\` (${Math.round(report.durationS)} s)`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}`,
    `- Load average at start / end: ${m.loadAverageAtStart.join(", ")} / ${m.loadAverageAtEnd.join(", ")}`,
    "- Every ratio is against a baseline measured in the same run, median over interleaved rounds.",
    "",
    "| Figure | Baseline | baton | Ratio | Goal | Met |",
    "| --- | ---: | ---: | ---: | --- | :---: |",
  ];
  for (const f of report.figures) {
    const met = f.met === undefined ? "" : f.met ? "yes" : "**no**";
    lines.push(
      `| ${f.name} | ${format(f.baseline, f.unit)} | ${format(f.baton, f.unit)} | ${format(f.ratio, "")} (${f.ratioOf}) | ${f.goal ?? ""} | ${met} |`,
    );
  }
  const notes = report.figures.filter((f) => f.note);
  if (notes.length > 0) {
    lines.push("", "Notes:", "");
    for (const f of notes) lines.push(`- ${f.name}: ${f.note}`);
  }
  lines.push("");
  return lines.join("\n");
}
