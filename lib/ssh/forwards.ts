/**
 * Owns every port forward of the daemon (README "Port forwards"): creation with validation, listing,
 * cancel, the session events that drive them (reconnect, ssh_disconnect), and persistence of
 * the forwards of persistent sessions in `state.json` (key `"forwards"`).
 *
 * The manager is constructed after the SshManager, so at restore time the sessions are there
 * (connecting in the background); their forwards come back as soon as possible: -L/-D listen
 * at once (port-0 forwards try their last port first), -R forwards are requested when the
 * session connects.
 */
import type { Client, ClientChannel, TcpConnectionDetails } from "ssh2";
import { errorMessage, RsmError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { StateRegistry } from "../state/store.ts";
import {
  DIAL_TIMEOUT_MS,
  Forward,
  type ForwardSpec,
  hostPart,
  isLoopback,
  specString,
} from "./forward.ts";
import type { SshSession } from "./session.ts";

export { DIAL_TIMEOUT_MS, type ForwardSpec, specString } from "./forward.ts";

/** ForwardInfo (README "Port forwards"). `bytes_in`: from the connecting side; `bytes_out`: back to it. */
export interface ForwardInfo {
  id: string;
  session_id: string;
  kind: "local" | "remote" | "dynamic";
  bind_addr: string;
  bind_port: number;
  target_host: string;
  target_port: number;
  active_connections: number;
  total_connections: number;
  bytes_in: number;
  bytes_out: number;
  spec: string;
}

interface SavedForward {
  session_id: string;
  id: string;
  spec: ForwardSpec;
  /** The effective port when saved. */
  port: number;
}

/** Options for {@link ForwardManager.open}. */
export interface OpenForwardOptions {
  /** Cancels waiting for the session (-R). */
  signal?: AbortSignal | undefined;
}

/** What {@link ForwardManager} needs: where to persist, where to log, the sessions. */
export interface ForwardManagerOptions {
  /** Persists the forwards of persistent sessions under `"forwards"`. */
  store: StateRegistry;
  log: Logger;
  /** The SSH session `id`, or throws a NOT_FOUND error that says so (SshManager.get). */
  session(id: string): SshSession;
}

/** Owns every port forward. */
export class ForwardManager {
  #opts: ForwardManagerOptions;
  #forwards = new Map<string, Forward>();
  #watched = new WeakSet<SshSession>();
  #clients = new WeakSet<Client>();
  #closed = false;

  constructor(options: ForwardManagerOptions) {
    this.#opts = { ...options };
    this.#opts.store.register("forwards", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  /**
   * Creates forward `forwardId` on session `sessionId` and returns its ForwardInfo (with the
   * effective port). -R waits up to 30 s for the session to be connected.
   */
  async open(
    sessionId: string,
    forwardId: string,
    spec: ForwardSpec,
    options: OpenForwardOptions = {},
  ): Promise<ForwardInfo> {
    if (this.#closed) {
      throw new RsmError("SHUTTING_DOWN", "Cannot forward: the daemon is shutting down");
    }
    const session = this.#opts.session(sessionId);
    if (this.#forwards.has(key(sessionId, forwardId))) {
      throw new RsmError(
        "ALREADY_EXISTS",
        `Cannot create forward "${forwardId}" on session ${sessionId}: a forward with this id ` +
          `exists; cancel it first (ssh_forward_cancel) or choose another forward_id`,
      );
    }
    if (spec.kind !== "remote" && !isLoopback(spec.bind_addr) && !spec.allow_remote_clients) {
      throw new RsmError(
        "NOT_ALLOWED",
        `Cannot listen on ${hostPart(spec.bind_addr)}: it is not a loopback address, so other ` +
          `machines could use this tunnel; pass allow_remote_clients: true if that is intended, ` +
          `or use 127.0.0.1`,
      );
    }
    const fwd = this.#make(session, forwardId, spec);
    try {
      if (spec.kind === "remote") {
        const signal = AbortSignal.any([
          AbortSignal.timeout(DIAL_TIMEOUT_MS),
          ...(options.signal ? [options.signal] : []),
        ]);
        const client = await session.ready(signal).catch((err) => {
          throw new RsmError(
            "NOT_CONNECTED",
            `Cannot create remote forward "${forwardId}": session ${sessionId} is not ` +
              `connected (${errorMessage(err)}); try again once ssh_info shows connected`,
          );
        });
        this.#attachClient(session, client);
        await fwd.requestRemote(client);
      } else {
        await fwd.listen();
      }
    } catch (err) {
      this.#drop(fwd);
      throw err;
    }
    this.#opts.log.info("forward opened", { session: sessionId, id: forwardId, port: fwd.port });
    this.#opts.store.changed();
    return info(fwd);
  }

  /** ForwardInfo of every forward (of `sessionId` only, when given). */
  list(sessionId?: string): ForwardInfo[] {
    const out: ForwardInfo[] = [];
    for (const f of this.#forwards.values()) {
      if (sessionId === undefined || f.session.id === sessionId) out.push(info(f));
    }
    return out;
  }

  /** Closes forward `forwardId` of `sessionId`: its listener and its connections. */
  cancel(sessionId: string, forwardId: string): void {
    const f = this.#forwards.get(key(sessionId, forwardId));
    if (!f) {
      const known = this.list(sessionId).map((x) => x.id);
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find forward "${forwardId}" on session ${sessionId}` +
          (known.length ? ` (its forwards: ${known.slice(0, 20).join(", ")})` : "") +
          "; see ssh_forwards_list",
      );
    }
    this.#drop(f);
    this.#opts.log.info("forward cancelled", { session: sessionId, id: forwardId });
    this.#opts.store.changed();
  }

  /** Closes every forward (state was persisted before). Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const f of this.#forwards.values()) f.close();
    this.#forwards.clear();
    return Promise.resolve();
  }

  /** `await using` support. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #make(session: SshSession, id: string, spec: ForwardSpec): Forward {
    const fwd = new Forward(id, session, spec, {
      log: this.#opts.log,
      onChange: () => this.#opts.store.changed(),
    });
    this.#forwards.set(key(session.id, id), fwd);
    this.#watch(session);
    return fwd;
  }

  #drop(f: Forward): void {
    if (this.#forwards.get(key(f.session.id, f.id)) === f) {
      this.#forwards.delete(key(f.session.id, f.id));
    }
    f.close();
  }

  #ofSession(session: SshSession): Forward[] {
    return [...this.#forwards.values()].filter((f) => f.session === session);
  }

  /** Subscribes once per session to the events that drive its forwards. */
  #watch(session: SshSession): void {
    if (this.#watched.has(session)) return;
    this.#watched.add(session);
    session.on("connected", (client: Client) => {
      this.#attachClient(session, client);
      for (const f of this.#ofSession(session)) {
        if (f.spec.kind === "remote") f.reestablish(client);
      }
    });
    session.on("down", () => {
      for (const f of this.#ofSession(session)) f.onSessionDown();
    });
    session.once("closed", () => {
      const gone = this.#ofSession(session);
      for (const f of gone) this.#drop(f);
      if (gone.length) this.#opts.store.changed();
    });
  }

  /** Routes the server's `forwarded-tcpip` opens on `client` to the -R forward by port. */
  #attachClient(session: SshSession, client: Client): void {
    if (this.#clients.has(client)) return;
    this.#clients.add(client);
    client.on(
      "tcp connection",
      (info: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void) => {
        const f = this.#ofSession(session).find((x) =>
          x.spec.kind === "remote" && x.port === info.destPort &&
          (x.spec.bind_addr === info.destIP || this.#remotePorts(session, x.port) === 1)
        );
        if (!f) return reject();
        f.onRemoteConnection(info, accept, reject);
      },
    );
  }

  #remotePorts(session: SshSession, port: number): number {
    return this.#ofSession(session).filter((x) => x.spec.kind === "remote" && x.port === port)
      .length;
  }

  #save(): { forwards: SavedForward[] } {
    const out: SavedForward[] = [];
    for (const f of this.#forwards.values()) {
      if (!f.session.persistent) continue;
      out.push({ session_id: f.session.id, id: f.id, spec: f.spec, port: f.port });
    }
    return { forwards: out };
  }

  async #restore(data: unknown): Promise<void> {
    const list = (data as { forwards?: SavedForward[] } | undefined)?.forwards;
    if (!Array.isArray(list)) return;
    for (const rec of list) {
      if (!rec || typeof rec.id !== "string" || typeof rec.session_id !== "string") continue;
      if (!rec.spec || !["local", "remote", "dynamic"].includes(rec.spec.kind)) continue;
      let session: SshSession;
      try {
        session = this.#opts.session(rec.session_id);
      } catch {
        this.#opts.log.warn("forward not restored: its session is gone", {
          session: rec.session_id,
          id: rec.id,
        });
        continue;
      }
      if (this.#forwards.has(key(session.id, rec.id))) continue;
      const fwd = this.#make(session, rec.id, rec.spec);
      const last = Number.isInteger(rec.port) && rec.port > 0 ? rec.port : 0;
      if (rec.spec.kind === "remote") {
        // requested on "connected"; a port-0 forward asks for its last port first
        if (last) fwd.port = last;
        if (session.state === "connected") {
          const client = session.client();
          this.#attachClient(session, client);
          fwd.reestablish(client);
        }
        continue;
      }
      const port = rec.spec.bind_port || last;
      try {
        await fwd.listen(port);
      } catch (err) {
        if (!rec.spec.bind_port && port) {
          try {
            await fwd.listen(0); // the old port is taken: a port-0 forward takes any
            continue;
          } catch { /* fall through */ }
        }
        this.#opts.log.warn("forward cannot listen yet; retrying in the background", {
          session: session.id,
          id: rec.id,
          error: errorMessage(err),
        });
        fwd.listenLater(port);
      }
    }
    this.#opts.store.changed();
  }
}

function key(sessionId: string, forwardId: string): string {
  return `${sessionId}\u0000${forwardId}`;
}

function info(f: Forward): ForwardInfo {
  const s = f.spec;
  return {
    id: f.id,
    session_id: f.session.id,
    kind: s.kind,
    bind_addr: s.bind_addr,
    bind_port: f.port,
    target_host: s.kind === "local" ? s.remote_host : s.kind === "remote" ? s.local_host : "",
    target_port: s.kind === "local" ? s.remote_port : s.kind === "remote" ? s.local_port : 0,
    active_connections: f.traffic.active,
    total_connections: f.traffic.total,
    bytes_in: f.traffic.bytesIn,
    bytes_out: f.traffic.bytesOut,
    spec: specString(f.port ? { ...s, bind_port: f.port } : s), // the port really bound
  };
}
