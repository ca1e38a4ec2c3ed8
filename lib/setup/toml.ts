/**
 * Codex's `config.toml`: a targeted text edit of our `[mcp_servers.<name>]` table (other
 * tables, comments and layout stay byte-for-byte), checked by re-parsing with smol-toml; when
 * the table is in a form we do not edit by text, smol-toml re-serialises with a note.
 */
import { parse as parseToml, stringify as stringifyToml, TomlDate } from "smol-toml";
import { isDeepStrictEqual } from "node:util";
import { RsmError } from "../errors.ts";
import { type EditResult, shape } from "./json.ts";

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
  while (end < lines.length && !/^\s*\[/.test(lines[end]!)) end++;
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
      while (k > start + 1 && lines[k - 1]!.trim() === "") k--;
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
