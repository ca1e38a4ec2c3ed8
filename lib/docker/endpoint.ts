/**
 * Where a Docker engine is: parsing `unix://`, `tcp://`, `ssh://` hosts, and the defaults
 * (`DOCKER_HOST`, then the current docker context, then `/var/run/docker.sock`).
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { RsmError } from "../errors.ts";
import { homeDir } from "../paths.ts";

/** The default engine socket. */
export const DEFAULT_SOCKET = "/var/run/docker.sock";

/** A parsed engine address. */
export type Endpoint =
  | { kind: "unix"; socketPath: string }
  | { kind: "tcp"; host: string; port: number; tls: boolean }
  | { kind: "ssh"; user?: string | undefined; host: string; port: number; socketPath: string }
  | { kind: "session"; sessionId: string; socketPath: string };

/** TLS file paths (any may be missing). */
export interface TlsPaths {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** From `DOCKER_TLS_VERIFY` / a context: verify the server even without a CA path. */
  verify?: boolean | undefined;
}

/** What {@link resolveHost} found: the host URL, where it came from, and TLS paths. */
export interface ResolvedHost {
  url: string;
  source: "spec" | "DOCKER_HOST" | "context" | "default";
  tls: TlsPaths;
}

/**
 * Parses a Docker host URL.
 *
 * @example
 * ```ts
 * parseHost("ssh://me@box:2222/run/docker.sock");
 * // {kind: "ssh", user: "me", host: "box", port: 2222, socketPath: "/run/docker.sock"}
 * ```
 */
export function parseHost(url: string, tls = false): Endpoint {
  const text = url.trim();
  if (text.startsWith("/")) return { kind: "unix", socketPath: text };
  if (text.startsWith("unix://")) {
    const p = text.slice("unix://".length);
    if (!p.startsWith("/")) {
      throw new RsmError(
        "BAD_HOST",
        `Cannot use Docker host ${url}: unix:// needs an absolute socket path, e.g. unix:///var/run/docker.sock`,
      );
    }
    return { kind: "unix", socketPath: p };
  }
  let u: URL;
  try {
    u = new URL(text.includes("://") ? text : `tcp://${text}`);
  } catch {
    throw new RsmError(
      "BAD_HOST",
      `Cannot parse Docker host ${url}: expected unix:///path, tcp://host:port or ssh://user@host[:port][/socket]`,
    );
  }
  const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (u.protocol === "tcp:" || u.protocol === "http:" || u.protocol === "https:") {
    const secure = tls || u.protocol === "https:";
    const port = u.port ? Number(u.port) : secure ? 2376 : 2375;
    if (!hostname) throw new RsmError("BAD_HOST", `Cannot use Docker host ${url}: no host name`);
    return { kind: "tcp", host: hostname, port, tls: secure };
  }
  if (u.protocol === "ssh:") {
    if (!hostname) throw new RsmError("BAD_HOST", `Cannot use Docker host ${url}: no host name`);
    const path = decodeURIComponent(u.pathname);
    return {
      kind: "ssh",
      user: u.username ? decodeURIComponent(u.username) : undefined,
      host: hostname,
      port: u.port ? Number(u.port) : 22,
      socketPath: path && path !== "/" ? path : DEFAULT_SOCKET,
    };
  }
  throw new RsmError(
    "BAD_HOST",
    `Cannot use Docker host ${url}: scheme ${
      u.protocol.replace(":", "")
    } is not supported; use unix://, tcp:// or ssh://`,
  );
}

/** Options for {@link resolveHost}. */
export interface ResolveOptions {
  /** Environment to read (default: the process env). */
  env?: Record<string, string | undefined>;
}

/**
 * Picks the host to use: the spec's `host`, else `DOCKER_HOST`, else the current docker
 * context (`DOCKER_CONTEXT` or `currentContext` in `~/.docker/config.json`), else
 * `unix:///var/run/docker.sock`.
 */
export async function resolveHost(
  host: string | undefined,
  options: ResolveOptions = {},
): Promise<ResolvedHost> {
  if (host) return { url: host, source: "spec", tls: {} };
  const env = options.env ?? Deno.env.toObject();
  if (env.DOCKER_HOST) {
    const certDir = env.DOCKER_CERT_PATH;
    const verify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== "" &&
      env.DOCKER_TLS_VERIFY !== "0";
    const tls: TlsPaths = certDir
      ? {
        ca: join(certDir, "ca.pem"),
        cert: join(certDir, "cert.pem"),
        key: join(certDir, "key.pem"),
        verify,
      }
      : { verify };
    return { url: env.DOCKER_HOST, source: "DOCKER_HOST", tls };
  }
  const ctx = await currentContext(env);
  if (ctx) return { url: ctx.url, source: "context", tls: ctx.tls };
  return { url: `unix://${DEFAULT_SOCKET}`, source: "default", tls: {} };
}

/** The docker CLI config dir (`DOCKER_CONFIG` or `~/.docker`). */
export function dockerConfigDir(env: Record<string, string | undefined>): string {
  return env.DOCKER_CONFIG || join(env.HOME || homeDir(), ".docker");
}

async function currentContext(
  env: Record<string, string | undefined>,
): Promise<{ url: string; tls: TlsPaths } | null> {
  const dir = dockerConfigDir(env);
  let name = env.DOCKER_CONTEXT;
  if (!name) {
    try {
      const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
      name = typeof cfg?.currentContext === "string" ? cfg.currentContext : undefined;
    } catch {
      return null;
    }
  }
  if (!name || name === "default") return null;
  const hash = createHash("sha256").update(name).digest("hex");
  let meta: { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } };
  try {
    meta = JSON.parse(await Deno.readTextFile(join(dir, "contexts", "meta", hash, "meta.json")));
  } catch (err) {
    throw new RsmError(
      "BAD_CONTEXT",
      `Cannot read docker context "${name}" (current context in ${dir}): ${
        err instanceof Error ? err.message : err
      }; set host explicitly or fix the context with \`docker context use\``,
    );
  }
  const url = meta.Endpoints?.docker?.Host;
  if (!url) return null;
  const tlsDir = join(dir, "contexts", "tls", hash, "docker");
  const tls: TlsPaths = {};
  for (const [k, f] of [["ca", "ca.pem"], ["cert", "cert.pem"], ["key", "key.pem"]] as const) {
    try {
      await Deno.stat(join(tlsDir, f));
      tls[k] = join(tlsDir, f);
    } catch { /* absent */ }
  }
  if (tls.ca && !meta.Endpoints?.docker?.SkipTLSVerify) tls.verify = true;
  return { url, tls };
}

/** Human form of an endpoint for rows and errors. */
export function describeEndpoint(e: Endpoint): string {
  switch (e.kind) {
    case "unix":
      return `unix://${e.socketPath}`;
    case "tcp":
      return `tcp://${e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`;
    case "ssh":
      return `ssh://${e.user ? `${e.user}@` : ""}${e.host}:${e.port}${e.socketPath}`;
    case "session":
      return `ssh_session:${e.sessionId} unix://${e.socketPath}`;
  }
}
