/**
 * `~/.ssh/config` lookups as OpenSSH does them (README "ssh_config"): `HostName`, `Port`,
 * `User`, `IdentityFile`, `CertificateFile`, `IdentitiesOnly`, `IdentityAgent`, `ProxyJump`,
 * `ProxyCommand`, `UserKnownHostsFile`, `ServerAliveInterval`, `ConnectTimeout`, in `Host`
 * and `Match host|originalhost|user|localuser|all` blocks, with `Include` (globs, relative to
 * `~/.ssh`, nested, inside blocks too). The first value of a keyword wins, except the
 * identity and certificate files, which add up. Files are re-read when they change.
 * `Match exec` is never run: a block that needs it is refused with an error saying so.
 *
 * Tokenising is `npm:ssh-config`'s; evaluation is a single pass with OpenSSH's "active" flag,
 * so `Include` inside a `Host` block and `Host` lines inside an included file behave the same.
 */
import SSHConfig from "ssh-config";
import { isAbsolute, join } from "node:path";
import { homeDir } from "../paths.ts";
import { RsmError } from "../errors.ts";

/** What ssh_config says about one host (only the keys we honour; absent when unset). */
export interface HostConfig {
  hostName?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  identityFiles: string[];
  /** `CertificateFile`s (tokens and `~` expanded). */
  certificateFiles: string[];
  /** `IdentitiesOnly yes`: only configured identities (agent keys only if configured too). */
  identitiesOnly?: boolean | undefined;
  identityAgent?: string | undefined;
  /** `none` is returned as undefined. */
  proxyJump?: string | undefined;
  /** As written (tokens `%h %p %r %%` are expanded at dial time); `none` → undefined. */
  proxyCommand?: string | undefined;
  /** `UserKnownHostsFile` (expanded); undefined when not set. */
  userKnownHostsFiles?: string[] | undefined;
  serverAliveIntervalMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
}

type Line = {
  type: number;
  param: string;
  value: string | { val: string; separator: string; quoted?: boolean }[];
  config?: Line[] | undefined;
};

interface Cached {
  mtime: number;
  size: number;
  lines: Line[];
}

const cache = new Map<string, Cached>();

/** The path of the user's ssh_config (`$HOME/.ssh/config`). */
export function sshConfigPath(): string {
  return join(homeDir(), ".ssh", "config");
}

function load(path: string): Line[] | undefined {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    cache.delete(path);
    return undefined;
  }
  if (!stat.isFile) return undefined;
  const mtime = stat.mtime?.getTime() ?? 0;
  const hit = cache.get(path);
  if (hit && hit.mtime === mtime && hit.size === stat.size) return hit.lines;
  const lines = SSHConfig.parse(Deno.readTextFileSync(path)) as unknown as Line[];
  cache.set(path, { mtime, size: stat.size, lines });
  return lines;
}

function values(v: Line["value"]): string[] {
  return typeof v === "string" ? [v] : v.map((x) => x.val);
}

/** The whole argument of a command directive (ProxyCommand), quotes kept as written. */
function commandText(v: Line["value"]): string {
  if (typeof v === "string") return v;
  return v.map((x) => `${x.separator}${x.quoted ? `"${x.val.replace(/"/g, '\\"')}"` : x.val}`)
    .join("").trim();
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i");
}

/**
 * OpenSSH pattern lists: comma (or space) separated globs, `!` negates; a negated match wins.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(patternListMatch(["web-*", "!web-db"], "web-1"), true);
 * ```
 */
export function patternListMatch(patterns: string[], name: string): boolean {
  let matched = false;
  for (const raw of patterns.flatMap((p) => p.split(","))) {
    const negate = raw.startsWith("!");
    const p = negate ? raw.slice(1) : raw;
    if (!p) continue;
    if (globToRegExp(p).test(name)) {
      if (negate) return false;
      matched = true;
    }
  }
  return matched;
}

/** Expands `~` and OpenSSH tokens in a path-like value. */
export function expandTokens(
  value: string,
  t: { host: string; originalHost?: string; user?: string | undefined; port?: number | undefined },
): string {
  const home = homeDir();
  let v = value === "~" ? home : value.startsWith("~/") ? `${home}/${value.slice(2)}` : value;
  v = v.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case "d":
        return home;
      case "h":
        return t.host;
      case "n":
        return t.originalHost ?? t.host;
      case "p":
        return String(t.port ?? 22);
      case "r":
        return t.user ?? localUserName();
      case "u":
        return localUserName();
      case "%":
        return "%";
      default:
        return m;
    }
  });
  return v;
}

function localUserName(): string {
  return Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "root";
}

/** Expands one `Include` argument to the files it names (sorted, like glob(3)). */
function includeFiles(arg: string, baseDir: string): string[] {
  const home = homeDir();
  let p = arg.startsWith("~/") ? join(home, arg.slice(2)) : arg;
  if (!isAbsolute(p)) p = join(baseDir, p);
  const parts = p.split("/").filter(Boolean);
  let found = ["/"];
  for (const part of parts) {
    const next: string[] = [];
    const wild = /[*?[]/.test(part);
    for (const dir of found) {
      if (!wild) {
        next.push(join(dir, part));
        continue;
      }
      const re = globToRegExp(part);
      try {
        for (const e of Deno.readDirSync(dir)) {
          if (!e.name.startsWith(".") && re.test(e.name)) next.push(join(dir, e.name));
        }
      } catch { /* not a directory */ }
    }
    found = next.sort();
  }
  return found;
}

interface EvalState {
  originalHost: string;
  /** The user given on the command line / spec (wins over User). */
  givenUser?: string | undefined;
  out: Record<string, string[]>;
  depth: number;
}

const MULTI = new Set(["identityfile", "certificatefile"]);

function set(state: EvalState, line: Line): void {
  const key = line.param.toLowerCase();
  if (key === "proxycommand") {
    state.out[key] ??= [commandText(line.value)];
    return;
  }
  const vals = values(line.value);
  if (MULTI.has(key)) (state.out[key] ??= []).push(...vals);
  else state.out[key] ??= vals;
}

function currentHost(state: EvalState): string {
  return state.out["hostname"]?.[0]?.replace(/%h/g, state.originalHost) ?? state.originalHost;
}

function currentUser(state: EvalState): string {
  return state.givenUser ?? state.out["user"]?.[0] ?? localUserName();
}

function matchLine(line: Line, state: EvalState, file: string): boolean {
  const words = values(line.value);
  let result = true;
  for (let i = 0; i < words.length; i++) {
    let kw = words[i]!.toLowerCase();
    const negate = kw.startsWith("!");
    if (negate) kw = kw.slice(1);
    if (kw === "all" || kw === "canonical" || kw === "final") continue;
    const arg = words[++i];
    if (arg === undefined) {
      throw new RsmError(
        "SSH_CONFIG",
        `Cannot read ${file}: "Match ${words.join(" ")}" has "${kw}" without a value`,
      );
    }
    if (!result) continue; // a criterion already failed: later ones (exec too) are not needed
    let ok: boolean;
    switch (kw) {
      case "host":
        ok = patternListMatch([arg], currentHost(state));
        break;
      case "originalhost":
        ok = patternListMatch([arg], state.originalHost);
        break;
      case "user":
        ok = patternListMatch([arg], currentUser(state));
        break;
      case "localuser":
        ok = patternListMatch([arg], localUserName());
        break;
      case "exec":
        throw new RsmError(
          "SSH_CONFIG",
          `Cannot use ${file} for ${state.originalHost}: "Match exec" would run a program ` +
            `(${arg}) and rsm never runs programs from ssh_config matching. Rewrite the block ` +
            `with Match host/originalhost/user/localuser, or pass disable_ssh_config: true`,
        );
      default:
        throw new RsmError(
          "SSH_CONFIG",
          `Cannot use ${file} for ${state.originalHost}: "Match ${kw}" is not supported ` +
            `(supported: host, originalhost, user, localuser, all)`,
        );
    }
    if (ok === negate) result = false;
  }
  return result;
}

function evalLines(lines: Line[], state: EvalState, file: string, active: boolean): void {
  for (const line of lines) {
    if (line.type !== SSHConfig.DIRECTIVE) continue;
    const key = line.param.toLowerCase();
    if (key === "host") {
      active = patternListMatch(values(line.value), state.originalHost);
      evalLines(line.config ?? [], state, file, active);
      continue;
    }
    if (key === "match") {
      active = matchLine(line, state, file);
      evalLines(line.config ?? [], state, file, active);
      continue;
    }
    if (!active) continue;
    if (key === "include") {
      if (state.depth >= 16) {
        throw new RsmError("SSH_CONFIG", `Cannot read ${file}: Include nested more than 16 deep`);
      }
      for (const arg of values(line.value)) {
        for (const f of includeFiles(arg, join(homeDir(), ".ssh"))) {
          const inc = load(f);
          if (!inc) continue;
          state.depth++;
          try {
            evalLines(inc, state, f, true);
          } finally {
            state.depth--;
          }
        }
      }
      continue;
    }
    set(state, line);
  }
}

/**
 * Looks `host` up in ssh_config. Returns an empty config when the file is missing; a file
 * that cannot be parsed yields an empty config too (connecting still works without it).
 * Throws an RsmError for a `Match exec` (or unknown `Match` criterion) that would decide.
 *
 * @example
 * ```ts
 * const cfg = lookupHost("box"); // { hostName: "10.0.0.5", port: 2222, identityFiles: [...] }
 * ```
 */
export function lookupHost(
  host: string,
  options: { path?: string; user?: string | undefined } = {},
): HostConfig {
  const out: HostConfig = { identityFiles: [], certificateFiles: [] };
  const file = options.path ?? sshConfigPath();
  let lines: Line[] | undefined;
  try {
    lines = load(file);
  } catch {
    return out;
  }
  if (!lines) return out;
  const state: EvalState = { originalHost: host, givenUser: options.user, out: {}, depth: 0 };
  evalLines(lines, state, file, true);
  const c = state.out;
  const one = (k: string) => c[k]?.[0];
  const user = one("user");
  const hostName = one("hostname");
  if (hostName) out.hostName = hostName.replace(/%h/g, host);
  const port = Number(one("port"));
  if (Number.isInteger(port) && port > 0 && port < 65536) out.port = port;
  if (user) out.user = user;
  const tokens = {
    host: out.hostName ?? host,
    originalHost: host,
    user: options.user ?? user,
    port: out.port,
  };
  const paths = (k: string) =>
    (c[k] ?? []).filter((p) => p.toLowerCase() !== "none").map((p) => expandTokens(p, tokens));
  out.identityFiles = paths("identityfile");
  out.certificateFiles = paths("certificatefile");
  const only = one("identitiesonly")?.toLowerCase();
  if (only === "yes" || only === "true") out.identitiesOnly = true;
  const agent = one("identityagent");
  if (agent && agent.toLowerCase() !== "none") {
    const socket = agent === "SSH_AUTH_SOCK"
      ? Deno.env.get("SSH_AUTH_SOCK")
      : agent.startsWith("$")
      ? Deno.env.get(agent.slice(1))
      : expandTokens(agent, tokens);
    if (socket !== undefined) out.identityAgent = socket; // unset: the agent from the environment
  }
  const jump = one("proxyjump");
  if (jump && jump.toLowerCase() !== "none") out.proxyJump = jump;
  const proxy = one("proxycommand");
  if (proxy && proxy.toLowerCase() !== "none") out.proxyCommand = proxy;
  if (c["userknownhostsfile"]) {
    out.userKnownHostsFiles = paths("userknownhostsfile");
  }
  const alive = Number(one("serveraliveinterval"));
  if (Number.isFinite(alive) && alive > 0) out.serverAliveIntervalMs = alive * 1000;
  const ct = Number(one("connecttimeout"));
  if (Number.isFinite(ct) && ct > 0) out.connectTimeoutMs = ct * 1000;
  return out;
}

/**
 * Every concrete alias (a `Host` pattern without wildcards or negation) written in the user's
 * ssh_config and the files it includes, in file order, without duplicates.
 */
export function configHostNames(options: { path?: string } = {}): string[] {
  const names: string[] = [];
  const walk = (lines: Line[], depth: number) => {
    for (const line of lines) {
      if (line.type !== SSHConfig.DIRECTIVE) continue;
      const key = line.param.toLowerCase();
      if (key === "host") {
        for (const n of values(line.value).flatMap((v) => v.split(","))) {
          if (n && !/[*?!]/.test(n) && !names.includes(n)) names.push(n);
        }
      }
      const includes = key === "include"
        ? [line]
        : (line.config ?? []).filter((l) => l.param?.toLowerCase() === "include");
      if (depth >= 16) continue;
      for (const inc of includes) {
        for (const arg of values(inc.value)) {
          for (const f of includeFiles(arg, join(homeDir(), ".ssh"))) {
            const sub = load(f);
            if (sub) walk(sub, depth + 1);
          }
        }
      }
    }
  };
  try {
    const lines = load(options.path ?? sshConfigPath());
    if (lines) walk(lines, 0);
  } catch { /* unreadable: no names */ }
  return names;
}
