/**
 * Text edits of JSON/JSONC client configs that touch only rsm's own entry: located with
 * jsonc-parser's parse tree and spliced into the original text, so comments, key order,
 * indentation and numbers too large for a double stay byte-for-byte. TOML (Codex) is in
 * toml.ts, Continue's block file in continue.ts.
 */
import {
  applyEdits,
  findNodeAtLocation,
  getNodeValue,
  type Node,
  type ParseError,
  parseTree,
  printParseErrorCode,
} from "jsonc-parser";
import { isDeepStrictEqual } from "node:util";
import { RsmError } from "../errors.ts";

/** What an edit did: the new text and whether our entry was added, updated or already right. */
export interface EditResult {
  status: "unchanged" | "added" | "updated";
  text: string;
  /** A remark for the user, e.g. that formatting could not be kept. */
  note?: string;
}

/** Options for {@link editJson}. */
export interface JsonEditOptions {
  /** Path of the object mapping server names to entries, e.g. `["mcpServers"]`. */
  rootKey: string[];
  /** Server name (the key under `rootKey`). */
  name: string;
  /** Fields rsm owns; each is compared and set on its own, other fields of the entry stay. */
  fields: Record<string, unknown>;
  /** Fields added only when the entry is created. */
  extraOnCreate?: Record<string, unknown> | undefined;
}

/**
 * Adds or updates `rootKey.name` in a JSON/JSONC document, changing only what differs.
 * Throws `RsmError("CONFIG_PARSE")` when the text is not JSON(C), `CONFIG_SHAPE` when it
 * has an unexpected shape.
 *
 * The document is located with jsonc-parser's `parseTree` and changed with `applyEdits`, but
 * the inserted text is built here rather than by `modify`: `modify` re-formats every line its
 * edit touches, which rewrote a neighbouring one-line entry (`"other": {"command": "x"}`).
 * Here nothing outside the inserted/replaced value changes, and new text follows the file's
 * own indentation (tabs or N spaces), line ends, and one-line style.
 *
 * @example
 * ```ts
 * editJson('{"a": 1}\n', { rootKey: ["mcpServers"], name: "rsm", fields: { command: "/x" } });
 * ```
 */
export function editJson(text: string, options: JsonEditOptions): EditResult {
  const { rootKey, name, fields } = options;
  const full: Record<string, unknown> = { ...fields };
  for (const [k, v] of Object.entries(options.extraOnCreate ?? {})) if (!(k in full)) full[k] = v;
  if (text.trim() === "") {
    let value: unknown = { [name]: full };
    for (const key of [...rootKey].reverse()) value = { [key]: value };
    return { status: "added", text: JSON.stringify(value, null, 2) + "\n" };
  }
  const style = detectStyle(text);
  const tree = parseJsonc(text);
  if (tree.type !== "object") throw shape("the top level is not an object");
  // walk down rootKey; create what is missing in one insertion
  let obj = tree;
  for (const [i, key] of rootKey.entries()) {
    const node = findNodeAtLocation(obj, [key]);
    if (!node) {
      let value: unknown = { [name]: full };
      for (const inner of rootKey.slice(i + 1).reverse()) value = { [inner]: value };
      return { status: "added", text: insertProperty(text, obj, key, value, style) };
    }
    if (node.type !== "object") {
      throw shape(`"${rootKey.slice(0, i + 1).join(".")}" is not an object`);
    }
    obj = node;
  }
  const entry = findNodeAtLocation(obj, [name]);
  if (!entry) return { status: "added", text: insertProperty(text, obj, name, full, style) };
  if (entry.type !== "object") {
    return { status: "updated", text: replaceValue(text, entry, full, style) };
  }
  const r = setFields(text, [...rootKey, name], fields, style);
  return { status: r.changed ? "updated" : "unchanged", text: r.text };
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Sets each field of the object at `path` that differs; a plain-object field (`env`) is set
 * key by key, so the user's other keys in it stay.
 */
function setFields(
  text: string,
  path: string[],
  fields: Record<string, unknown>,
  style: Style,
): { text: string; changed: boolean } {
  let out = text;
  let changed = false;
  for (const [key, value] of Object.entries(fields)) {
    const parent = findNodeAtLocation(parseJsonc(out), path)!;
    const node = findNodeAtLocation(parent, [key]);
    if (isPlain(value) && node?.type === "object") {
      const r = setFields(out, [...path, key], value, style);
      out = r.text;
      changed ||= r.changed;
      continue;
    }
    if (node && isDeepStrictEqual(getNodeValue(node), value)) continue;
    out = node
      ? replaceValue(out, node, value, style)
      : insertProperty(out, parent, key, value, style);
    changed = true;
  }
  return { text: out, changed };
}

interface Style {
  eol: string;
  unit: string;
}

/** Indentation unit and line end of an existing document, so inserted lines look native. */
function detectStyle(text: string): Style {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const indented = text.split(/\r?\n/).find((l) => /^[ \t]+\S/.test(l));
  if (indented?.startsWith("\t")) return { eol, unit: "\t" };
  const size = indented ? indented.length - indented.trimStart().length : 2;
  return { eol, unit: " ".repeat(Math.min(Math.max(size, 1), 8)) };
}

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf("\n", offset - 1) + 1;
}

function indentAt(text: string, offset: number): string {
  const start = lineStart(text, offset);
  return /^[ \t]*/.exec(text.slice(start, offset))![0];
}

function sameLine(text: string, a: number, b: number): boolean {
  return !text.slice(Math.min(a, b), Math.max(a, b)).includes("\n");
}

/** `value` as JSON: pretty at `indent` (+ `style.unit` per level), or on one line. */
function render(value: unknown, indent: string, style: Style, oneLine: boolean): string {
  if (oneLine) return flat(value);
  return JSON.stringify(value, null, style.unit).split("\n").join(style.eol + indent);
}

/** JSON on one line with a space after `:` and `,` (`{"a": [1, 2]}`). */
function flat(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flat).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${flat(v)}`);
    return `{${items.join(", ")}}`;
  }
  return JSON.stringify(value);
}

function insertProperty(text: string, obj: Node, key: string, value: unknown, style: Style) {
  const props = obj.children ?? [];
  const k = JSON.stringify(key);
  const last = props.at(-1);
  if (last) {
    const end = last.offset + last.length;
    if (sameLine(text, obj.offset, last.offset)) {
      // a one-line object stays one line
      const content = `, ${k}: ${render(value, "", style, true)}`;
      return applyEdits(text, [{ offset: end, length: 0, content }]);
    }
    const indent = indentAt(text, last.offset);
    const prop = `${indent}${k}: ${render(value, indent, style, false)}`;
    let lineEnd = text.indexOf("\n", end);
    if (lineEnd < 0) lineEnd = text.length;
    if (text[lineEnd - 1] === "\r") lineEnd--;
    if (/^\s*\/\//.test(text.slice(end, lineEnd))) {
      // `"last": 1 // note` — the comma goes before the note, our entry on the next line
      return applyEdits(text, [
        { offset: end, length: 0, content: "," },
        { offset: lineEnd, length: 0, content: style.eol + prop },
      ]);
    }
    return applyEdits(text, [{ offset: end, length: 0, content: `,${style.eol}${prop}` }]);
  }
  // empty object: fill the inside, replacing it only when it is blank
  const open = obj.offset + 1;
  const close = obj.offset + obj.length - 1;
  const inner = text.slice(open, close);
  const outer = indentAt(text, obj.offset);
  const indent = outer + style.unit;
  const prop = `${style.eol}${indent}${k}: ${render(value, indent, style, false)}`;
  if (inner.trim() === "") {
    return applyEdits(text, [{
      offset: open,
      length: close - open,
      content: prop + style.eol + outer,
    }]);
  }
  return applyEdits(text, [{ offset: open, length: 0, content: prop }]);
}

function replaceValue(text: string, node: Node, value: unknown, style: Style): string {
  // keep the old value's shape: a one-line array stays one line, a multi-line one is
  // re-indented at its property's indentation
  const container = node.type === "object" || node.type === "array";
  const oneLine = sameLine(text, node.offset, node.offset + node.length) &&
    (container || typeof value !== "object" || value === null);
  const indent = indentAt(text, node.parent?.offset ?? node.offset);
  return applyEdits(text, [{
    offset: node.offset,
    length: node.length,
    content: render(value, indent, style, oneLine),
  }]);
}

function parseJsonc(text: string): Node {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, {
    allowTrailingComma: true,
    disallowComments: false,
    allowEmptyContent: false,
  });
  if (errors.length > 0 || !tree) {
    const e = errors[0];
    const where = e ? ` at ${lineCol(text, e.offset)}: ${printParseErrorCode(e.error)}` : "";
    throw new RsmError("CONFIG_PARSE", `it is not valid JSON${where}`);
  }
  return tree;
}

/** The error for a config whose content has an unexpected shape. */
export function shape(what: string): RsmError {
  return new RsmError("CONFIG_SHAPE", `unexpected content: ${what}`);
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${before.at(-1)!.length + 1}`;
}
