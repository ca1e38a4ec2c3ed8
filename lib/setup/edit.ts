/**
 * Text edits of MCP client config files that touch only rsm's own entry: JSON/JSONC through
 * jsonc-parser's `modify` (edits are spliced into the original text, so comments, key order,
 * indentation and numbers too large for a double stay byte-for-byte), TOML by a targeted edit
 * of our `[mcp_servers.<name>]` table checked by re-parsing with smol-toml, and Continue's
 * block file, which rsm owns whole.
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
import { parse as parseToml, stringify as stringifyToml, TomlDate } from "smol-toml";
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
  extraOnCreate?: Record<string, unknown>;
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
  for (let i = 0; i < rootKey.length; i++) {
    const node = findNodeAtLocation(obj, [rootKey[i]]);
    if (!node) {
      let value: unknown = { [name]: full };
      for (const key of rootKey.slice(i + 1).reverse()) value = { [key]: value };
      return { status: "added", text: insertProperty(text, obj, rootKey[i], value, style) };
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
  if (props.length > 0) {
    const last = props[props.length - 1];
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

function shape(what: string): RsmError {
  return new RsmError("CONFIG_SHAPE", `unexpected content: ${what}`);
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** A value rsm owns in a TOML table: a string, a string array, or a table of strings (env). */
export type TomlField = string | string[] | Record<string, string>;

/** Options for {@link editToml}. */
export interface TomlEditOptions {
  /** Server name: the table is `[mcp_servers.<name>]`. */
  name: string;
  /**
   * Keys rsm owns in that table (command, args, env); other keys and sub-tables stay. A table
   * value (env) is owned key by key: the user's other env vars stay.
   */
  fields: Record<string, TomlField>;
}

type Table = Record<string, unknown>;

/** Whether `entry` already holds every owned field (table fields compared key by key). */
function holds(entry: Table, fields: Record<string, TomlField>): boolean {
  return Object.entries(fields).every(([k, v]) => {
    if (Array.isArray(v) || typeof v !== "object") return isDeepStrictEqual(entry[k], v);
    const sub = entry[k];
    return isTable(sub) && Object.entries(v).every(([kk, vv]) => sub[kk] === vv);
  });
}

/**
 * Adds or updates `[mcp_servers.<name>]` in a TOML document. Only the lines of our keys are
 * replaced (or a new table appended at the end); the result is re-parsed and must equal the
 * old document plus our change, otherwise the document is re-serialised with smol-toml (data
 * kept, comments lost) and the result says so in `note`.
 *
 * @example
 * ```ts
 * editToml('model = "o3"\n', { name: "rsm", fields: { command: "/x", args: ["stdio"] } });
 * ```
 */
export function editToml(text: string, options: TomlEditOptions): EditResult {
  const { name, fields } = options;
  const doc = parseTomlText(text);
  const servers = doc.mcp_servers;
  if (servers !== undefined && !isTable(servers)) throw shape("mcp_servers is not a table");
  const existing = (servers as Table | undefined)?.[name];
  if (existing !== undefined && !isTable(existing)) {
    throw shape(`mcp_servers.${name} is not a table`);
  }
  const entry = existing as Table | undefined;
  if (entry && holds(entry, fields)) return { status: "unchanged", text };
  const status = entry ? "updated" : "added";
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const candidate = entry
    ? replaceKeys(text, name, fields, entry, eol)
    : appendTable(text, name, fields, eol);
  if (candidate !== undefined && sameExceptOurs(text, candidate, name, fields)) {
    return { status, text: candidate };
  }
  // fallback: the table is written in a form we do not edit by text (inline table, dotted
  // keys, an env sub-table to merge into); keep the data, lose comments and layout, say so
  const next = doc as Table;
  const table = (isTable(next.mcp_servers) ? next.mcp_servers : (next.mcp_servers = {})) as Table;
  const merged: Table = { ...(entry ?? {}) };
  for (const [k, v] of Object.entries(fields)) {
    merged[k] = Array.isArray(v) || typeof v !== "object"
      ? v
      : { ...(isTable(merged[k]) ? merged[k] as Table : {}), ...v };
  }
  table[name] = merged;
  return {
    status,
    text: stringifyToml(next),
    note: "its comments and layout could not be kept (the table is not a plain [mcp_servers.*] " +
      "table); a backup of the original is kept",
  };
}

function parseTomlText(text: string): Table {
  try {
    return parseToml(text, { integersAsBigInt: "asNeeded" }) as Table;
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    const line = (err as { line?: number }).line;
    throw new RsmError(
      "CONFIG_PARSE",
      `it is not valid TOML${line ? ` (line ${line})` : ""}: ${msg}`,
    );
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof TomlDate);
}

function tomlKey(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

/** `key = value` on one line; a table value as an inline table (`env = { PATH = "…" }`). */
function renderKey(key: string, value: TomlField): string {
  if (Array.isArray(value) || typeof value !== "object") {
    return stringifyToml({ [key]: value }).trim();
  }
  const items = Object.entries(value).map(([k, v]) => stringifyToml({ [k]: v }).trim());
  return `${tomlKey(key)} = { ${items.join(", ")} }`;
}

function appendTable(text: string, name: string, fields: TomlEditOptions["fields"], eol: string) {
  const lines = [`[mcp_servers.${tomlKey(name)}]`];
  for (const [k, v] of Object.entries(fields)) lines.push(renderKey(k, v));
  let head = text;
  if (head !== "" && !head.endsWith("\n")) head += eol;
  if (head.trim() !== "") head += eol;
  return head + lines.join(eol) + eol;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function replaceKeys(
  text: string,
  name: string,
  fields: TomlEditOptions["fields"],
  entry: Table,
  eol: string,
): string | undefined {
  const lines = text.split(/\r?\n/);
  const n = escapeRe(name);
  const header = new RegExp(
    `^\\s*\\[\\s*(mcp_servers|"mcp_servers")\\s*\\.\\s*(${n}|"${n}"|'${n}')\\s*\\]\\s*(#.*)?$`,
  );
  const start = lines.findIndex((l) => header.test(l));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && !/^\s*\[/.test(lines[end])) end++;
  for (const [key, value] of Object.entries(fields)) {
    if (holds(entry, { [key]: value })) continue; // already right: its bytes stay
    if (!Array.isArray(value) && typeof value === "object" && entry[key] !== undefined) {
      return undefined; // merge into the user's env table: left to the fallback
    }
    const keyRe = new RegExp(`^\\s*(${escapeRe(key)}|"${escapeRe(key)}")\\s*=`);
    const at = lines.slice(0, end).findIndex((l, i) => i > start && keyRe.test(l));
    const rendered = renderKey(key, value);
    if (at < 0) {
      // a new key goes after the table's last non-blank line
      let k = end;
      while (k > start + 1 && lines[k - 1].trim() === "") k--;
      lines.splice(k, 0, rendered);
      end++;
      continue;
    }
    // the value may span lines (a multi-line array): take the shortest span that parses
    let stop = at;
    while (stop < end && !parsesAlone(lines.slice(at, stop + 1).join("\n"))) stop++;
    if (stop >= end) return undefined;
    lines.splice(at, stop - at + 1, rendered);
    end -= stop - at;
  }
  return lines.join(eol);
}

function parsesAlone(snippet: string): boolean {
  try {
    parseToml(snippet);
    return true;
  } catch {
    return false;
  }
}

/** Removes our fields (table fields key by key, then the table if it is left empty). */
function stripOurs(entry: Table, fields: TomlEditOptions["fields"]): void {
  for (const [k, v] of Object.entries(fields)) {
    if (Array.isArray(v) || typeof v !== "object") {
      delete entry[k];
      continue;
    }
    const sub = entry[k];
    if (!isTable(sub)) continue;
    for (const kk of Object.keys(v)) delete sub[kk];
    if (Object.keys(sub).length === 0) delete entry[k];
  }
}

/** True when `after` parses to `before` with only our fields of our entry set. */
function sameExceptOurs(
  before: string,
  after: string,
  name: string,
  fields: TomlEditOptions["fields"],
): boolean {
  let a: Table, b: Table;
  try {
    a = parseTomlText(before);
    b = parseTomlText(after);
  } catch {
    return false;
  }
  const bEntry = (b.mcp_servers as Table | undefined)?.[name] as Table | undefined;
  if (!bEntry || !holds(bEntry, fields)) return false;
  stripOurs(bEntry, fields);
  const aServers = a.mcp_servers as Table | undefined;
  const aEntry = aServers?.[name] as Table | undefined;
  if (aEntry) {
    stripOurs(aEntry, fields);
  } else {
    if (Object.keys(bEntry).length > 0) return false;
    delete (b.mcp_servers as Table)[name];
    if (!aServers && Object.keys(b.mcp_servers as Table).length === 0) delete b.mcp_servers;
  }
  return isDeepStrictEqual(a, b);
}

/**
 * The whole Continue block file for our server (`~/.continue/mcpServers/<name>.yaml`).
 * Strings are written as JSON strings, which YAML reads as double-quoted scalars.
 */
export function continueBlock(
  name: string,
  fields: { command: string; args: string[]; env?: Record<string, string> },
): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    "# Written by `rsm setup` (remote-shell-mcp); re-run it to update this file.",
    `name: ${q(name)}`,
    "version: 0.0.1",
    "schema: v1",
    "mcpServers:",
    `  - name: ${q(name)}`,
    `    command: ${q(fields.command)}`,
    "    args:",
    ...fields.args.map((a) => `      - ${q(a)}`),
    ...(fields.env
      ? ["    env:", ...Object.entries(fields.env).map(([k, v]) => `      ${q(k)}: ${q(v)}`)]
      : []),
    "",
  ].join("\n");
}

/** Compares Continue's block file with the one we would write. */
export function editContinue(
  text: string,
  name: string,
  fields: { command: string; args: string[]; env?: Record<string, string> },
): EditResult {
  const want = continueBlock(name, fields);
  if (text === want) return { status: "unchanged", text };
  return { status: text === "" ? "added" : "updated", text: want };
}
