/**
 * Turns a {@link SessionSpec} into the chain of hops to dial: ssh_config applied (alias,
 * `HostName`, `Port`, `User`, `IdentityFile`, `CertificateFile`, `IdentityAgent`,
 * `UserKnownHostsFile`, nested `ProxyJump`, `ProxyCommand`), explicit spec fields winning,
 * and `jump_hosts` replacing any configured `ProxyJump`/`ProxyCommand`.
 */
import { join } from "node:path";
import { RsmError } from "../errors.ts";
import { homeDir } from "../paths.ts";
import {
  addressList,
  type AuthSpec,
  expandHome,
  type HopSpec,
  type HostKeyPolicy,
  parseAddress,
  policyOf,
  type SessionSpec,
} from "./spec.ts";
import { type HostConfig, lookupHost } from "./ssh_config.ts";

/** One resolved address of a hop. */
export interface HopAddress {
  host: string;
  port: number;
  /** As the user wrote it (an alias stays an alias). */
  given: string;
}

/** A hop ready to dial. */
export interface HopTarget {
  user: string;
  addresses: HopAddress[];
  auth: AuthSpec;
  /** ssh_config of the first address (IdentityFile, IdentityAgent…). */
  config: HostConfig;
  policy: HostKeyPolicy;
  /** known_hosts files read for this hop (the daemon's own file is added by the dialer). */
  knownHostsFiles: string[];
  /** ssh_config `ProxyCommand` (tokens not yet expanded), for a hop dialed directly. */
  proxyCommand?: string | undefined;
}

/** The local user name (default `user`). */
export function localUser(): string {
  return Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? Deno.env.get("USERNAME") ?? "root";
}

const EMPTY: HostConfig = { identityFiles: [], certificateFiles: [] };

interface Ctx {
  useConfig: boolean;
}

function resolveHop(
  hop: HopSpec,
  ctx: Ctx,
): { target: HopTarget; proxyJump?: string | undefined } {
  const parsed = addressList(hop).map((given) => ({ ...parseAddress(given), given }));
  const first = parsed[0]!; // addressList never returns an empty list
  const givenUser = hop.user ?? first.user;
  const look = (h: string) => (ctx.useConfig ? lookupHost(h, { user: givenUser }) : EMPTY);
  const firstCfg = look(first.host);
  const addresses = parsed.map((a, i) => {
    const c = i === 0 ? firstCfg : look(a.host);
    return { host: c.hostName ?? a.host, port: a.port ?? c.port ?? 22, given: a.given };
  });
  const user = givenUser ?? firstCfg.user ?? localUser();
  const knownHostsFiles = hop.known_hosts_path
    ? [expandHome(hop.known_hosts_path)]
    : firstCfg.userKnownHostsFiles ?? [join(homeDir(), ".ssh", "known_hosts")];
  return {
    target: {
      user,
      addresses,
      auth: hop.auth ?? {},
      config: firstCfg,
      policy: policyOf(hop),
      knownHostsFiles,
      ...(firstCfg.proxyCommand ? { proxyCommand: firstCfg.proxyCommand } : {}),
    },
    proxyJump: firstCfg.proxyJump,
  };
}

/** Auth a ProxyJump hop inherits from the target: keys and agent, never the password. */
function inheritedAuth(auth: AuthSpec | undefined): AuthSpec {
  if (!auth) return {};
  const { password: _p, password_env: _e, password_file: _f, ...keysAndAgent } = auth;
  return keysAndAgent;
}

function expandProxyJump(
  list: string,
  template: HopSpec,
  ctx: Ctx,
  depth: number,
): HopTarget[] {
  if (depth > 8) {
    throw new RsmError("BAD_SPEC", "Cannot follow ProxyJump: more than 8 nested levels (a loop?)");
  }
  const names = list.split(",").map((s) => s.trim()).filter(Boolean);
  const out: HopTarget[] = [];
  names.forEach((name, i) => {
    const hop: HopSpec = {
      addresses: [name],
      auth: inheritedAuth(template.auth),
      ...(template.known_hosts_path ? { known_hosts_path: template.known_hosts_path } : {}),
      host_key_policy: policyOf(template),
    };
    const r = resolveHop(hop, ctx);
    // OpenSSH: the first hop is connected with its own config (including its ProxyJump)
    if (i === 0 && r.proxyJump) out.push(...expandProxyJump(r.proxyJump, template, ctx, depth + 1));
    out.push(r.target);
  });
  return out;
}

/**
 * Resolves the whole chain: `[jump…, target]`.
 *
 * @example
 * ```ts
 * const chain = resolveChain({ addresses: "box" }); // alias from ~/.ssh/config
 * ```
 */
export function resolveChain(spec: SessionSpec): HopTarget[] {
  const ctx: Ctx = { useConfig: !spec.disable_ssh_config };
  const { target, proxyJump } = resolveHop(spec, ctx);
  if (spec.jump_hosts?.length) {
    const hops = spec.jump_hosts.map((h) => resolveHop(h, ctx).target);
    delete target.proxyCommand; // only a directly dialed hop uses its ProxyCommand
    return [...hops, target];
  }
  if (proxyJump) {
    // OpenSSH: ProxyJump and ProxyCommand are one option; rsm lets ProxyJump win
    delete target.proxyCommand;
    const hops = expandProxyJump(proxyJump, spec, ctx, 1);
    for (const h of hops.slice(1)) delete h.proxyCommand;
    return [...hops, target];
  }
  return [target];
}
