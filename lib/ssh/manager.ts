/**
 * Owns every SSH session of the daemon: connect, disconnect, reconnect, clone, listing, and
 * persistence of `persistent` sessions in `state.json` (key `"ssh"`, specs without inline
 * secrets; references like `password_env` are kept so such sessions do come back).
 *
 * A session's forwards and shells belong to other managers: the tool layer adds them to what
 * this manager reports (SessionInfo, SessionRow in lib/mcp/ssh.ts).
 */
import { errorMessage, RsmError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { StateRegistry } from "../state/store.ts";
import { registerSpecSecrets, scrubSpec, type SessionSpec } from "./spec.ts";
import { type SessionState, SshSession } from "./session.ts";

/** A session as the SSH layer knows it (SessionRow without its forward and shell counts). */
export interface SessionSummary {
  id: string;
  user: string;
  address: string;
  state: string;
  last_error: string;
  persistent: boolean;
  auto_reconnect: boolean;
}

/** A session in detail as the SSH layer knows it (SessionInfo without forwards and shells). */
export interface SessionDetails {
  id: string;
  user: string;
  addresses: string[];
  active_address: string;
  state: SessionState;
  last_error: string;
  connected_at: string;
  persistent: boolean;
  auto_reconnect: boolean;
  host_key_fingerprint: string;
}

interface Saved {
  sessions: { id: string; spec: SessionSpec }[];
}

/** What {@link SshManager} needs: where to persist, where to log, the daemon's known_hosts. */
export interface SshManagerOptions {
  /** Persists the `persistent` sessions under `"ssh"`. */
  store: StateRegistry;
  log: Logger;
  /** The daemon's own known_hosts file (`accept-new` keys are added there). */
  knownHosts: string;
}

/** Owns every SSH session. */
export class SshManager {
  #sessions = new Map<string, SshSession>();
  #closed = false;
  #opts: SshManagerOptions;

  constructor(options: SshManagerOptions) {
    this.#opts = { ...options };
    this.#opts.store.register("ssh", {
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

  /** Summary of every session, in creation order. */
  rows(): SessionSummary[] {
    return this.sessions().map((s) => ({
      id: s.id,
      user: s.user,
      address: s.activeAddress || addressesOf(s.spec)[0] || "",
      state: s.state,
      last_error: s.lastError,
      persistent: s.persistent,
      auto_reconnect: s.autoReconnect,
    }));
  }

  /** Details of session `id`; throws NOT_FOUND naming ssh_list. */
  info(id: string): SessionDetails {
    const s = this.get(id);
    return {
      id: s.id,
      user: s.user,
      addresses: addressesOf(s.spec),
      active_address: s.activeAddress,
      state: s.state,
      last_error: s.lastError,
      connected_at: s.connectedAt?.toISOString() ?? "",
      persistent: s.persistent,
      auto_reconnect: s.autoReconnect,
      host_key_fingerprint: s.hostKeyFingerprint,
    };
  }

  /**
   * Opens session `id`. It is listed (`connecting`) while dialing; if the first connect fails
   * it is removed again and the error says why. `ssh_disconnect` during the dial aborts it.
   */
  async connect(id: string, spec: SessionSpec, options: { signal?: AbortSignal | undefined } = {}) {
    registerSpecSecrets(spec);
    if (this.#closed) {
      throw new RsmError("SHUTTING_DOWN", "Cannot connect: the daemon is shutting down");
    }
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
      this.#opts.store.changed();
      throw err;
    }
    return session;
  }

  /** Closes session `id` (its forwards, shells and SFTP go with it through `"closed"`). */
  async disconnect(id: string): Promise<void> {
    const s = this.get(id);
    this.#sessions.delete(id);
    await s.close();
    this.#opts.log.info("ssh disconnected", { id });
    this.#opts.store.changed();
  }

  /** Reconnects `id` now (concurrent calls share one attempt). */
  async reconnect(
    id: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<SshSession> {
    const s = this.get(id);
    await s.reconnect(options.signal);
    return s;
  }

  /** A new, independent session `newId` with the spec of `sourceId` (secrets included). */
  async clone(
    sourceId: string,
    newId: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<SshSession> {
    const src = this.get(sourceId);
    return await this.connect(newId, structuredClone(src.spec), options);
  }

  /** Closes every session (state was persisted before). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = this.sessions();
    this.#sessions.clear();
    await Promise.all(all.map((s) => s.close().catch(() => {})));
  }

  /** `await using` support. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #create(id: string, spec: SessionSpec): SshSession {
    const session = new SshSession(id, spec, {
      daemonKnownHosts: this.#opts.knownHosts,
      log: this.#opts.log,
      onChange: () => this.#opts.store.changed(),
    });
    this.#sessions.set(id, session);
    this.#opts.store.changed();
    return session;
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
        this.#opts.log.info("ssh session restoring", { id: rec.id });
      } catch (err) {
        // a spec that no longer validates: keep the record visible (and saved) with its error
        this.#opts.log.error("cannot restore ssh session", {
          id: rec.id,
          error: errorMessage(err),
        });
        const s = new BrokenSession(rec.id, rec.spec, errorMessage(err), this.#opts);
        this.#sessions.set(rec.id, s);
      }
    }
  }
}

/** A persisted session whose spec cannot be used any more: listed, saved, never connected. */
class BrokenSession extends SshSession {
  constructor(id: string, spec: SessionSpec, error: string, options: SshManagerOptions) {
    const safe: SessionSpec = {
      addresses: ["invalid.invalid"],
      disable_ssh_config: true,
      persistent: true,
    };
    super(id, safe, {
      daemonKnownHosts: options.knownHosts,
      log: options.log,
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
