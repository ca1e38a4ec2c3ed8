/**
 * The connection spec of an SSH session (README "SSH sessions and exec"), address parsing, secret resolution and
 * the secret-free copy that goes to `state.json`.
 */
import { addSecret } from "../secrets.ts";
import { RsmError } from "../errors.ts";
import { homeDir } from "../paths.ts";

/** How to authenticate. Secrets may be given inline or by reference (`*_env`, `*_file`). */
export interface AuthSpec {
  key_path?: string | undefined;
  key_passphrase?: string | undefined;
  key_passphrase_env?: string | undefined;
  use_agent?: boolean | undefined;
  agent_socket?: string | undefined;
  password?: string | undefined;
  password_env?: string | undefined;
  password_file?: string | undefined;
}

/** Host key policy: `accept-new` (default) records unknown keys; changed keys are always refused. */
export type HostKeyPolicy = "strict" | "accept-new" | "insecure";

/** One hop of a jump chain (also the shape of the target's own connection fields). */
export interface HopSpec {
  user?: string | undefined;
  /** Tried in order: `host`, `host:port`, `[v6]:port`, an ssh_config alias. */
  addresses: string[] | string;
  auth?: AuthSpec | undefined;
  known_hosts_path?: string | undefined;
  host_key_policy?: HostKeyPolicy | undefined;
  /** Alias for `host_key_policy: "insecure"`. */
  insecure?: boolean | undefined;
}

/** The full `spec` of `ssh_connect`. */
export interface SessionSpec extends HopSpec {
  jump_hosts?: HopSpec[] | undefined;
  /** Whole connect per address (TCP, handshake, auth). Default 15s. */
  timeout?: string | number | undefined;
  /** Keepalive interval. Default 15s (or ssh_config ServerAliveInterval). */
  keepalive?: string | number | undefined;
  auto_reconnect?: boolean | undefined;
  persistent?: boolean | undefined;
  forward_agent?: boolean | undefined;
  disable_ssh_config?: boolean | undefined;
}

/** A parsed address. */
export interface Address {
  host: string;
  /** Undefined when the address did not name one (ssh_config `Port`, then 22). */
  port?: number | undefined;
  user?: string | undefined;
}

/**
 * Parses `host`, `host:port`, `[v6]:port`, `user@host:port`, or a bare IPv6 address.
 *
 * @example
 * ```ts
 * parseAddress("[::1]:2222"); // { host: "::1", port: 2222 }
 * ```
 */
export function parseAddress(text: string): Address {
  let rest = text.trim();
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at > 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const bad = () =>
    new RsmError(
      "BAD_ADDRESS",
      `Cannot parse address "${text}": expected host, host:port, [v6]:port or an ssh_config alias`,
    );
  if (!rest) throw bad();
  let host = rest;
  let port: number | undefined;
  const v6 = rest.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (v6) {
    host = v6[1]!; // the group always matches
    if (v6[2]) port = Number(v6[2]);
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    const i = rest.indexOf(":");
    host = rest.slice(0, i);
    const p = rest.slice(i + 1);
    if (!/^\d+$/.test(p)) throw bad();
    port = Number(p);
  }
  if (!host || /\s/.test(host)) throw bad();
  if (port !== undefined && (port < 1 || port > 65535)) throw bad();
  return { host, port, user };
}

/** `host:port` for display (`[v6]:port`). */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The addresses of a hop as an array. */
export function addressList(hop: HopSpec): string[] {
  const list = typeof hop.addresses === "string" ? [hop.addresses] : [...(hop.addresses ?? [])];
  if (list.length === 0) {
    throw new RsmError("BAD_SPEC", "Cannot connect: spec.addresses is empty; give at least one");
  }
  return list;
}

/** The effective host key policy of a hop. */
export function policyOf(hop: HopSpec): HostKeyPolicy {
  if (hop.insecure) return "insecure";
  return hop.host_key_policy ?? "accept-new";
}

/** Expands a leading `~/`. */
export function expandHome(path: string): string {
  if (path === "~") return homeDir();
  if (path.startsWith("~/")) return `${homeDir()}/${path.slice(2)}`;
  return path;
}

async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(expandHome(path));
    return text.replace(/\r?\n$/, "");
  } catch (err) {
    throw new RsmError(
      "SECRET_UNAVAILABLE",
      `Cannot read ${what} file ${path}: ${err instanceof Error ? err.message : err}`,
    );
  }
}

function readSecretEnv(name: string, what: string): string {
  const value = Deno.env.get(name);
  if (value === undefined) {
    throw new RsmError(
      "SECRET_UNAVAILABLE",
      `Cannot read ${what}: environment variable ${name} is not set in the daemon's environment ` +
        `(the daemon inherits the environment of the first rsm that started it)`,
    );
  }
  return value;
}

/** Secrets of an {@link AuthSpec} resolved from inline values, env vars and files. */
export interface ResolvedSecrets {
  password?: string | undefined;
  passphrase?: string | undefined;
}

/** Reads the password and passphrase (registering them as secrets) the moment they are needed. */
export async function resolveSecrets(auth: AuthSpec | undefined): Promise<ResolvedSecrets> {
  const out: ResolvedSecrets = {};
  if (!auth) return out;
  if (auth.password !== undefined) out.password = auth.password;
  else if (auth.password_env) out.password = readSecretEnv(auth.password_env, "password");
  else if (auth.password_file) out.password = await readSecretFile(auth.password_file, "password");
  if (auth.key_passphrase !== undefined) out.passphrase = auth.key_passphrase;
  else if (auth.key_passphrase_env) {
    out.passphrase = readSecretEnv(auth.key_passphrase_env, "key passphrase");
  }
  addSecret(out.password);
  addSecret(out.passphrase);
  return out;
}

/** Registers inline secrets of a spec (call on every incoming spec, before anything logs it). */
export function registerSpecSecrets(spec: SessionSpec): void {
  for (const hop of [spec, ...(spec.jump_hosts ?? [])]) {
    addSecret(hop.auth?.password);
    addSecret(hop.auth?.key_passphrase);
  }
}

function scrubAuth(auth: AuthSpec): AuthSpec {
  const { password: _p, key_passphrase: _k, ...rest } = auth;
  return rest;
}

/**
 * A deep copy of `spec` without inline secrets (references like `password_env` stay), for
 * `state.json`. Never mutates `spec`: scrubbing never touches live state.
 */
export function scrubSpec(spec: SessionSpec): SessionSpec {
  const copy: SessionSpec = structuredClone(spec);
  if (copy.auth) copy.auth = scrubAuth(copy.auth);
  if (copy.jump_hosts) {
    copy.jump_hosts = copy.jump_hosts.map((h) => h.auth ? { ...h, auth: scrubAuth(h.auth) } : h);
  }
  if (!copy.auth) delete copy.auth;
  return copy;
}
