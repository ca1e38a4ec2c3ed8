/**
 * `ssh://user@host[:port][/socket]` Docker hosts: one SSH connection of our own, dialed with
 * the SSH layer (ssh_config, auth order, host key checks against `~/.ssh/known_hosts` and the
 * daemon's own file, policy `accept-new` by default), carrying stream-local channels to the
 * engine socket.
 */
import { parseDuration } from "../duration.ts";
import { dialChain } from "../ssh/dial.ts";
import { resolveChain } from "../ssh/resolve.ts";
import { formatAddress, type SessionSpec } from "../ssh/spec.ts";
import type { Endpoint } from "./endpoint.ts";
import type { DialedSsh, DockerHostSpec } from "./host.ts";

/** The SSH session spec equivalent to an `ssh://` Docker host. */
export function sshSpecFor(
  ep: Extract<Endpoint, { kind: "ssh" }>,
  spec: DockerHostSpec,
): SessionSpec {
  return {
    user: ep.user ?? spec.user,
    addresses: [formatAddress(ep.host, ep.port)],
    auth: spec.auth,
    known_hosts_path: spec.known_hosts_path,
    host_key_policy: spec.host_key_policy,
    timeout: spec.timeout,
  };
}

/** Options for {@link dialDockerSsh}. */
export interface DialDockerSshOptions {
  /** The daemon's own known_hosts file (checked after `~/.ssh/known_hosts`). */
  knownHosts: string;
  /** Cancels the dial. */
  signal: AbortSignal;
}

/** Dials the SSH connection for an `ssh://` host; resolves a ready client. */
export async function dialDockerSsh(
  ep: Extract<Endpoint, { kind: "ssh" }>,
  spec: DockerHostSpec,
  options: DialDockerSshOptions,
): Promise<DialedSsh> {
  const { knownHosts, signal } = options;
  const ssh = sshSpecFor(ep, spec);
  const chain = await dialChain(resolveChain(ssh), {
    timeoutMs: spec.timeout !== undefined ? parseDuration(spec.timeout) : 15_000,
    keepaliveMs: 15_000,
    daemonKnownHosts: knownHosts,
    signal,
  });
  const client = chain.final.client;
  return {
    openssh_forwardOutStreamLocal: client.openssh_forwardOutStreamLocal.bind(client),
    /** Ends the whole chain (target, jump hosts, TCP socket). */
    end: () => chain.end(),
    on: (event: string, f: () => void) => client.on(event as "close", f),
  } as unknown as DialedSsh;
}
