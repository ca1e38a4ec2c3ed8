/**
 * `~/.ssh/config` lookups (SPEC §4.1): `HostName`, `Port`, `User`, `IdentityFile`,
 * `IdentityAgent`, `ProxyJump`, `ServerAliveInterval`, `ConnectTimeout`. The file is re-read
 * when its mtime or size changes. `Match exec` is never evaluated (no process is spawned).
 */
import SSHConfig from "ssh-config";
import { join } from "node:path";
import { homeDir } from "../paths.ts";

/** What ssh_config says about one host (only the keys we honour; absent when unset). */
export interface HostConfig {
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles: string[];
  identityAgent?: string;
  /** `none` is returned as undefined. */
  proxyJump?: string;
  serverAliveIntervalMs?: number;
  connectTimeoutMs?: number;
}

interface Cached {
  path: string;
  mtime: number;
  size: number;
  config: ReturnType<typeof SSHConfig.parse>;
}

let cache: Cached | undefined;

/** The path of the user's ssh_config (`$HOME/.ssh/config`). */
export function sshConfigPath(): string {
  return join(homeDir(), ".ssh", "config");
}

function load(path: string): Cached["config"] | undefined {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    cache = undefined;
    return undefined;
  }
  const mtime = stat.mtime?.getTime() ?? 0;
  if (cache && cache.path === path && cache.mtime === mtime && cache.size === stat.size) {
    return cache.config;
  }
  const config = SSHConfig.parse(Deno.readTextFileSync(path));
  cache = { path, mtime, size: stat.size, config };
  return config;
}

function expandTokens(value: string, host: string, user: string | undefined): string {
  const home = homeDir();
  let v = value.startsWith("~/") ? `${home}/${value.slice(2)}` : value;
  v = v.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case "d":
        return home;
      case "h":
        return host;
      case "r":
      case "u":
        return user ?? Deno.env.get("USER") ?? "";
      case "%":
        return "%";
      default:
        return m;
    }
  });
  return v;
}

/**
 * Looks `host` up in ssh_config. Returns an empty config when the file is missing, unreadable
 * or `disabled`; a parse error yields an empty config too (connecting still works without it).
 *
 * @example
 * ```ts
 * const cfg = lookupHost("box"); // { hostName: "10.0.0.5", port: 2222, identityFiles: [...] }
 * ```
 */
export function lookupHost(host: string, options: { path?: string } = {}): HostConfig {
  const empty: HostConfig = { identityFiles: [] };
  let config: Cached["config"] | undefined;
  try {
    config = load(options.path ?? sshConfigPath());
  } catch {
    return empty;
  }
  if (!config) return empty;
  let c: Record<string, string | string[]>;
  try {
    c = config.compute(host, { ignoreCase: true, matchExec: false } as never) as Record<
      string,
      string | string[]
    >;
  } catch {
    return empty;
  }
  const one = (k: string): string | undefined => {
    const v = c[k];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v[0] : v;
  };
  const user = one("user");
  const hostName = one("hostname");
  const out: HostConfig = { identityFiles: [] };
  if (hostName) out.hostName = hostName.replace(/%h/g, host);
  const port = Number(one("port"));
  if (Number.isInteger(port) && port > 0 && port < 65536) out.port = port;
  if (user) out.user = user;
  const ids = c["identityfile"];
  const list = Array.isArray(ids) ? ids : ids ? [ids] : [];
  out.identityFiles = list.filter((p) => p.toLowerCase() !== "none").map((p) =>
    expandTokens(p, out.hostName ?? host, user)
  );
  const agent = one("identityagent");
  if (agent && agent.toLowerCase() !== "none") {
    if (agent === "SSH_AUTH_SOCK") out.identityAgent = Deno.env.get("SSH_AUTH_SOCK");
    else if (agent.startsWith("$")) out.identityAgent = Deno.env.get(agent.slice(1));
    else out.identityAgent = expandTokens(agent, host, user);
  }
  const jump = one("proxyjump");
  if (jump && jump.toLowerCase() !== "none") out.proxyJump = jump;
  const alive = Number(one("serveraliveinterval"));
  if (Number.isFinite(alive) && alive > 0) out.serverAliveIntervalMs = alive * 1000;
  const ct = Number(one("connecttimeout"));
  if (Number.isFinite(ct) && ct > 0) out.connectTimeoutMs = ct * 1000;
  return out;
}
