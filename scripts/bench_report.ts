/**
 * Benchmark results: the row shape, percentiles, the sanity check `--quick` enforces, and the
 * three renderings (markdown table, JSON document, SVG bar chart of the rsm/OpenSSH ratios).
 * No dependencies: the SVG is written as plain text.
 */

/** How a row came out. `na` = could not run here (tool not served yet, no Docker engine). */
export type RowStatus = "ok" | "na" | "error";

/** One benchmark row (one line of the table). */
export interface Row {
  /** Stable id (`exec_latency`, `forward_loopback`, …), used by `--only` and the JSON. */
  id: string;
  /** What the row measures, as shown in the table. */
  name: string;
  status: RowStatus;
  /** rsm's figures, shown in the rsm column. */
  rsm: string;
  /** OpenSSH's (or the docker CLI's) figures, or "—" when there is no baseline. */
  baseline: string;
  /** rsm / baseline (or TOON / JSON), when the row has one. */
  ratio?: number;
  /** The target, in words (`≤ 0.6×`, `≤ 10 ms`). */
  target: string;
  /** Whether the target was met; undefined when the row did not run. */
  met?: boolean;
  /** Raw numbers for the JSON (milliseconds, MiB/s, bytes, MB). */
  values: Record<string, number>;
  /** Cipher, reason for n/a, error text, or any remark. */
  note?: string | undefined;
  /** How the ratio reads, for the chart: lower or higher is better. */
  better?: "lower" | "higher";
  /** The target's ratio bound, for the chart. */
  ratioTarget?: number;
}

/** Percentile (nearest-rank) of `xs`; `p` in 0..100. */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!; // xs is not empty: the index is in range
}

/** p50/p95/p99 of a list of milliseconds. */
export function latencyStats(ms: number[]): { p50: number; p95: number; p99: number } {
  return { p50: percentile(ms, 50), p95: percentile(ms, 95), p99: percentile(ms, 99) };
}

/** `3.14 ms`, `1.20 s`. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}

/** `p50 3.1 ms · p95 4.0 ms · p99 6.2 ms` */
export function fmtLatency(s: { p50: number; p95: number; p99: number }): string {
  return `p50 ${fmtMs(s.p50)} · p95 ${fmtMs(s.p95)} · p99 ${fmtMs(s.p99)}`;
}

/** `123.4 MiB/s` */
export function fmtRate(mibs: number): string {
  return `${mibs.toFixed(1)} MiB/s`;
}

/** Bytes as `12,345 B (12.1 KB)`. */
export function fmtBytes(n: number): string {
  return `${n.toLocaleString("en-US")} B (${(n / 1000).toFixed(1)} KB)`;
}

/**
 * Why a measured row's numbers cannot be right (NaN, negative, zero throughput, absurd
 * sizes), or null. `--quick` fails on these, never on a missed target.
 */
export function insane(row: Row): string | null {
  if (row.status !== "ok") return null;
  const entries = Object.entries(row.values);
  if (!entries.length) return "no numbers";
  for (const [k, v] of entries) {
    if (typeof v !== "number" || !Number.isFinite(v)) return `${k} is not a finite number`;
    if (v < 0) return `${k} is negative (${v})`;
    if (k.endsWith("_ms") && v > 600_000) return `${k} is over 10 minutes (${v})`;
    if (k.endsWith("_mibs") && (v <= 0.01 || v > 100_000)) return `${k} is absurd (${v} MiB/s)`;
    if (k.endsWith("_mb") && (v < 1 || v > 64_000)) return `${k} is absurd (${v} MB)`;
    if (k.endsWith("_bytes") && v <= 0) return `${k} is zero`;
  }
  if (row.ratio !== undefined && !(row.ratio > 0 && Number.isFinite(row.ratio))) {
    return `ratio is ${row.ratio}`;
  }
  return null;
}

/** What the machine is (filled in by the script; the README table quotes it). */
export interface Machine {
  cpu: string;
  cores: number;
  memory_gib: number;
  kernel: string;
  deno: string;
  openssh: string;
  docker?: string | undefined;
  load_before: string;
}

/** The whole run, as `--json` prints it. */
export interface Report {
  mode: "full" | "quick";
  started_at: string;
  duration_s: number;
  cipher: string;
  /** rsm's crypto path: `libcrypto (<file>)` or `portable (<why>)` (lib/ssh/crypto/). */
  crypto?: string;
  machine: Machine;
  rows: Row[];
}

function metText(row: Row): string {
  if (row.status === "na") return "n/a";
  if (row.status === "error") return "error";
  if (row.met === undefined) return "—";
  return row.met ? "yes" : "**no**";
}

function cell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** The markdown table (plus a machine line and notes). */
export function markdown(report: Report): string {
  const m = report.machine;
  const lines = [
    `rsm vs OpenSSH — ${report.mode} run, ${report.started_at}, ${report.duration_s.toFixed(0)} s`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB, Linux ${m.kernel}, Deno ${m.deno}, ` +
    `${m.openssh}${m.docker ? `, Docker ${m.docker}` : ""}; load before: ${m.load_before}. ` +
    `Cipher (both sides): ${report.cipher}.` +
    (report.crypto ? ` rsm crypto path: ${report.crypto}.` : ""),
    "",
    "| row | rsm | OpenSSH / baseline | rsm/OpenSSH | target | met? |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of report.rows) {
    const rsm = r.status === "ok" ? r.rsm : r.status === "na" ? `n/a (${r.note ?? "?"})` : "error";
    const ratio = r.ratio !== undefined ? `${r.ratio.toFixed(2)}×` : "—";
    lines.push(
      `| ${cell(r.name)} | ${cell(rsm)} | ${cell(r.baseline)} | ${ratio} | ${cell(r.target)} | ${
        metText(r)
      } |`,
    );
  }
  const notes = report.rows.filter((r) => r.note && r.status !== "na");
  if (notes.length) {
    lines.push("", "Notes:");
    for (const r of notes) lines.push(`- ${r.name}: ${r.note}`);
  }
  return lines.join("\n") + "\n";
}

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * A horizontal bar chart of every row that has a ratio: the bar is the ratio, a dashed tick
 * marks the target, green when met, red when missed; a line marks 1.0×.
 */
export function svgChart(report: Report): string {
  const rows = report.rows.filter((r) => r.status === "ok" && r.ratio !== undefined);
  const W = 860, left = 330, right = 60, top = 56, barH = 22, gap = 12;
  const H = top + Math.max(1, rows.length) * (barH + gap) + 48;
  const max = Math.max(
    1.5,
    ...rows.map((r) => r.ratio ?? 0),
    ...rows.map((r) => r.ratioTarget ?? 0),
  ) * 1.1;
  const x = (v: number) => left + (v / max) * (W - left - right);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">` +
    `rsm / OpenSSH (${report.mode} run, ${report.started_at.slice(0, 10)}, cipher ${
      esc(report.cipher.split(" ")[0] ?? "")
    })</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555" font-size="11">` +
    `bar = rsm ÷ baseline (TOON ÷ JSON for the TOON rows); dashed = target; ` +
    `green met, red missed; ↓ lower is better, ↑ higher is better</text>`,
  ];
  for (let v = 0; v <= max; v += max > 4 ? 1 : 0.5) {
    out.push(
      `<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${H - 40}" stroke="#eee"/>`,
      `<text x="${x(v)}" y="${H - 24}" text-anchor="middle" fill="#555">${v.toFixed(1)}×</text>`,
    );
  }
  out.push(
    `<line x1="${x(1)}" y1="${top - 6}" x2="${x(1)}" y2="${H - 40}" stroke="#333" ` +
      `stroke-width="1.5"/>`,
  );
  rows.forEach((r, i) => {
    const y = top + i * (barH + gap);
    const color = r.met === false ? "#d9534f" : "#3c9a5f";
    const arrow = r.better === "higher" ? "↑" : "↓";
    out.push(
      `<text x="${left - 8}" y="${y + barH * 0.7}" text-anchor="end">${
        esc(r.name.replaceAll("`", ""))
      } ${arrow}</text>`,
      `<rect x="${left}" y="${y}" width="${Math.max(1, x(r.ratio!) - left)}" height="${barH}" ` +
        `fill="${color}"/>`,
      `<text x="${
        Math.max(x(r.ratio!), r.ratioTarget === undefined ? 0 : x(r.ratioTarget)) + 5
      }" y="${y + barH * 0.7}">${r.ratio!.toFixed(2)}×</text>`,
    );
    if (r.ratioTarget !== undefined) {
      out.push(
        `<line x1="${x(r.ratioTarget)}" y1="${y - 3}" x2="${x(r.ratioTarget)}" ` +
          `y2="${y + barH + 3}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/>`,
      );
    }
  });
  if (!rows.length) {
    out.push(`<text x="${W / 2}" y="${top + 16}" text-anchor="middle">no ratios measured</text>`);
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
