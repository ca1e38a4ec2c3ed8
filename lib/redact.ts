/**
 * Redaction of credential shapes in everything the model sees (see the README, "A person in
 * control"): private key blocks, cloud and service access keys, bearer and basic auth headers,
 * passwords in URLs and connection strings, `password=`/`secret=`/`token=` values, JWTs. Each
 * becomes `[redacted:<kind>]`. Only shapes that real credentials have are matched, so git
 * hashes, UUIDs, checksums, base64 data and version strings stay as they are.
 */

/** One credential shape: the regex and how a match is replaced. */
interface Shape {
  kind: string;
  re: RegExp;
  /** Builds the replacement from the match groups (default: the whole match is replaced). */
  replace?: (m: string, ...groups: string[]) => string;
}

const mark = (kind: string) => `[redacted:${kind}]`;

const KEY_NAMES = "(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|" +
  "access[_-]?key|secret[_-]?key|private[_-]?key|account[_-]?key|auth[_-]?token|" +
  "client[_-]?secret|credentials?)";

/** Values that are references or placeholders, not secrets: `$VAR`, `${x}`, `<…>`, `***`, `%s`. */
function placeholder(v: string): boolean {
  const s = v.replace(/^["']|["']$/g, "");
  return s === "" || /^(\$|%|<|\{\{|\*+$|\[redacted)/.test(s) ||
    /^(null|none|true|false|undefined|required|optional)$/i.test(s);
}

const SHAPES: Shape[] = [
  // PEM and OpenSSH private keys, also with escaped newlines (JSON) or cut by an output bound
  {
    kind: "private_key",
    re:
      /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END \1PRIVATE KEY\2-----|(?=\n\[… )|$)/g,
  },
  { kind: "private_key", re: /PuTTY-User-Key-File-\d:[\s\S]*?Private-MAC: [0-9a-f]+/g },
  // JWTs (header.payload.signature, base64url JSON)
  {
    kind: "jwt",
    re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
  },
  // cloud and service keys with fixed prefixes
  { kind: "aws_access_key", re: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b/g },
  { kind: "github_token", re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b/g },
  { kind: "gitlab_token", re: /\bglpat-[A-Za-z0-9_-]{20,}\b/g },
  { kind: "slack_token", re: /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g },
  { kind: "google_api_key", re: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { kind: "stripe_key", re: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b/g },
  { kind: "api_key", re: /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{32,}\b/g },
  { kind: "npm_token", re: /\bnpm_[A-Za-z0-9]{36}\b/g },
  // Authorization headers
  {
    kind: "bearer",
    re: /\b(Bearer\s+)[A-Za-z0-9\-._~+/]{12,}=*/g,
    replace: (_m, pre) => `${pre}${mark("bearer")}`,
  },
  {
    kind: "basic_auth",
    re: /\b((?:Proxy-)?Authorization\s*:\s*Basic\s+)[A-Za-z0-9+/]{6,}={0,2}/gi,
    replace: (_m, pre) => `${pre}${mark("basic_auth")}`,
  },
  // user:password@ in URLs; database and broker URLs are connection strings
  {
    kind: "url_password",
    re: /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@'"]*):([^\s@/'"]+)@/gi,
    replace: (m, scheme, user, pass) => {
      if (placeholder(pass)) return m;
      const db =
        /^(postgres(ql)?|mysql|mariadb|mongodb(\+srv)?|redis|rediss|amqps?|mssql|sqlserver|jdbc:[a-z]+|clickhouse|cockroachdb|couchdb|neo4j|nats|kafka|ldaps?)/i
          .test(scheme);
      return `${scheme}${user}:${mark(db ? "connection_string" : "password")}@`;
    },
  },
  // --password VALUE on command lines
  {
    kind: "password",
    re: /(--(?:password|passwd|pass|token|secret|api-key)[ =])("[^"]*"|'[^']*'|[^\s"']+)/gi,
    replace: (m, pre, v) => placeholder(v) ? m : `${pre}${mark(kindOfKey(pre))}`,
  },
  // key = value, key: value, "key": "value", KEY=value — but not a path or image component
  // such as `registry/rsm/secret:3` (the name after a `/` is a file or repository, its `:` a tag)
  {
    kind: "password",
    re: new RegExp(
      `(?<![/\\w.-])(["']?\\b[A-Za-z0-9_.-]*?${KEY_NAMES}["']?)([ \\t]*[:=][ \\t]*)("[^"\\n]*"|'[^'\\n]*'|[^\\s"',;&<>]+)`,
      "gi",
    ),
    replace: (m, key, sep, v) => {
      if (placeholder(v)) return m;
      if (/^(pwd|oldpwd)$/i.test(key.replace(/["']/g, ""))) return m; // the shell's cwd
      const q = /^["']/.test(v) ? v[0] : "";
      return `${key}${sep}${q}${mark(kindOfKey(key))}${q}`;
    },
  },
];

function kindOfKey(key: string): string {
  const k = key.toLowerCase();
  if (/token/.test(k)) return "token";
  if (/secret/.test(k)) return "secret";
  if (/key|credential/.test(k)) return "key";
  return "password";
}

/**
 * Replaces every credential shape in `text` with `[redacted:<kind>]`.
 *
 * @example
 * ```ts
 * redactShapes("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE");
 * // "export AWS_ACCESS_KEY_ID=[redacted:aws_access_key]"
 * ```
 */
export function redactShapes(text: string, options: { keepLines?: boolean } = {}): string {
  let out = text;
  const lines = (t: string) => t.split("\n").length - 1;
  for (const s of SHAPES) {
    s.re.lastIndex = 0;
    if (!s.re.test(out)) continue;
    s.re.lastIndex = 0;
    out = out.replace(s.re, (m: string, ...g: unknown[]) => {
      const r = s.replace ? s.replace(m, ...(g as string[])) : mark(s.kind);
      // a screen keeps its rows: a redacted key block leaves its lines empty
      return options.keepLines ? r + "\n".repeat(Math.max(0, lines(m) - lines(r))) : r;
    });
  }
  // after the whole blocks: what remains is the end of a block whose start was cut off
  return keyTails(out, options.keepLines);
}

/**
 * {@link redactShapes} over every string in a tool's value (objects and arrays are copied,
 * never changed in place), so a secret is found before JSON or TOON escapes its quotes and
 * newlines.
 */
export function redactDeep<T>(value: T): T {
  if (typeof value === "string") return redactShapes(value) as T;
  if (Array.isArray(value)) {
    // lines of one text (a screen's rows): redacted together so a key block spanning rows is
    // found, with the row count kept
    if (value.length > 1 && value.every((v) => typeof v === "string" && !v.includes("\n"))) {
      const joined = redactShapes(value.join("\n"), { keepLines: true }).split("\n");
      if (joined.length === value.length) return joined as T;
    }
    return value.map((v) => redactDeep(v)) as T;
  }
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

const KEY_END = /-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----/g;
const BASE64_LINE = /^[A-Za-z0-9+/=]{16,}\r?$/;

/**
 * The end of a private key block whose start was cut off (an output bound, a page of
 * output_read): the base64 lines right before `-----END … PRIVATE KEY-----`. Scanned
 * backwards from each END line, so the cost stays linear in the text.
 */
function keyTails(text: string, keepLines = false): string {
  if (!text.includes("PRIVATE KEY-----")) return text;
  let out = "";
  let last = 0;
  for (const m of text.matchAll(KEY_END)) {
    let start = m.index;
    // walk back over whole base64 lines
    while (start > last) {
      const prevEnd = start - 1; // the "\n" before the current line
      if (text[prevEnd] !== "\n") break;
      const lineStart = text.lastIndexOf("\n", prevEnd - 1) + 1;
      if (lineStart < last || !BASE64_LINE.test(text.slice(lineStart, prevEnd))) break;
      start = lineStart;
    }
    if (start === m.index) continue; // a lone END line: nothing secret before it
    const cut = text.slice(start, m.index + m[0].length);
    out += text.slice(last, start) + mark("private_key") +
      (keepLines ? "\n".repeat(cut.split("\n").length - 1) : "");
    last = m.index + m[0].length;
  }
  return out + text.slice(last);
}
