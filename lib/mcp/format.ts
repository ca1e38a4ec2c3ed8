import { encode } from "@toon-format/toon";

/** Output formats (SPEC §4). */
export type Format = "toon" | "json";

/** Default cap on one text result, in bytes (SPEC §4.10). */
export const DEFAULT_MAX_OUTPUT = 32 * 1024;

/**
 * Keeps the head and tail of `text` when it is longer than `max` bytes, with a marker
 * `[… N bytes omitted …]` in between. UTF-8 characters are never split.
 *
 * @example
 * ```ts
 * boundText("x".repeat(100_000), 1000).truncated; // true
 * ```
 */
export function boundText(text: string, max: number): { text: string; truncated: boolean } {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= max) return { text, truncated: false };
  const half = Math.max(0, Math.floor((max - 40) / 2));
  const head = cutUtf8(bytes, half, "start");
  const tail = cutUtf8(bytes, half, "end");
  const omitted = bytes.length - head.length - tail.length;
  const dec = new TextDecoder();
  return {
    text: `${dec.decode(head)}\n[… ${omitted} bytes omitted …]\n${dec.decode(tail)}`,
    truncated: true,
  };
}

/** Takes up to `n` bytes from the start or end of `bytes`, moved to a UTF-8 boundary. */
function cutUtf8(bytes: Uint8Array, n: number, from: "start" | "end"): Uint8Array {
  if (from === "start") {
    let end = Math.min(n, bytes.length);
    while (end > 0 && end < bytes.length && (bytes[end] & 0xc0) === 0x80) end--;
    return bytes.subarray(0, end);
  }
  let start = Math.max(0, bytes.length - n);
  while (start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
  return bytes.subarray(start);
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
