/**
 * The policy file `policy.toml` (see the README, "A person in control"): its shape, and the
 * parser that turns its text into a {@link Policy} or says exactly what is wrong with it.
 */
import { parse } from "smol-toml";
import { parseDuration } from "../duration.ts";

/** A compiled deny/confirm/allow pattern. */
export interface Pattern {
  /** As written in the file (`rm -rf` or `re:^sudo\b`). */
  source: string;
  /** Matches anywhere in a part (deny, confirm). */
  find: RegExp;
  /** Matches at the start of a part (allow: the part must begin with it). */
  start: RegExp;
}

/** One `[[rule]]`. */
export interface Rule {
  /** 1-based position in the file. */
  index: number;
  /** `name = "…"` or `rule #N`. */
  label: string;
  targets?: string[] | undefined;
  hosts?: string[] | undefined;
  deny: Pattern[];
  confirm: Pattern[];
  allow: Pattern[];
  readOnly: boolean;
  writablePaths?: string[] | undefined;
  /** Forwards may listen on non-loopback addresses (default false: refused). */
  publicForwards: boolean;
}

/** The effective policy. */
export interface Policy {
  /** The file it came from (named in refusals). */
  file: string;
  mode: "normal" | "read-only";
  redact: boolean;
  /** How long an approval link stays valid (default 10 min). */
  approvalTtlMs: number;
  rules: Rule[];
}

/** Ten minutes: how long an approval page link stays valid unless the policy says otherwise. */
export const DEFAULT_APPROVAL_TTL_MS = 10 * 60_000;

/** The policy when there is no file: normal mode, redaction on, no rules. */
export function defaultPolicy(file: string): Policy {
  return { file, mode: "normal", redact: true, approvalTtlMs: DEFAULT_APPROVAL_TTL_MS, rules: [] };
}

const TOP_KEYS = new Set(["mode", "redact", "approval_ttl", "rule"]);
const RULE_KEYS = new Set([
  "name",
  "targets",
  "hosts",
  "deny",
  "confirm",
  "allow",
  "read_only",
  "writable_paths",
  "public_forwards",
]);

/**
 * Parses the text of a policy file. Throws an `Error` whose message says what is wrong
 * (TOML syntax with line, unknown keys, bad types, invalid regexes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const p = parsePolicy('[[rule]]\ntargets = ["prod-*"]\ndeny = ["rm -rf"]', "policy.toml");
 * assert.equal(p.rules[0]?.deny[0]?.source, "rm -rf");
 * ```
 */
export function parsePolicy(text: string, file: string): Policy {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`not valid TOML: ${(err as Error).message.split("\n")[0]}`);
  }
  for (const key of Object.keys(doc)) {
    if (!TOP_KEYS.has(key)) {
      throw new Error(`unknown key "${key}" (known: mode, redact, approval_ttl, [[rule]])`);
    }
  }
  const policy = defaultPolicy(file);
  if (doc.mode !== undefined) {
    if (doc.mode !== "normal" && doc.mode !== "read-only") {
      throw new Error(`mode must be "normal" or "read-only", not ${JSON.stringify(doc.mode)}`);
    }
    policy.mode = doc.mode;
  }
  if (doc.redact !== undefined) {
    if (typeof doc.redact !== "boolean") throw new Error("redact must be true or false");
    policy.redact = doc.redact;
  }
  if (doc.approval_ttl !== undefined) {
    if (typeof doc.approval_ttl !== "string" && typeof doc.approval_ttl !== "number") {
      throw new Error('approval_ttl must be a duration like "10m" or "30s"');
    }
    try {
      policy.approvalTtlMs = parseDuration(doc.approval_ttl);
    } catch (err) {
      throw new Error(`approval_ttl: ${(err as Error).message}`);
    }
  }
  const rules = doc.rule ?? [];
  if (!Array.isArray(rules)) throw new Error("rule must be an array of tables: write [[rule]]");
  policy.rules = rules.map((raw, i) => parseRule(raw, i + 1));
  return policy;
}

function parseRule(raw: unknown, index: number): Rule {
  const where = `[[rule]] #${index}`;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${where} must be a table`);
  }
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!RULE_KEYS.has(key)) {
      throw new Error(`${where}: unknown key "${key}" (known: ${[...RULE_KEYS].join(", ")})`);
    }
  }
  const strings = (key: string): string[] | undefined => {
    const v = r[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
      throw new Error(`${where}: ${key} must be a list of strings, e.g. ${key} = ["…"]`);
    }
    return v as string[];
  };
  const bool = (key: string): boolean => {
    const v = r[key];
    if (v === undefined) return false;
    if (typeof v !== "boolean") throw new Error(`${where}: ${key} must be true or false`);
    return v;
  };
  const patterns = (key: string) =>
    (strings(key) ?? []).map((s) => {
      try {
        return compilePattern(s);
      } catch (err) {
        throw new Error(`${where}: ${key} pattern ${JSON.stringify(s)}: ${(err as Error).message}`);
      }
    });
  if (r.name !== undefined && typeof r.name !== "string") {
    throw new Error(`${where}: name must be a string`);
  }
  return {
    index,
    label: r.name ? `"${r.name}" (rule #${index})` : `rule #${index}`,
    targets: strings("targets"),
    hosts: strings("hosts"),
    deny: patterns("deny"),
    confirm: patterns("confirm"),
    allow: patterns("allow"),
    readOnly: bool("read_only"),
    writablePaths: strings("writable_paths"),
    publicForwards: bool("public_forwards"),
  };
}

/**
 * Compiles one pattern. `re:…` is a JavaScript regular expression used as written. Anything
 * else is plain words: blanks match any run of blanks, and the words must stand whole (no
 * letter, digit or `_` right before or after), so `rm -rf` matches `rm  -rf /tmp` but not
 * `farm -rfx`, and `rm -rf /` does not match `rm -rf /tmp`.
 */
export function compilePattern(source: string): Pattern {
  if (source.startsWith("re:")) {
    const body = source.slice(3);
    let find: RegExp;
    try {
      find = new RegExp(body);
    } catch (err) {
      throw new Error(`not a valid regular expression (${(err as Error).message})`);
    }
    const start = new RegExp(`^(?:${body})`);
    return { source, find, start };
  }
  const words = source.trim();
  if (!words) throw new Error("is empty");
  const body = words.split(/\s+/).map(escapeRegExp).join("\\s+");
  return {
    source,
    find: new RegExp(`(?<![A-Za-z0-9_])${body}(?![A-Za-z0-9_])`),
    start: new RegExp(`^${body}(?![A-Za-z0-9_])`),
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\\/-]/g, "\\$&");
}

/**
 * Whether `text` matches the glob `pattern` (`*` any run, `?` one character, the rest
 * literal; case-sensitive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(globMatch("prod-*", "prod-db1"), true);
 * ```
 */
export function globMatch(pattern: string, text: string): boolean {
  let re = globs.get(pattern);
  if (!re) {
    const body = pattern.split("").map((c) => c === "*" ? ".*" : c === "?" ? "." : escapeRegExp(c));
    re = new RegExp(`^${body.join("")}$`);
    if (globs.size > 1000) globs.clear();
    globs.set(pattern, re);
  }
  return re.test(text);
}

/** Compiled globs (rules are matched on every call). */
const globs = new Map<string, RegExp>();
