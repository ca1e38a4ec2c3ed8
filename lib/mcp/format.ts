import { encode } from "@toon-format/toon";
import { boundPlain } from "../output/mod.ts";

import type { Format } from "../config.ts";

export { DEFAULT_MAX_OUTPUT, type Format } from "../config.ts";

/**
 * Keeps the head and tail of `text` when it is longer than `max` bytes, with a marker
 * `[… N bytes omitted …]` in between (N exact; the marker names the stored copy when
 * `outputId` gives one). UTF-8 characters are never split.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { boundText } from "./format.ts";
 * assert.equal(boundText("x".repeat(100_000), 1000).truncated, true);
 * ```
 */
export function boundText(
  text: string,
  max: number,
  outputId?: () => string | undefined,
): { text: string; truncated: boolean; omitted: number } {
  return boundPlain(text, max, outputId);
}

/**
 * Renders a tool's value as TOON (default) or JSON. `undefined` fields are dropped and
 * `null` lists become `[]` at the call sites, never here.
 */
export function render(value: unknown, format: Format): string {
  if (typeof value === "string") return value;
  if (format === "json") return JSON.stringify(value, null, 2);
  return encode(value as Parameters<typeof encode>[0]);
}

/**
 * Renders and bounds a value. Lists longer than fit are cut by rows with a note saying how
 * many rows were left out; other values are cut head+tail.
 */
export function renderBounded(value: unknown, format: Format, max: number): string {
  const text = render(value, format);
  if (new TextEncoder().encode(text).length <= max) return text;
  if (Array.isArray(value) && value.length > 1) {
    let lo = 0;
    let hi = value.length;
    while (lo < hi) { // largest prefix that fits with its note
      const mid = Math.ceil((lo + hi) / 2);
      const t = render(value.slice(0, mid), format);
      if (new TextEncoder().encode(t).length + 80 <= max) lo = mid;
      else hi = mid - 1;
    }
    const left = value.length - lo;
    return `${render(value.slice(0, lo), format)}\n[… ${left} more rows left out …]`;
  }
  return boundText(text, max).text;
}
