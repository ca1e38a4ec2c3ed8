/**
 * Dialing: one hop over TCP or through the previous hop (`forwardOut`), addresses tried in
 * order, each within the whole-connect `timeout` (TCP, handshake, auth); host keys checked;
 * then a chain of hops. Every TCP socket gets `setNoDelay(true)`.
 */
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Client } from "ssh2";
import { loadSsh2 } from "./ssh2.ts";
import { cryptoPath } from "./crypto/mod.ts";
import { asBuffer } from "./crypto/packet.ts";
import { RsmError } from "../errors.ts";
import { type AuthPlan, prepareAuth } from "./auth.ts";
import { SecretNeededError } from "../secrets.ts";
import { hasCertAuthority, type HostKey, hostKeyFromBlob, verifyHostKey } from "./known_hosts.ts";
import { adoptHostCertificate, defaultHostKeyAlgorithms } from "./cert/patch.ts";
import { HOST_CERT_ALGORITHMS } from "./cert/format.ts";
import type { HopAddress, HopTarget } from "./resolve.ts";
import { formatAddress, resolveSecrets } from "./spec.ts";
import { startProxyCommand } from "./proxy_command.ts";

/** Options for {@link dialChain}. */
export interface DialOptions {
  /** Per address, per hop: TCP + handshake + auth. */
  timeoutMs: number;
  /** Keepalive interval; probes unanswered for 2 more intervals close the connection. */
  keepaliveMs: number;
  /** The daemon's known_hosts (read for every hop; `accept-new` records there). */
  daemonKnownHosts: string;
  forwardAgent?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** One established hop. */
export interface Hop {
  client: Client;
  /** `host:port` actually connected. */
  address: string;
  hostKey?: HostKey | undefined;
  /** The TCP socket (first hop only). */
  socket?: Socket | undefined;
}

/** An established chain; `final` is the target. */
export interface Chain {
  hops: Hop[];
  final: Hop;
  /** Ends every hop (target first). Idempotent. */
  end(): void;
}

/**
 * The SSH socket reads into one buffer of this size (node:net's `onread`), not 64 KiB chunks:
 * under a bulk transfer a read then takes 8 packets, not 2, and the pipe behind it writes
 * them on in one call — a quarter of the read and write calls, ~15 % less of the daemon's CPU
 * for a `-L` download. Each read is copied out (the next read reuses the buffer) and pushed
 * into the socket's stream as usual: pause, back-pressure and EOF work as without `onread`.
 */
const READ_SIZE = 256 * 1024;

function tcp(addr: HopAddress, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const buffer = new Uint8Array(READ_SIZE);
    const sock: Socket = netConnect({
      host: addr.host,
      port: addr.port,
      // returning false (the stream is full or paused) stops reading until it is read
      // (`slice` copies natively; `Buffer.from` of a Uint8Array went byte by byte)
      onread: { buffer, callback: (n: number) => sock.push(asBuffer(buffer.slice(0, n))) },
    });
    const done = (err?: Error) => {
      signal.removeEventListener("abort", onAbort);
      sock.off("error", done);
      sock.off("connect", onConnect);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(sock);
    };
    const onConnect = () => {
      sock.setNoDelay(true);
      done();
    };
    const onAbort = () => done(signal.reason ?? new Error("aborted"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    sock.once("error", done);
    sock.once("connect", onConnect);
  });
}

function through(via: Client, addr: HopAddress, signal: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      reject(signal.reason ?? new Error("aborted"));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    const onOpen = (err: Error | undefined, stream: Duplex) => {
      signal.removeEventListener("abort", onAbort);
      if (settled) {
        stream?.destroy();
        return;
      }
      settled = true;
      if (err) reject(new Error(`the jump host cannot open a connection: ${err.message}`));
      else resolve(stream);
    };
    try {
      via.forwardOut("127.0.0.1", 0, addr.host, addr.port, onOpen);
    } catch (err) {
      onOpen(err instanceof Error ? err : new Error(String(err)), undefined as never);
    }
  });
}

class Fatal extends Error {}

/** One dial attempt: where it goes, its deadline, and how far it got (for error text). */
interface Attempt {
  target: HopTarget;
  addr: HopAddress;
  via: Client | undefined;
  options: DialOptions;
  /** `host:port` as shown in errors. */
  display: string;
  deadline: AbortSignal;
  /** The deadline and the caller's signal. */
  signal: AbortSignal;
  /** ProxyCommand rather than TCP (only without a jump host). */
  proxied: boolean;
  phase: string;
  /** The server's host key, once seen. */
  hostKey?: HostKey | undefined;
  /** Why the host key was refused, once checked. */
  verifyError?: Error | undefined;
}

function dialAddress(
  target: HopTarget,
  addr: HopAddress,
  via: Client | undefined,
  options: DialOptions,
): Promise<Hop> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const proxied = !via && target.proxyCommand !== undefined;
  const a: Attempt = {
    target,
    addr,
    via,
    options,
    display: formatAddress(addr.host, addr.port),
    deadline,
    signal: options.signal ? AbortSignal.any([deadline, options.signal]) : deadline,
    proxied,
    phase: proxied ? "ProxyCommand" : "TCP connect",
  };
  return (async () => {
    const plan = await prepareAuth({
      user: target.user,
      auth: target.auth,
      secrets: await resolveSecrets(target.auth),
      config: target.config,
      where: `${target.user}@${a.display}`,
    });
    const sock = await openTransport(a);
    a.phase = "SSH handshake";
    const ssh2 = await loadSsh2();
    return await handshake(a, new ssh2.Client(), sock, plan);
  })();
}

/** The byte stream to the server: through the jump host, a ProxyCommand, or TCP. */
async function openTransport(a: Attempt): Promise<Duplex> {
  const { target, addr, signal } = a;
  try {
    if (a.via) return await through(a.via, addr, signal);
    if (a.proxied) {
      return await startProxyCommand(target.proxyCommand!, {
        host: addr.host,
        port: addr.port,
        user: target.user,
        originalHost: addr.given,
      }, signal);
    }
    return await tcp(addr, signal);
  } catch (err) {
    if (err instanceof RsmError) throw new Fatal(err.message, { cause: err });
    if (a.deadline.aborted) {
      throw new Error(`timed out after ${a.options.timeoutMs} ms (${a.phase})`);
    }
    throw err;
  }
}

/** Runs the SSH handshake and authentication on `sock`; settles once, cleaning up on failure. */
async function handshake(a: Attempt, client: Client, sock: Duplex, plan: AuthPlan): Promise<Hop> {
  const { options, signal } = a;
  const config = await connectConfig(a, client, sock, plan);
  return await new Promise<Hop>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      client.off("ready", onReady);
      client.off("close", onClose);
      client.off("error", onError);
      client.on("error", () => {}); // the session attaches its own; never an unhandled error
      if (err) {
        client.end();
        sock.destroy();
        return reject(err);
      }
      const direct = !a.via && !a.proxied;
      resolve({
        client,
        address: a.display,
        hostKey: a.hostKey,
        socket: direct ? sock as Socket : undefined,
      });
      if (a.proxied) client.once("close", () => sock.destroy());
    };
    /** A refused host key or a failed authentication: final, no other address is tried. */
    const refused = (): Error | undefined => {
      if (a.verifyError) return new Fatal(a.verifyError.message, { cause: a.verifyError });
      if (!plan.need) return undefined;
      const f = plan.failure(a.display);
      return new Fatal(f.message, { cause: f });
    };
    plan.abort = () => client.end();
    const onReady = () => finish();
    const onError = (err: Error & { level?: string }) => {
      if (err.level === "client-authentication" && !a.verifyError && !plan.need) {
        const f = plan.failure(a.display);
        return finish(new Fatal(f.message, { cause: f }));
      }
      finish(refused() ?? new Error(`${err.message} (${a.phase})`));
    };
    const onClose = () => {
      finish(refused() ?? new Error(`connection closed by the server (${a.phase})`));
    };
    const onAbort = () => {
      if (a.deadline.aborted) {
        finish(new Error(`timed out after ${options.timeoutMs} ms (${a.phase})`));
      } else finish(new Fatal(String(options.signal?.reason ?? "aborted")));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    client.on("ready", onReady);
    client.on("error", onError);
    client.on("close", onClose);
    client.connect(config);
  });
}

/** ssh2's connect options for this attempt, with the host key check of the target's policy. */
async function connectConfig(
  a: Attempt,
  client: Client,
  sock: Duplex,
  plan: AuthPlan,
): Promise<Parameters<Client["connect"]>[0]> {
  const { target, addr, options } = a;
  const knownHostsFiles = [...target.knownHostsFiles, options.daemonKnownHosts];
  // like OpenSSH: certificate host keys first when a @cert-authority line covers the host
  const serverHostKey = target.policy !== "insecure" &&
      await hasCertAuthority(knownHostsFiles, addr.host, addr.port)
    ? [...HOST_CERT_ALGORITHMS, ...defaultHostKeyAlgorithms()]
    : undefined;
  return {
    sock,
    username: target.user,
    readyTimeout: 0,
    algorithms: {
      cipher: cipherOrder(),
      ...(serverHostKey ? { serverHostKey } : {}),
    },
    keepaliveInterval: options.keepaliveMs,
    keepaliveCountMax: 2,
    agent: plan.agentSocket,
    agentForward: !!(options.forwardAgent && plan.agentSocket),
    authHandler: plan.handler,
    hostVerifier: (blob: Uint8Array, verify: (ok: boolean) => void) => {
      const hostKey = a.hostKey = hostKeyFromBlob(blob);
      // now, not after the (async) check: ssh2 may check the key exchange signature as
      // soon as the server's NEWKEYS arrives; trust is still decided by verify() below
      adoptHostCertificate(client);
      if (target.policy === "insecure") {
        a.phase = "authentication";
        return verify(true);
      }
      verifyHostKey(addr.host, addr.port, hostKey, {
        policy: target.policy,
        files: knownHostsFiles,
        recordIn: options.daemonKnownHosts,
      }).then(() => {
        a.phase = "authentication";
        verify(true);
      }, (err) => {
        a.verifyError = err;
        verify(false);
      });
    },
  } as Parameters<Client["connect"]>[0];
}

/** Dials one hop, trying its addresses in order; auth and host key failures are final. */
export async function dialHop(
  target: HopTarget,
  via: Client | undefined,
  options: DialOptions,
): Promise<Hop> {
  const errors: string[] = [];
  for (const addr of target.addresses) {
    options.signal?.throwIfAborted();
    try {
      return await dialAddress(target, addr, via, options);
    } catch (err) {
      if (err instanceof Fatal) {
        const cause = err.cause;
        if (cause instanceof RsmError) throw cause;
        throw new RsmError("CONNECT_FAILED", err.message);
      }
      options.signal?.throwIfAborted();
      const shown = addr.given === formatAddress(addr.host, addr.port) || addr.given === addr.host
        ? formatAddress(addr.host, addr.port)
        : `${addr.given} (${formatAddress(addr.host, addr.port)})`;
      errors.push(`${shown}: ${err instanceof Error ? err.message : err}`);
    }
  }
  throw new RsmError(
    "CONNECT_FAILED",
    `Cannot connect as ${target.user}: ${errors.length > 1 ? "every address failed: " : ""}${
      errors.join("; ")
    }`,
  );
}

/** Dials `[jump…, target]`; on failure everything already opened is closed. */
export async function dialChain(chain: HopTarget[], options: DialOptions): Promise<Chain> {
  const hops: Hop[] = [];
  const end = () => {
    for (const h of [...hops].reverse()) {
      try {
        h.client.end();
      } catch { /* already closed */ }
      h.socket?.destroy();
    }
  };
  try {
    for (const [i, target] of chain.entries()) {
      const via = hops.at(-1)?.client;
      try {
        const last = i === chain.length - 1;
        hops.push(
          await dialHop(target, via, { ...options, forwardAgent: last && options.forwardAgent }),
        );
      } catch (err) {
        if (err instanceof SecretNeededError) throw err; // its label names the hop already
        if (chain.length > 1 && i < chain.length - 1 && err instanceof RsmError) {
          throw new RsmError(err.code, `jump host ${i + 1} of ${chain.length - 1}: ${err.message}`);
        }
        if (i > 0 && err instanceof RsmError) {
          throw new RsmError(
            err.code,
            `${err.message} (through jump host ${hops.at(-1)?.address})`,
          );
        }
        throw err;
      }
    }
  } catch (err) {
    end();
    throw err;
  }
  const final = hops.at(-1);
  if (!final) throw new Error("dialChain needs at least one hop");
  return { hops, final, end };
}

/**
 * Cipher preference, the same for direct connections and hops through a jump host. With the
 * libcrypto path (lib/ssh/crypto/) AES-GCM leads: OpenSSL runs it fastest, and so does OpenSSH.
 * On the portable path chacha20-poly1305 leads: Deno's native ChaCha20 with a WebAssembly
 * Poly1305 is several times faster there than `node:crypto` AES-GCM. `REMOTE_SHELL_MCP_CIPHERS`
 * (comma list) overrides the order.
 */
export function cipherOrder(): string[] {
  const custom = Deno.env.get("REMOTE_SHELL_MCP_CIPHERS");
  if (custom) return custom.split(",").map((c) => c.trim()).filter(Boolean);
  const gcm = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"];
  const chacha = ["chacha20-poly1305@openssh.com"];
  const ctr = ["aes128-ctr", "aes192-ctr", "aes256-ctr"];
  return cryptoPath()?.path === "libcrypto"
    ? [...gcm, ...chacha, ...ctr]
    : [...chacha, ...gcm, ...ctr];
}
