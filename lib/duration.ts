/**
 * Parses a duration: `"15s"`, `"1m30s"`, `"500ms"`, `"2h"`, or a number of milliseconds.
 * Returns milliseconds; throws a `RangeError` that says what is accepted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(parseDuration("1m30s"), 90000);
 * assert.equal(parseDuration(250), 250);
 * ```
 */
export function parseDuration(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`invalid duration ${value}: expected a non-negative number of ms`);
    }
    return value;
  }
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(re)) {
    if (match.index !== consumed) break;
    consumed += match[0].length;
    const n = Number(match[1]);
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  }
  if (text.length === 0 || consumed !== text.length) {
    throw new RangeError(
      `invalid duration "${value}": expected forms like "15s", "1m30s", "500ms" or a number of ms`,
    );
  }
  return total;
}
