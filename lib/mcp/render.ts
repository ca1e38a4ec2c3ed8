/**
 * Readable results (README, "Readable results"): an object's scalar fields as a short TOON
 * header, then its program-output fields (`stdout`, `stderr`, `output`, `data`, `logs`,
 * `screen`) as raw text sections, e.g.
 *
 * ```
 * exit_code: 3
 * truncated: false
 * --- stdout (27 bytes) ---
 * line one
 * line "two"
 * ```
 *
 * The bound is applied once, here, on what is really shown: every section is cut so that the
 * whole rendered text fits `max` bytes, `truncated` is true exactly when source bytes were left
 * out, and the omitted counts (marker and fields) are exact. What was left out goes to the
 * output store, named by `output_id`.
 */
import { encode } from "@toon-format/toon";
import {
  type ByteCost,
  type Cut,
  cutText,
  isTextSource,
  JSON_COST,
  type Keep,
  MARKER_ROOM,
  type OutputStore,
  prepare,
  type Prepared,
  RAW_COST,
  type TextSource,
  wholeCost,
} from "../output/mod.ts";
import { boundText, type Format, render, renderBounded } from "./format.ts";
import { Text } from "./tool.ts";

/** Fields shown as raw text sections when they hold text. */
export const SECTION_FIELDS: ReadonlySet<string> = new Set([
  "stdout",
  "stderr",
  "output",
  "data",
  "logs",
  "screen",
  "tail", // the last lines of a call that became a job
]);

/** Options for {@link renderResult}. */
export interface RenderOptions {
  format: Format;
  /** Most bytes of rendered text. */
  max: number;
  /** Which end of a cut section to keep (default both). */
  keep?: Keep | undefined;
  /** Where cut text is kept; without one, results still say what was left out. */
  store?: OutputStore | undefined;
  /** Label for stored outputs (the tool name). */
  label?: string | undefined;
}

/** A rendered result: the text the model reads and, for objects, the JSON object. */
export interface Rendered {
  text: string;
  structured?: Record<string, unknown> | undefined;
}

interface Section {
  name: string;
  prep: Prepared;
  id?: string | undefined;
}

/**
 * Renders a tool's value, bounded to `options.max` bytes.
 *
 * @example
 * ```ts
 * import { renderResult } from "./render.ts";
 *
 * const { text } = renderResult({ exit_code: 0, stdout: "hi\n" }, { format: "toon", max: 32768 });
 * console.assert(text.startsWith("exit_code: 0\n"), text);
 * console.assert(text.includes("\nhi\n"), text); // the output as raw text, not escaped
 * ```
 */
export function renderResult(value: unknown, options: RenderOptions): Rendered {
  const { max, store } = options;
  const label = options.label ?? "result";
  if (value instanceof Text || typeof value === "string") {
    const text = value instanceof Text ? value.text : value;
    let id: string | undefined;
    return { text: boundText(text, max, () => (id ??= store?.put(text, label))).text };
  }
  if (Array.isArray(value)) return { text: renderBounded(value, options.format, max) };
  if (value === null || typeof value !== "object") return { text: String(value) };
  const obj = value as Record<string, unknown>;
  const names = Object.keys(obj).filter((k) => SECTION_FIELDS.has(k) && isTextSource(obj[k]));
  if (!names.length) {
    const text = render(obj, options.format);
    const json = options.format === "json" ? text : JSON.stringify(obj);
    const structured = byteLength(json) <= max ? obj : undefined;
    if (byteLength(text) <= max) return { text, structured };
    let id: string | undefined;
    return { text: boundText(text, max, () => (id ??= store?.put(text, label))).text };
  }
  const sections: Section[] = names.map((name) => ({
    name,
    prep: prepare(obj[name] as TextSource),
  }));
  const idOf = (s: Section) => () => {
    if (s.id) return s.id;
    const src = s.prep.source;
    if (typeof src === "object" && !(src instanceof Uint8Array)) s.id = src.storedId();
    else s.id = store?.put(s.prep.whole ?? new Uint8Array(0), `${label} ${s.name}`);
    return s.id;
  };
  const keep = options.keep ?? "both";
  const out = layout(obj, sections, options.format, max, keep, idOf);
  return { text: out.text, structured: out.obj };
}

/** Cuts the sections to fit and assembles the text in one format. */
function layout(
  obj: Record<string, unknown>,
  sections: Section[],
  format: Format,
  max: number,
  keep: Keep,
  idOf: (s: Section) => () => string | undefined,
  binary = false,
): { text: string; obj: Record<string, unknown> } {
  const base: ByteCost = format === "json" ? JSON_COST : RAW_COST;
  // Undecodable bytes grow when shown (U+FFFD is 3 bytes): the second try counts them so.
  const cost: ByteCost = binary ? (b) => (b >= 0x80 ? 3 : base(b)) : base;
  if (!binary && sections.every((s) => s.prep.whole)) {
    const whole = new Map<string, Cut>(sections.map((s) => [s.name, {
      text: new TextDecoder().decode(s.prep.whole),
      shown: s.prep.total,
      omitted: 0,
    }]));
    const out = assemble(obj, sections, whole, format, false);
    if (byteLength(out.text) <= max) return out;
  }
  // Room for the sections: what is left after the header with every field at its widest.
  const widest = new Map<string, Cut>(
    sections.map((s) => [s.name, { text: "", shown: 1e12, omitted: 1e12 }]),
  );
  const overhead = byteLength(assemble(obj, sections, widest, format, true).text);
  let room = max - overhead - sections.length * (MARKER_ROOM + 2) - 8;
  // Sections that fit get all they need; the others share the rest equally.
  const order = sections
    .map((s) => ({ s, need: wholeCost(s.prep, cost) }))
    .sort((a, b) => a.need - b.need);
  const cuts = new Map<string, Cut>();
  let left = order.length;
  for (const { s, need } of order) {
    const budget = Math.min(need, Math.max(0, Math.floor(room / left)));
    cuts.set(s.name, cutText(s.prep, budget, keep, cost, idOf(s)));
    room -= budget;
    left--;
  }
  const out = assemble(obj, sections, cuts, format, false);
  if (binary || byteLength(out.text) <= max) return out;
  return layout(obj, sections, format, max, keep, idOf, true);
}

/**
 * Builds the result object (JSON shape) and its text. `placeholder` gives every section the
 * widest bookkeeping fields, to measure the overhead before cutting.
 */
function assemble(
  obj: Record<string, unknown>,
  sections: Section[],
  cuts: Map<string, Cut>,
  format: Format,
  placeholder: boolean,
): { text: string; obj: Record<string, unknown> } {
  const cutSections = sections.filter((s) => placeholder || (cuts.get(s.name)?.omitted ?? 0) > 0);
  // `truncated` shows when something was cut, or always when the tool's value carries it.
  const truncated = cutSections.length > 0 || obj.truncated === true;
  const meta: Record<string, unknown> = truncated || "truncated" in obj ? { truncated } : {};
  for (const s of cutSections) {
    const prefix = cutSections[0] === s ? "" : `${s.name}_`;
    const c = cuts.get(s.name)!;
    const id = placeholder ? "o-xxxxxxxx" : s.id;
    if (id) meta[`${prefix}output_id`] = id;
    meta[`${prefix}total_bytes`] = placeholder ? 1e12 : s.prep.total;
    meta[`${prefix}omitted_bytes`] = c.omitted;
  }
  const full: Record<string, unknown> = {};
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === "truncated" || v === undefined) continue;
    const cut = cuts.get(k);
    if (cut && sections.some((s) => s.name === k)) {
      full[k] = cut.text;
    } else {
      full[k] = v;
      header[k] = v;
    }
  }
  Object.assign(full, meta);
  Object.assign(header, meta);
  if (format === "json") return { text: JSON.stringify(full, null, 2), obj: full };
  let text = encode(header as Parameters<typeof encode>[0]);
  for (const s of sections) {
    const c = cuts.get(s.name)!;
    const size = c.omitted ? `${s.prep.total} bytes, ${c.shown} shown` : `${s.prep.total} bytes`;
    // the section's bytes as they are; a newline is added before the next header only when the
    // text does not end with one (the byte count in the header tells)
    const what = placeholder ? "999999999999 bytes, 999999999999 shown" : size;
    text += `${text.endsWith("\n") ? "" : "\n"}--- ${s.name} (${what}) ---\n${c.text}`;
  }
  return { text, obj: full };
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}
