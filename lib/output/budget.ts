/**
 * Splits a budget of `max` bytes between stdout and stderr: each keeps what it needs when both
 * fit; otherwise stderr keeps at least a quarter (or all it needs, if less).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitBudget } from "./budget.ts";
 * assert.deepEqual(splitBudget(1000, 1000, 100), [75, 25]);
 * ```
 */
export function splitBudget(
  stdoutBytes: number,
  stderrBytes: number,
  max: number,
): [number, number] {
  if (stdoutBytes + stderrBytes <= max) return [max, max];
  const err = Math.min(stderrBytes, Math.max(Math.floor(max / 4), max - stdoutBytes));
  return [max - err, err];
}
