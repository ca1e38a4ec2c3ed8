/**
 * A small unified-style line diff for `rsm setup --dry-run`. Config edits are local, so the
 * common head and tail are trimmed first and the LCS runs only on the changed middle; this
 * keeps a 100k-line `~/.claude.json` cheap.
 */

/** Options for {@link unifiedDiff}. */
export interface DiffOptions {
  /** Lines of context around each change (default 3). */
  context?: number;
  /** Label of the old side (`--- a`). */
  from?: string;
  /** Label of the new side (`+++ b`). */
  to?: string;
}

type Op = { kind: " " | "-" | "+"; line: string; a: number; b: number };

/**
 * Returns a unified diff of `before` → `after` ("" when equal).
 *
 * @example
 * ```ts
 * unifiedDiff("a\nb\n", "a\nc\n", { from: "x", to: "x" });
 * // --- x\n+++ x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n
 * ```
 */
export function unifiedDiff(before: string, after: string, options: DiffOptions = {}): string {
  if (before === after) return "";
  const context = options.context ?? 3;
  const a = splitLines(before);
  const b = splitLines(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head && tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) tail++;
  const ops: Op[] = [];
  for (let i = 0; i < head; i++) ops.push({ kind: " ", line: a[i]!, a: i, b: i });
  ops.push(...middle(a.slice(head, a.length - tail), b.slice(head, b.length - tail), head));
  for (let i = tail; i > 0; i--) {
    ops.push({ kind: " ", line: a[a.length - i]!, a: a.length - i, b: b.length - i });
  }
  const out = [`--- ${options.from ?? "before"}`, `+++ ${options.to ?? "after"}`];
  let i = 0;
  while (i < ops.length) {
    if (ops[i]!.kind === " ") {
      i++;
      continue;
    }
    // a hunk: from `context` lines before this change to `context` lines after the last
    // change that is within 2*context of the previous one
    const start = Math.max(0, i - context);
    let end = i;
    let j = i;
    while (j < ops.length) {
      if (ops[j]!.kind !== " ") {
        end = j;
        j++;
        continue;
      }
      if (j - end > 2 * context) break;
      j++;
    }
    const stop = Math.min(ops.length, end + context + 1);
    const hunk = ops.slice(start, stop);
    const aLines = hunk.filter((o) => o.kind !== "+").length;
    const bLines = hunk.filter((o) => o.kind !== "-").length;
    const aStart = firstIndex(hunk, "a", ops, start);
    const bStart = firstIndex(hunk, "b", ops, start);
    out.push(`@@ -${range(aStart, aLines)} +${range(bStart, bLines)} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
    i = stop;
  }
  return out.join("\n") + "\n";
}

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  else lines[lines.length - 1] += "  (no newline at end)";
  return lines;
}

function range(start: number, count: number): string {
  return count === 0 ? `${start},0` : `${start + 1},${count}`;
}

function firstIndex(hunk: Op[], side: "a" | "b", ops: Op[], start: number): number {
  const skip = side === "a" ? "+" : "-";
  const op = hunk.find((o) => o.kind !== skip);
  if (op) return op[side];
  // the hunk has no line on this side: position after the previous line of that side
  for (let k = start - 1; k >= 0; k--) {
    const prev = ops[k]!;
    if (prev.kind !== skip) return prev[side] + 1;
  }
  return 0;
}

function middle(a: string[], b: string[], offset: number): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > 4_000_000) {
    // too big for an LCS table: show it as one replacement
    return [
      ...a.map((line, i) => ({ kind: "-" as const, line, a: offset + i, b: offset })),
      ...b.map((line, j) => ({ kind: "+" as const, line, a: offset + n, b: offset + j })),
    ];
  }
  const lcs: Uint32Array[] = [];
  for (let i = 0; i <= n; i++) lcs.push(new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i]!;
    const next = lcs[i + 1]!;
    for (let j = m - 1; j >= 0; j--) {
      row[j] = a[i] === b[j] ? next[j + 1]! + 1 : Math.max(next[j]!, row[j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: " ", line: a[i]!, a: offset + i, b: offset + j });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      ops.push({ kind: "-", line: a[i]!, a: offset + i, b: offset + j });
      i++;
    } else {
      ops.push({ kind: "+", line: b[j]!, a: offset + i, b: offset + j });
      j++;
    }
  }
  return ops;
}
