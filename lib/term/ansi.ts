const ANSI =
  // deno-lint-ignore no-control-regex
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[ -/]*[0-~]|\x9b[0-?]*[ -/]*[@-~]/g;
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

/**
 * Removes terminal escape sequences (colours, cursor moves, titles, bracketed-paste toggles)
 * and stray control characters, and turns `\r\n` into `\n`, so text reads as plain lines.
 * Tabs and newlines stay.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(stripAnsi("\x1b[31mred\x1b[0m\r\n"), "red\n");
 * ```
 */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "").replace(/\r+\n/g, "\n").replace(/\r/g, "").replace(CONTROL, "");
}
