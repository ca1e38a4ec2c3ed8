/**
 * Cutting a text to a budget, once, on what is really shown: head and/or tail kept whole
 * (UTF-8 characters never split, lines kept whole where a newline is near the cut), and a
 * marker `[… N bytes omitted …]` whose N is exactly the number of source bytes left out.
 */
import { type ByteCost, concatBytes, costOf, fitHead, fitTail, RAW_COST } from "./bytes.ts";

/** Which part of a cut text to keep. */
export type Keep = "head" | "tail" | "both";

/** A collected stream (a `Capture`): its size, kept ends and stored copy. */
export interface CapturedStream {
  readonly total: number;
  readonly whole: Uint8Array | undefined;
  head(): Uint8Array;
  tail(): Uint8Array;
  storedId(): string | undefined;
  /**
   * The marker for `omitted` bytes left out after the first `headShown` bytes, for a stream
   * whose full text is read elsewhere than the output store (default: {@link marker} naming
   * `storedId()`). At most {@link MARKER_ROOM} bytes.
   */
  marker?(omitted: number, headShown: number): string;
}

/** A text to show: a plain string, raw bytes or a collected stream. */
export type TextSource = string | Uint8Array | CapturedStream;

function isStream(v: unknown): v is CapturedStream {
  return typeof v === "object" && v !== null && typeof (v as CapturedStream).storedId ===
      "function" &&
    typeof (v as CapturedStream).head === "function";
}

/** Whether a value is a text source (what a section field may hold). */
export function isTextSource(v: unknown): v is TextSource {
  return typeof v === "string" || v instanceof Uint8Array || isStream(v);
}

/** Room the marker line takes at most, with its newlines (counted out of the budget). */
export const MARKER_ROOM = 96;

/** The marker put where bytes were left out. */
export function marker(omitted: number, outputId?: string): string {
  return outputId
    ? `[… ${omitted} bytes omitted; output_read output_id=${outputId} …]`
    : `[… ${omitted} bytes omitted …]`;
}

/** A source's facts before cutting. */
export interface Prepared {
  total: number;
  /** Every byte, when known. */
  whole?: Uint8Array | undefined;
  head: Uint8Array;
  /** Bytes after `head` (disjoint from it). */
  tail: Uint8Array;
  source: TextSource;
}

/** Reads a source once. */
export function prepare(source: TextSource): Prepared {
  if (isStream(source)) {
    const whole = source.whole;
    if (whole) return { total: whole.length, whole, head: whole, tail: new Uint8Array(0), source };
    return { total: source.total, head: source.head(), tail: source.tail(), source };
  }
  const bytes = typeof source === "string" ? new TextEncoder().encode(source) : source;
  return { total: bytes.length, whole: bytes, head: bytes, tail: new Uint8Array(0), source };
}

/** The cost of showing a prepared source whole (Infinity when its middle is not in memory). */
export function wholeCost(p: Prepared, cost: ByteCost): number {
  return p.whole ? costOf(p.whole, cost) : Infinity;
}

/** A cut text. */
export interface Cut {
  /** The shown bytes, decoded, marker included when something was left out. */
  text: string;
  /** Source bytes shown. */
  shown: number;
  /** Source bytes left out (0 when whole). */
  omitted: number;
}

/**
 * Cuts a prepared source to `budget` (under `cost`, marker excluded: reserve
 * {@link MARKER_ROOM} for it). `idOf` is asked for the stored copy's id only when something
 * is left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cutText, prepare } from "./cut.ts";
 * import { RAW_COST } from "./bytes.ts";
 * const c = cutText(prepare("1\n2\n3\n4\n5\n"), 4, "both", RAW_COST);
 * assert.equal(c.omitted, 6);
 * ```
 */
export function cutText(
  p: Prepared,
  budget: number,
  keep: Keep,
  cost: ByteCost,
  idOf: () => string | undefined = () => undefined,
): Cut {
  const dec = new TextDecoder();
  if (p.whole && costOf(p.whole, cost) <= budget) {
    return { text: dec.decode(p.whole), shown: p.whole.length, omitted: 0 };
  }
  budget = Math.max(0, budget);
  // `head` and `tail` are disjoint regions; with the whole in memory, both come from it.
  const headSrc = p.whole ?? p.head;
  const tailSrc = p.whole ?? (p.tail.length ? p.tail : p.head);
  const snap = Math.min(256, Math.floor(budget / 8));
  let h = 0;
  let t = 0;
  if (keep === "head") h = fitHead(headSrc, budget, cost, snap);
  else if (keep === "tail") t = fitTail(tailSrc, budget, cost, snap);
  else {
    h = fitHead(headSrc, Math.floor(budget / 2), cost, snap);
    t = fitTail(tailSrc, budget - costOf(headSrc.subarray(0, h), cost), cost, snap);
  }
  if (p.whole && h + t > p.total) t = p.total - h; // cannot happen when over budget; stay safe
  const head = headSrc.subarray(0, h);
  const tail = tailSrc.subarray(tailSrc.length - t);
  const omitted = p.total - h - t;
  const src = p.source;
  const mark = isStream(src) && src.marker ? src.marker(omitted, h) : marker(omitted, idOf());
  const sep = h && head[h - 1] !== 0x0a ? "\n" : "";
  const text = keep === "tail" && !h
    ? `${mark}\n${dec.decode(tail)}`
    : `${dec.decode(head)}${sep}${mark}${t ? "\n" + dec.decode(tail) : ""}`;
  return { text, shown: h + t, omitted };
}

/**
 * Cuts a plain text to `max` bytes (marker included), keeping head and tail.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { boundPlain } from "./cut.ts";
 * assert.equal(boundPlain("x".repeat(100_000), 1000).truncated, true);
 * ```
 */
export function boundPlain(
  text: string,
  max: number,
  outputId?: () => string | undefined,
): { text: string; truncated: boolean; omitted: number } {
  const p = prepare(text);
  if (p.total <= max) return { text, truncated: false, omitted: 0 };
  const c = cutText(p, max - MARKER_ROOM, "both", RAW_COST, outputId);
  return { text: c.text, truncated: c.omitted > 0, omitted: c.omitted };
}

/** Joins byte parts (re-exported for callers that assemble chunks). */
export { concatBytes };
