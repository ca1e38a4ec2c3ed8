/**
 * One port forward of one SSH session: -L (local listener → `forwardOut`), -D (local SOCKS5
 * listener → `forwardOut` to the requested target) or -R (`forwardIn` on the server → a local
 * dial). All three pipe through {@link Traffic} (lib/ssh/pipe.ts).
 *
 * Reconnects: a local listener (-L/-D) stays up while the session is down; a new connection
 * waits for the session (`ready()`) within its 30 s dial budget. A remote forward is requested
 * again on every new connection of the session, on the same port (retried with backoff while
 * the server still holds the old one).
 */
import net from "node:net";
import type { Client, ClientChannel, TcpConnectionDetails } from "ssh2";
import { errorMessage, RsmError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { Traffic } from "./pipe.ts";
import type { SshSession } from "./session.ts";
import { readSocksRequest, REPLY, replyFor, sendReply } from "./socks5.ts";

/** Dial budget of one forwarded connection (session wait + channel open / local connect). */
export const DIAL_TIMEOUT_MS = 30_000;

/** What the user asked for (saved as is in state.json). */
export type ForwardSpec =
  | {
    kind: "local";
    bind_addr: string;
    bind_port: number;
    remote_host: string;
    remote_port: number;
    allow_remote_clients?: boolean | undefined;
  }
  | {
    kind: "remote";
    bind_addr: string;
    bind_port: number;
    local_host: string;
    local_port: number;
  }
  | { kind: "dynamic"; bind_addr: string; bind_port: number; allow_remote_clients?: boolean };

/** `host` as it goes into a `host:port` string. */
export function hostPart(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** The compact ssh-style form of a spec: `-L 127.0.0.1:0:db:5432`. */
export function specString(s: ForwardSpec): string {
  const bind = `${hostPart(s.bind_addr)}:${s.bind_port}`;
  if (s.kind === "local") return `-L ${bind}:${hostPart(s.remote_host)}:${s.remote_port}`;
  if (s.kind === "remote") return `-R ${bind}:${hostPart(s.local_host)}:${s.local_port}`;
  return `-D ${bind}`;
}

/** Whether `addr` only accepts connections from this machine. */
export function isLoopback(addr: string): boolean {
  const a = addr.toLowerCase().replace(/^\[|\]$/g, "");
  return a === "localhost" || /^127\./.test(a) || a === "::1" || /^::ffff:127\./.test(a);
}

/** Options for {@link Forward}. */
export interface ForwardOptions {
  log: Logger;
  /** Called when something worth saving changed (the effective port). */
  onChange: () => void;
}

/** A live forward. `close()` stops the listener and its connections. */
export class Forward {
  readonly id: string;
  readonly session: SshSession;
  readonly spec: ForwardSpec;
  readonly traffic: Traffic = new Traffic();
  /** The port really listened on (local side for -L/-D, server side for -R). */
  port: number;
  #server: net.Server | undefined;
  /** The client the -R forward is registered on. */
  #remoteClient: Client | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #opts: ForwardOptions;

  constructor(id: string, session: SshSession, spec: ForwardSpec, options: ForwardOptions) {
    this.id = id;
    this.session = session;
    this.spec = spec;
    this.port = spec.bind_port;
    this.#opts = options;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Starts a -L/-D listener on `port` (default: the spec's). Throws a clear error when the port
   * is taken or the address cannot be used.
   */
  async listen(port = this.spec.bind_port): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const onConn = this.spec.kind === "dynamic"
      ? (s: net.Socket) => this.#onSocks(s)
      : (s: net.Socket) => this.#onLocal(s);
    server.on("connection", onConn);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: this.spec.bind_addr, port }, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((err) => {
      server.close();
      throw listenError(err, this.spec.bind_addr, port);
    });
    server.on("error", (err) => this.#opts.log.warn("forward listener error", { error: err }));
    if (this.#closed) {
      server.close();
      return;
    }
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /**
   * Asks the server to listen for a -R forward on `client` (the spec's port the first time,
   * then the port it got, so reconnects keep it). Throws when the server refuses.
   */
  async requestRemote(client: Client, port = this.port): Promise<void> {
    if (this.spec.kind !== "remote") return;
    const addr = this.spec.bind_addr;
    if (addr.includes("\0")) {
      // OpenSSH drops the whole connection for a NUL in a tcpip-forward request
      throw new RsmError("BAD_ARGUMENT", "Cannot listen on the server: bind_addr contains a NUL");
    }
    const got = await new Promise<number>((resolve, reject) => {
      try {
        client.forwardIn(addr, port, (err, p) => err ? reject(err) : resolve(p));
      } catch (err) {
        reject(err);
      }
    }).catch((err) => {
      throw new RsmError(
        "FORWARD_FAILED",
        `Cannot listen on ${hostPart(addr)}:${port} on the server: ${errorMessage(err)} ` +
          `(port in use there, or sshd forbids it: AllowTcpForwarding, GatewayPorts, ` +
          `PermitListen); choose another bind_port, or 0 to let the server pick one`,
        { cause: err },
      );
    });
    if (this.#closed) {
      try {
        client.unforwardIn(addr, got, () => {});
      } catch { /* connection gone */ }
      return;
    }
    this.#remoteClient = client;
    if (got !== this.port) {
      this.port = got;
      this.#opts.onChange();
    }
  }

  /**
   * Re-requests a -R forward on a new connection, retrying with backoff (the server may still
   * hold the port for the dead connection until it notices).
   */
  reestablish(client: Client, attempt = 0): void {
    if (this.#closed || this.spec.kind !== "remote") return;
    clearTimeout(this.#retry);
    // a port-0 forward whose old port stays taken takes any port after ~15 s of retries
    const port = this.spec.bind_port === 0 && attempt >= 6 ? 0 : this.port;
    this.requestRemote(client, port).then(
      () => this.#opts.log.info("remote forward re-established", { id: this.id, port: this.port }),
      (err) => {
        if (this.#closed || this.session.closed) return;
        const live = this.session.state === "connected" && this.session.client() === client;
        if (!live) return; // the next "connected" event starts over
        const delay = [500, 1000, 2000, 5000][Math.min(attempt, 3)];
        this.#opts.log.warn("remote forward not re-established yet; retrying", {
          id: this.id,
          error: errorMessage(err),
          in_ms: delay,
        });
        this.#retry = setTimeout(() => this.reestablish(client, attempt + 1), delay);
      },
    );
  }

  /** Retries a -L/-D listen in the background until it works (restore of a taken port). */
  listenLater(port: number, delayMs = 5000): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (this.#closed) return;
      this.listen(port).then(
        () => this.#opts.log.info("forward listening again", { id: this.id, port: this.port }),
        () => this.listenLater(port, Math.min(delayMs * 2, 60_000)),
      );
    }, delayMs);
  }

  /** The -R forward's connection from the server (already matched to this forward). */
  onRemoteConnection(info: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void) {
    if (this.spec.kind !== "remote" || this.#closed) return reject();
    const sock = net.connect({
      host: this.spec.local_host,
      port: this.spec.local_port,
      allowHalfOpen: true,
    });
    const timer = setTimeout(() => sock.destroy(new Error("timed out")), DIAL_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      this.#opts.log.debug("remote forward: local dial failed", {
        id: this.id,
        from: `${info.srcIP}:${info.srcPort}`,
        error: errorMessage(err),
      });
      reject();
    };
    sock.once("error", fail);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.off("error", fail);
      if (this.#closed) {
        sock.destroy();
        return reject();
      }
      sock.setNoDelay(true);
      const ch = accept();
      this.traffic.open(ch).attach(sock);
    });
  }

  /** Drops the connections carried by the session's last (now dead) connection. */
  onSessionDown(): void {
    this.#remoteClient = undefined;
    clearTimeout(this.#retry);
    this.traffic.closeAll({ attachedOnly: true });
  }

  /** Stops listening (and unregisters a -R forward) and closes every connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#server?.close();
    this.#server = undefined;
    const c = this.#remoteClient;
    this.#remoteClient = undefined;
    if (c && this.spec.kind === "remote") {
      try {
        c.unforwardIn(this.spec.bind_addr, this.port, () => {});
      } catch { /* connection gone: nothing to cancel */ }
    }
    this.traffic.closeAll();
  }

  #onLocal(sock: net.Socket): void {
    if (this.spec.kind !== "local") return;
    const conn = this.traffic.open(sock);
    sock.setNoDelay(true);
    this.#dial(sock, this.spec.remote_host, this.spec.remote_port).then(
      (ch) => conn.attach(ch),
      (err) => {
        this.#opts.log.debug("local forward: dial failed", {
          id: this.id,
          error: errorMessage(err),
        });
        conn.destroy();
      },
    );
  }

  async #onSocks(sock: net.Socket): Promise<void> {
    const conn = this.traffic.open(sock);
    sock.setNoDelay(true);
    let req;
    try {
      req = await readSocksRequest(sock, { timeoutMs: DIAL_TIMEOUT_MS });
    } catch {
      endThenDestroy(sock); // the reply (if any) was written
      return;
    }
    let ch: ClientChannel;
    try {
      ch = await this.#dial(sock, req.host, req.port);
    } catch (err) {
      sendReply(sock, replyFor(err));
      endThenDestroy(sock);
      this.#opts.log.debug("socks: dial failed", {
        id: this.id,
        target: `${hostPart(req.host)}:${req.port}`,
        error: errorMessage(err),
      });
      return;
    }
    sendReply(sock, REPLY.SUCCEEDED);
    conn.attach(ch); // destroys `ch` if the client went away meanwhile
  }

  /** Opens a direct-tcpip channel to host:port, waiting for the session within the budget. */
  async #dial(sock: net.Socket, host: string, port: number): Promise<ClientChannel> {
    if (host.includes("\0")) {
      // OpenSSH drops the whole connection for a NUL in a direct-tcpip request (a SOCKS client
      // could otherwise cut the session of everyone using it)
      throw new RsmError("BAD_ARGUMENT", "the target host contains a NUL character");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ac = new AbortController();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new RsmError("DIAL_TIMEOUT", `no answer within ${DIAL_TIMEOUT_MS / 1000} s`);
        ac.abort(err);
        reject(err);
      }, DIAL_TIMEOUT_MS);
    });
    const onGone = () => ac.abort(new Error("client went away"));
    sock.once("close", onGone);
    try {
      const client = this.session.state === "connected"
        ? this.session.client()
        : await Promise.race([this.session.ready(ac.signal), timeout]);
      const open = new Promise<ClientChannel>((resolve, reject) => {
        client.forwardOut(
          sock.remoteAddress ?? "127.0.0.1",
          sock.remotePort ?? 0,
          host,
          port,
          (err, ch) => {
            if (err) return reject(err);
            if (ac.signal.aborted) {
              ch.destroy();
              return reject(ac.signal.reason);
            }
            resolve(ch);
          },
        );
      });
      return await Promise.race([open, timeout]);
    } finally {
      clearTimeout(timer);
      sock.off("close", onGone);
      timeout.catch(() => {});
    }
  }
}

/** Flushes what was written to `sock` (a SOCKS reply), then closes it for good. */
function endThenDestroy(sock: net.Socket): void {
  sock.once("finish", () => sock.destroy());
  sock.end();
}

function listenError(err: unknown, addr: string, port: number): RsmError {
  const code = (err as { code?: string })?.code ?? "";
  const where = `${hostPart(addr)}:${port}`;
  const why = code === "EADDRINUSE"
    ? "the port is already in use; choose another bind_port, or 0 to let the system pick one"
    : code === "EACCES"
    ? "permission denied (ports below 1024 need privileges); choose a port above 1023, or 0"
    : code === "EADDRNOTAVAIL"
    ? "the address is not on this machine; use 127.0.0.1 or an address of a local interface"
    : code === "ENOTFOUND" || code === "EAI_AGAIN"
    ? "the address does not resolve; use an IP address such as 127.0.0.1"
    : errorMessage(err);
  return new RsmError(
    code === "EADDRINUSE" ? "PORT_IN_USE" : "LISTEN_FAILED",
    `Cannot listen on ${where}: ${why}`,
    {
      cause: err,
    },
  );
}
