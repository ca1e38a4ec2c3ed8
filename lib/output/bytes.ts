/**
 * Byte helpers shared by everything that bounds output: joining chunks, and cutting a byte
 * range so that it ends (or starts) on a UTF-8 character boundary and fits a budget measured
 * in what the bytes really cost once rendered.
 */

/** What showing one byte costs in the rendered text. */
export type ByteCost = (byte: number) => number;

/** Raw text sections show every byte as itself. */
export const RAW_COST: ByteCost = () => 1;

/**
 * The cost of a byte inside a JSON string as `JSON.stringify` writes it: `"` and `\` and
 * the short escapes (`\n`, `\t`, `\r`, `\b`, `\f`) take 2, other control characters 6
 * (`\u0001`), everything else (including UTF-8 continuation bytes) 1.
 */
export const JSON_COST: ByteCost = (b) => {
  if (b === 0x22 || b === 0x5c) return 2;
  if (b >= 0x20) return 1;
  return b === 0x0a || b === 0x09 || b === 0x0d || b === 0x08 || b === 0x0c ? 2 : 6;
};

/**
 * Joins byte chunks into one array (no copy when there is a single chunk).
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[], length?: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const len = length ?? parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whether `b` is a UTF-8 continuation byte (10xxxxxx). */
function continuation(b: number | undefined): boolean {
  return b !== undefined && (b & 0xc0) === 0x80;
}

/**
 * The first character boundary at or after `i`: skips the continuation bytes of a character
 * cut in front (at most 3, the most a valid character has; invalid bytes are left to the
 * decoder).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextBoundary } from "./bytes.ts";
 * assert.equal(nextBoundary(new TextEncoder().encode("é!"), 1), 2);
 * ```
 */
export function nextBoundary(bytes: Uint8Array, i: number): number {
  const stop = Math.min(bytes.length, i + 3);
  while (i < stop && continuation(bytes[i])) i++;
  return i;
}

/**
 * The last character boundary at or before `i` (at most 3 bytes back), so that
 * `bytes.subarray(0, n)` ends on a whole character.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prevBoundary } from "./bytes.ts";
 * assert.equal(prevBoundary(new TextEncoder().encode("é!"), 1), 0);
 * ```
 */
export function prevBoundary(bytes: Uint8Array, i: number): number {
  const stop = Math.max(0, i - 3);
  while (i > stop && i < bytes.length && continuation(bytes[i])) i--;
  return i;
}

/**
 * Length of the prefix of `bytes` that ends on a UTF-8 character boundary: a character whose
 * last bytes have not arrived yet is left for the next read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { completeLength } from "./bytes.ts";
 * assert.equal(completeLength(new TextEncoder().encode("aé").subarray(0, 2)), 1);
 * ```
 */
export function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  // look back at most 3 bytes for the start of the last character
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!;
    if (continuation(b)) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return back < need ? n - back : n;
  }
  return n;
}

/** Whether `bytes[i]` is a UTF-8 continuation byte (so a cut at `i` would split a character). */
function inside(bytes: Uint8Array, i: number): boolean {
  return i > 0 && i < bytes.length && continuation(bytes[i]);
}

/**
 * How many bytes from the start of `bytes` fit `budget` under `cost`, moved back to a
 * character boundary and, when a newline lies within the last `snap` bytes, to just after
 * that newline (so a cut reads as whole lines).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitHead, RAW_COST } from "./bytes.ts";
 * assert.equal(fitHead(new TextEncoder().encode("ab\ncd"), 4, RAW_COST, 8), 3);
 * ```
 */
export function fitHead(bytes: Uint8Array, budget: number, cost: ByteCost, snap = 0): number {
  let n = 0;
  let used = 0;
  while (n < bytes.length) {
    const c = cost(bytes[n]!);
    if (used + c > budget) break;
    used += c;
    n++;
  }
  while (inside(bytes, n)) n--;
  if (n < bytes.length && snap > 0) {
    for (let i = n; i > 0 && i >= n - snap; i--) {
      if (bytes[i - 1] === 0x0a) return i;
    }
  }
  return n;
}

/**
 * How many bytes from the end of `bytes` fit `budget` under `cost`, moved forward to a
 * character boundary and, when a newline lies within the first `snap` bytes of the kept part,
 * to just after it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitTail, RAW_COST } from "./bytes.ts";
 * assert.equal(fitTail(new TextEncoder().encode("ab\ncd"), 4, RAW_COST, 8), 2);
 * ```
 */
export function fitTail(bytes: Uint8Array, budget: number, cost: ByteCost, snap = 0): number {
  let start = bytes.length;
  let used = 0;
  while (start > 0) {
    const c = cost(bytes[start - 1]!);
    if (used + c > budget) break;
    used += c;
    start--;
  }
  while (inside(bytes, start)) start++;
  if (start > 0 && snap > 0) {
    for (let i = start; i < bytes.length && i < start + snap; i++) {
      if (bytes[i] === 0x0a && i + 1 < bytes.length) return bytes.length - (i + 1);
    }
  }
  return bytes.length - start;
}

/** The summed cost of `bytes`. */
export function costOf(bytes: Uint8Array, cost: ByteCost): number {
  if (cost === RAW_COST) return bytes.length;
  let n = 0;
  for (const b of bytes) n += cost(b);
  return n;
}
