/**
 * Owns every SSH session of the daemon: connect, disconnect, reconnect, clone, listing, and
 * persistence of `persistent` sessions in `state.json` (key `"ssh"`, specs without inline
 * secrets; references like `password_env` are kept so such sessions do come back).
 */
import type { App } from "../app.ts";
import { errorMessage, RsmError } from "../errors.ts";
import type { ForwardInfo } from "./forwards.ts";
import type { ShellInfo } from "../term/manager.ts";
import { registerSpecSecrets, scrubSpec, type SessionSpec } from "./spec.ts";
import { type SessionState, SshSession } from "./session.ts";

/** SessionRow (README "SSH sessions and exec"): flat scalars for TOON tables. */
export interface SessionRow {
  id: string;
  user: string;
  address: string;
  state: string;
  last_error: string;
  persistent: boolean;
  auto_reconnect: boolean;
  forwards: number;
  shells: number;
}

/** SessionInfo (README "SSH sessions and exec"). */
export interface SessionInfo {
  id: string;
  user: string;
  addresses: string[];
  active_address: string;
  state: SessionState;
  last_error: string;
  connected_at: string;
  forwards: ForwardInfo[];
  shells: ShellInfo[];
  persistent: boolean;
  auto_reconnect: boolean;
  host_key_fingerprint: string;
}

interface Saved {
  sessions: { id: string; spec: SessionSpec }[];
}

/** Owns every SSH session. */
export class SshManager {
  readonly app: App;
  #sessions = new Map<string, SshSession>();
  #closed = false;

  constructor(app: App) {
    this.app = app;
    app.store.register("ssh", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  /** The session `id`; throws NOT_FOUND naming ssh_list. */
  get(id: string): SshSession {
    const s = this.#sessions.get(id);
    if (!s) {
      const known = [...this.#sessions.keys()];
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find SSH session "${id}": no such session` +
          (known.length ? ` (sessions: ${known.slice(0, 20).join(", ")})` : "") +
          "; see ssh_list",
      );
    }
    return s;
  }

  /** Every session, in creation order. */
  sessions(): SshSession[] {
    return [...this.#sessions.values()];
  }

  /** SessionRow of every session. */
  rows(): SessionRow[] {
    return this.sessions().map((s) => ({
      id: s.id,
      user: s.user,
      address: s.activeAddress || addressesOf(s.spec)[0] || "",
      state: s.state,
      last_error: s.lastError,
      persistent: s.persistent,
      auto_reconnect: s.autoReconnect,
      forwards: this.#forwards(s.id).length,
      shells: this.#shells(s.id).length,
    }));
  }

  /** SessionInfo of `id`. */
  info(id: string): SessionInfo {
    const s = this.get(id);
    return {
      id: s.id,
      user: s.user,
      addresses: addressesOf(s.spec),
      active_address: s.activeAddress,
      state: s.state,
      last_error: s.lastError,
      connected_at: s.connectedAt?.toISOString() ?? "",
      forwards: this.#forwards(s.id),
      shells: this.#shells(s.id),
      persistent: s.persistent,
      auto_reconnect: s.autoReconnect,
      host_key_fingerprint: s.hostKeyFingerprint,
    };
  }

  /**
   * Opens session `id`. It is listed (`connecting`) while dialing; if the first connect fails
   * it is removed again and the error says why. `ssh_disconnect` during the dial aborts it.
   */
  async connect(id: string, spec: SessionSpec, options: { signal?: AbortSignal } = {}) {
    registerSpecSecrets(spec);
    if (this.#closed) throw new RsmError("CLOSED", "Cannot connect: the daemon is shutting down");
    const existing = this.#sessions.get(id);
    if (existing) {
      throw new RsmError(
        "ALREADY_EXISTS",
        `Cannot connect session "${id}": a session with this id exists (state ${existing.state}); ` +
          `use ssh_reconnect, ssh_disconnect it first, or choose another id`,
      );
    }
    const session = this.#create(id, spec);
    try {
      await session.connect({ signal: options.signal });
    } catch (err) {
      if (this.#sessions.get(id) === session) this.#sessions.delete(id);
      await session.close();
      this.app.store.changed();
      throw err;
    }
    return session;
  }

  /** Closes session `id` (its forwards, shells and SFTP go with it through `"closed"`). */
  async disconnect(id: string): Promise<void> {
    const s = this.get(id);
    this.#sessions.delete(id);
    await s.close();
    this.app.log.info("ssh disconnected", { id });
    this.app.store.changed();
  }

  /** Reconnects `id` now (concurrent calls share one attempt). */
  async reconnect(id: string, options: { signal?: AbortSignal } = {}): Promise<SshSession> {
    const s = this.get(id);
    await s.reconnect(options.signal);
    return s;
  }

  /** A new, independent session `newId` with the spec of `sourceId` (secrets included). */
  clone(sourceId: string, newId: string, options: { signal?: AbortSignal } = {}) {
    const src = this.get(sourceId);
    return this.connect(newId, structuredClone(src.spec), options);
  }

  /** Closes every session (state was persisted before). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = this.sessions();
    this.#sessions.clear();
    await Promise.all(all.map((s) => s.close().catch(() => {})));
  }

  #create(id: string, spec: SessionSpec): SshSession {
    const session = new SshSession(id, spec, {
      daemonKnownHosts: this.app.paths.knownHosts,
      log: this.app.log,
      onChange: () => this.app.store.changed(),
    });
    this.#sessions.set(id, session);
    this.app.store.changed();
    return session;
  }

  #forwards(id: string): ForwardInfo[] {
    try {
      return this.app.forwards.list(id).filter((f) => f.session_id === id);
    } catch {
      return [];
    }
  }

  #shells(id: string): ShellInfo[] {
    try {
      return this.app.shells.list().filter((s) => s.session_id === id);
    } catch {
      return [];
    }
  }

  #save(): Saved {
    return {
      sessions: this.sessions().filter((s) => s.persistent).map((s) => ({
        id: s.id,
        spec: scrubSpec(s.spec),
      })),
    };
  }

  // deno-lint-ignore require-await
  async #restore(data: unknown): Promise<void> {
    const list = (data as Partial<Saved> | undefined)?.sessions;
    if (!Array.isArray(list)) return;
    for (const rec of list) {
      if (!rec || typeof rec.id !== "string" || !rec.spec || this.#sessions.has(rec.id)) continue;
      try {
        const s = this.#create(rec.id, rec.spec);
        s.startBackground();
        this.app.log.info("ssh session restoring", { id: rec.id });
      } catch (err) {
        // a spec that no longer validates: keep the record visible (and saved) with its error
        this.app.log.error("cannot restore ssh session", { id: rec.id, error: errorMessage(err) });
        const s = new BrokenSession(rec.id, rec.spec, errorMessage(err), this.app);
        this.#sessions.set(rec.id, s);
      }
    }
  }
}

/** A persisted session whose spec cannot be used any more: listed, saved, never connected. */
class BrokenSession extends SshSession {
  constructor(id: string, spec: SessionSpec, error: string, app: App) {
    const safe: SessionSpec = {
      addresses: ["invalid.invalid"],
      disable_ssh_config: true,
      persistent: true,
    };
    super(id, safe, {
      daemonKnownHosts: app.paths.knownHosts,
      log: app.log,
    });
    Object.defineProperty(this, "spec", { value: spec });
    this.persistent = true;
    this.state = "disconnected";
    this.lastError = error;
  }
  override reconnect(): Promise<never> {
    return Promise.reject(new RsmError("BAD_SPEC", this.lastError));
  }
}

function addressesOf(spec: SessionSpec): string[] {
  return typeof spec.addresses === "string" ? [spec.addresses] : [...(spec.addresses ?? [])];
}
