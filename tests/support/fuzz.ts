/**
 * Hostile tool arguments generated from each tool's JSON Schema (as served by `tools/list`).
 *
 * Every generated call starts from a minimal *valid* argument object (which names sessions and
 * hosts that do not exist, so even a call that slipped through validation could not touch
 * anything) and then breaks it on purpose: a missing required field, a wrong-typed value, an
 * unknown field (`__proto__`, `constructor`, control characters, lone surrogates…), a value
 * out of range (1 MiB strings, negative and huge numbers, 1.5 for integers, `1e999`, which
 * JSON.parse turns into Infinity), deep nesting, arguments that are not an object. Some calls
 * also carry hostile but schema-valid strings in their other fields.
 *
 * Raw JSON that `JSON.stringify` cannot produce (`1e999`, `-0`) is written as a
 * {@link raw} placeholder and spliced in by {@link serialize}.
 */

/** The subset of JSON Schema that zod's `toJSONSchema` emits for our tools. */
export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
}

/** A tool as `tools/list` describes it. */
export interface ToolInfo {
  name: string;
  inputSchema: Schema;
}

/** One generated call. */
export interface FuzzCall {
  tool: string;
  /** `params.arguments` (may be a non-object on purpose). */
  args: unknown;
  /** What was broken, e.g. `wrong-type spec.auth.password`. */
  kind: string;
  /** The field the error should name (dotted path), when there is one. */
  field?: string;
}

const MIB = 1 << 20;
const RAW = "\u0000RAW:";

/** A placeholder for raw JSON text (see {@link serialize}). */
export function raw(json: string): string {
  return `${RAW}${json}\u0000`;
}

/** JSON.stringify, then splices in {@link raw} placeholders. */
export function serialize(value: unknown): string {
  return JSON.stringify(value).replace(
    /"\\u0000RAW:(.*?)\\u0000"/g,
    (_, text: string) => JSON.parse(`"${text}"`),
  );
}

/** A small deterministic PRNG (mulberry32) so a failing run can be replayed by seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds a nested array `depth` levels deep (as raw JSON: no recursion anywhere). */
export function deepArray(depth: number): string {
  return raw("[".repeat(depth) + "]".repeat(depth));
}

/** Builds a nested object `depth` levels deep (raw JSON). */
export function deepObject(depth: number): string {
  return raw('{"a":'.repeat(depth) + "1" + "}".repeat(depth));
}

/** Strings no schema check should choke on; `secret` is mixed in to test redaction. */
export function hostileStrings(secret: string): string[] {
  return [
    "",
    "\u0000\u0001\u0007\b\t\n\r\u001b[31m\u007f",
    "\ud800",
    "\udfff tail",
    "a\ud83d",
    "\ufeff\u202e\u200b",
    "NaN",
    "Infinity",
    "-0",
    "../../../../etc/shadow",
    "$(touch /tmp/rsm-fuzz-pwned)",
    "`id`;id;|id",
    "%s%n%x",
    `x${secret}y`,
    secret,
    "\u{1f600}".repeat(1000),
  ];
}

/** Allowed JSON types of a schema (anyOf merged; integer counts as number). */
export function typesOf(s: Schema): Set<string> {
  if (s.anyOf) return new Set(s.anyOf.flatMap((x) => [...typesOf(x)]));
  if (s.enum) return new Set(s.enum.map(jsonType));
  if (s.const !== undefined) return new Set([jsonType(s.const)]);
  if (!s.type) return new Set(["string", "number", "boolean", "null", "array", "object"]);
  return new Set([s.type === "integer" ? "number" : s.type]);
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Names of fields that hold ids of sessions/hosts/shells/forwards: all point at nothing. */
const ID_VALUE = "fuzz-nothing";

/** A minimal valid value for `s` (required fields only); `name` is the field's name. */
export function validFor(s: Schema, name = ""): unknown {
  if (s.anyOf) {
    const first = s.anyOf[0];
    if (first === undefined) throw new Error(`validFor: empty anyOf in ${name || "the schema"}`);
    return validFor(first, name);
  }
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  switch (s.type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const k of s.required ?? []) out[k] = validFor(s.properties?.[k] ?? {}, k);
      return out;
    }
    case "array":
      return Array.from({ length: s.minItems ?? 0 }, () => validFor(s.items ?? {}, name));
    case "integer":
    case "number": {
      if (s.minimum !== undefined) return s.minimum;
      if (s.exclusiveMinimum !== undefined) return s.exclusiveMinimum + 1;
      return 1;
    }
    case "boolean":
      return false;
    case "string": {
      if (s.pattern) return patternSample(s.pattern);
      if (name === "addresses") return "127.0.0.1:1"; // refused at once
      if (name === "host") return "tcp://127.0.0.1:1";
      if (name.endsWith("path") || name === "from" || name === "to") return "/nonexistent/fuzz";
      return ID_VALUE;
    }
  }
  return null;
}

function patternSample(pattern: string): string {
  if (pattern.includes("SIG")) return "SIGTERM";
  if (pattern.includes("\\d+\\.\\d+")) return "1.41";
  return ID_VALUE;
}

/** Every (dotted path, schema, parent object schema) inside an object schema, depth-first. */
export function fieldsOf(
  s: Schema,
  prefix = "",
): { path: string; schema: Schema; parent: Schema }[] {
  const out: { path: string; schema: Schema; parent: Schema }[] = [];
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    out.push({ path, schema: sub, parent: s });
    const obj = sub.anyOf?.find((x) => x.type === "object") ?? sub;
    if (obj.type === "object" && obj.properties) out.push(...fieldsOf(obj, path));
  }
  return out;
}

function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = root;
  for (const k of keys.slice(0, -1)) {
    if (!o[k] || typeof o[k] !== "object" || Array.isArray(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys.at(-1)!] = value; // split() returns at least one element
}

/** Objects (strict ones) inside the arguments where an unknown key can be planted. */
function strictObjects(s: Schema): string[] {
  const out = [""];
  for (const f of fieldsOf(s)) {
    const obj = f.schema.anyOf?.find((x) => x.type === "object") ?? f.schema;
    if (obj.type === "object" && obj.properties && obj.additionalProperties === false) {
      out.push(f.path);
    }
  }
  return out;
}

/** Values of the JSON types a field does NOT accept (one hostile specimen per type). */
function wrongTyped(s: Schema, pick: <T>(xs: T[]) => T, secret: string): unknown[] {
  const ok = typesOf(s);
  const out: unknown[] = [];
  if (!ok.has("number")) out.push(pick([-1, 1e308, -1e308, 0.5, raw("1e999"), raw("-0"), 2 ** 53]));
  if (!ok.has("string")) out.push(pick(hostileStrings(secret).filter((x) => x !== "")));
  if (!ok.has("boolean")) out.push(pick([true, false]));
  if (!ok.has("null")) out.push(null);
  if (!ok.has("array")) out.push(pick([[], [1, "x", null], deepArray(3000)]));
  if (!ok.has("object")) {
    out.push(pick([
      {},
      raw('{"__proto__":{"polluted":true}}'),
      { constructor: { prototype: { polluted: true } } },
      deepObject(3000),
    ]));
  }
  return out;
}

/** Values that have the right type but break a bound of `s`. */
function outOfRange(s: Schema): { value: unknown; what: string }[] {
  const out: { value: unknown; what: string }[] = [];
  if (s.type === "string") {
    if (s.maxLength !== undefined && s.maxLength < MIB) {
      out.push({ value: "x".repeat(MIB - 1) + "\u0007", what: "1 MiB string" });
    }
    if (s.minLength) out.push({ value: "", what: "empty string" });
    if (s.enum) out.push({ value: "definitely-not-an-option\u0000", what: "not in enum" });
  }
  if (s.type === "integer" || s.type === "number") {
    if (s.minimum !== undefined || s.exclusiveMinimum !== undefined) {
      out.push({ value: -1e308, what: "huge negative" });
    }
    if (s.maximum !== undefined) out.push({ value: raw("1e999"), what: "1e999 (Infinity)" });
    if (s.type === "integer") out.push({ value: 1.5, what: "non-integer" });
  }
  if (s.type === "array" && s.maxItems !== undefined && s.maxItems < 20_000) {
    out.push({
      value: Array.from({ length: s.maxItems + 1 }, () => validFor(s.items ?? {})),
      what: "too many items",
    });
  }
  if (s.type === "array" && s.minItems) out.push({ value: [], what: "too few items" });
  return out;
}

const UNKNOWN_KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "__defineGetter__",
  "bogus\u0000key",
  "\ud800",
  "",
  "x".repeat(10_000),
];

/** Options for {@link hostileCalls}. */
export interface HostileOptions {
  /** Calls per tool (default 55). */
  perTool?: number;
  seed?: number;
  /** A registered secret to mix into values and keys (redaction check). */
  secret: string;
}

/**
 * Generates `perTool` hostile calls for every tool. Each call breaks the schema at least once
 * (so the daemon must answer with an error), and the first of each tool's calls cover every
 * kind of breakage the tool allows.
 */
export function hostileCalls(tools: ToolInfo[], options: HostileOptions): FuzzCall[] {
  const random = rng(options.seed ?? 1);
  const pick = <T>(xs: T[]): T => {
    const x = xs[Math.floor(random() * xs.length)];
    if (x === undefined) throw new Error("hostileCalls: pick from an empty list");
    return x;
  };
  const secret = options.secret;
  const out: FuzzCall[] = [];
  for (const tool of tools) {
    const schema = tool.inputSchema;
    const base = () => structuredClone(validFor(schema)) as Record<string, unknown>;
    const fields = fieldsOf(schema);
    const makers: (() => FuzzCall)[] = [];
    for (const req of schema.required ?? []) {
      makers.push(() => {
        const a = base();
        delete a[req];
        return { tool: tool.name, args: a, kind: `missing ${req}`, field: req };
      });
    }
    for (const f of fields) {
      for (const v of wrongTyped(f.schema, pick, secret)) {
        makers.push(() => {
          const a = base();
          setPath(a, f.path, v);
          return { tool: tool.name, args: a, kind: `wrong-type ${f.path}`, field: f.path };
        });
      }
      if (f.schema.type === "string" && !(f.schema.maxLength! < MIB)) {
        // No listed limit (tools/list may leave limits out): a 1 MiB string in this field,
        // plus an unknown field so the call is invalid whatever the field accepts.
        makers.push(() => {
          const a = base();
          setPath(a, f.path, "x".repeat(MIB - 1) + "\u0007");
          a.rsm_unknown_field = 1;
          return { tool: tool.name, args: a, kind: `1 MiB string ${f.path} + unknown field` };
        });
      }
      for (const { value, what } of outOfRange(f.schema)) {
        makers.push(() => {
          const a = base();
          setPath(a, f.path, value);
          return { tool: tool.name, args: a, kind: `${what} ${f.path}`, field: f.path };
        });
      }
    }
    for (const where of strictObjects(schema)) {
      for (const key of [...UNKNOWN_KEYS, secret]) {
        makers.push(() => {
          const a = base();
          const json = serialize(a);
          // Planted in the JSON text, so `__proto__` arrives as an own key (as from the wire).
          const planted = `${JSON.stringify(key)}:{"polluted":${JSON.stringify(secret)}}`;
          if (where === "") {
            const text = json === "{}" ? `{${planted}}` : json.replace(/^\{/, `{${planted},`);
            return { tool: tool.name, args: raw(text), kind: `unknown key ${key.slice(0, 20)}` };
          }
          setPath(a, where, { ...(getPath(a, where) as object), __marker__: 1 });
          return {
            tool: tool.name,
            args: raw(serialize(a).replace('"__marker__":1', planted)),
            kind: `unknown key in ${where}`,
          };
        });
      }
    }
    makers.push(() => ({
      tool: tool.name,
      args: pick([[], "args", 42, true]),
      kind: "not an object",
    }));
    const n = options.perTool ?? 55;
    for (let i = 0; i < n; i++) {
      const call = (i < makers.length ? makers[i]! : pick(makers))();
      // Decorate some calls with hostile strings in fields that accept strings.
      if (
        random() < 0.3 && call.args && typeof call.args === "object" && !Array.isArray(call.args)
      ) {
        const strField = fields.filter((f) => f.schema.type === "string" && !f.path.includes("."));
        const f = strField.length ? pick(strField) : undefined;
        if (f && f.path !== call.field) {
          const s = pick(hostileStrings(secret));
          if (!(f.schema.minLength && !s) && s.length <= (f.schema.maxLength ?? Infinity)) {
            (call.args as Record<string, unknown>)[f.path] = s;
          }
        }
      }
      out.push(call);
    }
  }
  return out;
}

function getPath(root: Record<string, unknown>, path: string): unknown {
  let o: unknown = root;
  for (const k of path.split(".")) o = (o as Record<string, unknown>)?.[k];
  return o;
}
